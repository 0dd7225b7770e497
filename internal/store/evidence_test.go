package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/testutil/tamper"
)

// tamperedRegistry is a registry store whose blobs the test can tamper with.
func tamperedRegistry(t *testing.T) (*Registry, *tamper.Blobs) {
	t.Helper()
	r, blobs := tamper.Registry(t)
	repo, err := name.NewRepository(r)
	if err != nil {
		t.Fatal(err)
	}
	return NewRegistry(repo), blobs
}

// tamperWith changes blob h of a store as an attacker with write access
// to it would.
func tamperWith(t *testing.T, st Store, tb *tamper.Blobs, h v1.Hash, f func([]byte) []byte) {
	t.Helper()
	if l, ok := st.(*Layout); ok {
		tamper.LayoutBlob(t, l.Dir(), h, f)
		return
	}
	tb.Set(h, f)
}

// TestCheckBlobs: a byte flipped or cut in any blob of a stored image is
// found, in the layout store and in the registry store, and names the
// blob; the untouched blobs pass.
func TestCheckBlobs(t *testing.T) {
	ctx := context.Background()
	stores := map[string]func(t *testing.T) (Store, *tamper.Blobs){
		"layout":   func(t *testing.T) (Store, *tamper.Blobs) { return openLayout(t), nil },
		"registry": func(t *testing.T) (Store, *tamper.Blobs) { r, tb := tamperedRegistry(t); return r, tb },
	}
	for sname, open := range stores {
		for _, tc := range []struct {
			name, role string
			blob       func(m *v1.Manifest) v1.Hash
			f          func([]byte) []byte
		}{
			{"untouched", "", nil, nil},
			{"byte flipped in a layer", "layer 2", func(m *v1.Manifest) v1.Hash { return m.Layers[1].Digest }, tamper.FlipByte},
			{"layer truncated", "layer 1", func(m *v1.Manifest) v1.Hash { return m.Layers[0].Digest }, tamper.Truncate},
			{"byte appended to a layer", "layer 1", func(m *v1.Manifest) v1.Hash { return m.Layers[0].Digest }, func(b []byte) []byte { return append(b, 0) }},
			{"byte flipped in the config", "config", func(m *v1.Manifest) v1.Hash { return m.Config.Digest }, tamper.FlipByte},
		} {
			t.Run(sname+"/"+tc.name, func(t *testing.T) {
				st, tb := open(t)
				h, err := st.Put(ctx, "accord.dev/test/app:v1", randomImage(t, 2))
				if err != nil {
					t.Fatal(err)
				}
				if tc.f != nil {
					img, _ := st.Image(ctx, h)
					m, _ := img.Manifest()
					tamperWith(t, st, tb, tc.blob(m), tc.f)
				}
				// A fresh store value: nothing cached from before.
				if r, ok := st.(*Registry); ok {
					st = NewRegistry(r.repo)
				}
				img, err := st.Image(ctx, h)
				if err != nil {
					t.Fatal(err)
				}
				var bad []string
				for _, b := range CheckBlobs(img, h) {
					if b.Err != nil {
						bad = append(bad, b.Role)
					}
				}
				var want []string
				if tc.role != "" {
					want = []string{tc.role}
				}
				if diff := cmp.Diff(want, bad); diff != "" {
					t.Errorf("blobs that fail (-want +got):\n%s", diff)
				}
				err = VerifyBlobs(img, h)
				var be *BlobError
				if (err != nil) != (tc.role != "") || (err != nil && (!errors.As(err, &be) || be.Role != tc.role || !strings.Contains(err.Error(), be.Digest.String()))) {
					t.Errorf("VerifyBlobs: %v", err)
				}
			})
		}
	}
}

// TestLayersPerLayer: a layer that is too large, or not the bytes its
// descriptor names, is left out and named; every other layer is returned.
func TestLayersPerLayer(t *testing.T) {
	ctx := context.Background()
	good := []Layer{
		{MediaType: DSSEMediaType, Blob: []byte(`{"first":1}`), Annotations: map[string]string{"n": "1"}},
		{MediaType: DSSEMediaType, Blob: []byte(`{"second":2}`), Annotations: map[string]string{"n": "2"}},
	}
	const ref = "accord.dev/test/app:sha256-abc.att"
	for _, tc := range []struct {
		name, store, want string
		bad               func(t *testing.T, st Store, tb *tamper.Blobs) // adds or spoils layer 2
	}{
		{"layer over the limit", "layout", "over the", func(t *testing.T, st Store, _ *tamper.Blobs) {
			z := tamper.NewZeros(t, MaxLayerSize+1, DSSEMediaType)
			z.Sparse(t, st.(*Layout).Dir())
			insert(t, st, ref, z)
		}},
		{"layer over the limit", "registry", "over the", func(t *testing.T, st Store, _ *tamper.Blobs) {
			insert(t, st, ref, tamper.NewZeros(t, MaxLayerSize+1, DSSEMediaType))
		}},
		{"layer edited in place", "layout", "content has digest", func(t *testing.T, st Store, tb *tamper.Blobs) {
			tamperWith(t, st, tb, layerDigest(t, st, ref, 1), tamper.FlipByte)
		}},
		{"layer edited in place", "registry", "", func(t *testing.T, st Store, tb *tamper.Blobs) {
			tamperWith(t, st, tb, layerDigest(t, st, ref, 1), tamper.FlipByte)
		}},
		{"layer truncated", "layout", "descriptor says", func(t *testing.T, st Store, tb *tamper.Blobs) {
			tamperWith(t, st, tb, layerDigest(t, st, ref, 1), tamper.Truncate)
		}},
		{"layer grown", "layout", "larger than", func(t *testing.T, st Store, tb *tamper.Blobs) {
			tamperWith(t, st, tb, layerDigest(t, st, ref, 1), func(b []byte) []byte { return append(b, ' ') })
		}},
	} {
		t.Run(tc.store+"/"+tc.name, func(t *testing.T) {
			var st Store
			var tb *tamper.Blobs
			if tc.store == "layout" {
				st = openLayout(t)
			} else {
				st, tb = tamperedRegistry(t)
			}
			if _, err := Attach(ctx, st, ref, []Layer{good[0], {MediaType: DSSEMediaType, Blob: []byte(`{"victim":0}`)}}, nil); err != nil {
				t.Fatal(err)
			}
			tc.bad(t, st, tb)
			if _, err := Attach(ctx, st, ref, good[1:], nil); err != nil {
				t.Fatal(err)
			}
			if r, ok := st.(*Registry); ok {
				st = NewRegistry(r.repo)
			}
			got, err := Layers(ctx, st, ref)
			var le *LayerError
			if !errors.As(err, &le) || le.Index != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *LayerError for layer 2 saying %q", err, tc.want)
			}
			var ns []string
			for _, l := range got {
				ns = append(ns, l.Annotations["n"])
			}
			if diff := cmp.Diff([]string{"1", "2"}, ns); diff != "" {
				t.Errorf("layers returned (-want +got):\n%s", diff)
			}
		})
	}
}

// insert puts layer z second among the layers stored under ref.
func insert(t *testing.T, st Store, ref string, z v1.Layer) {
	t.Helper()
	ctx := context.Background()
	old, err := st.(Lookuper).Lookup(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := old.Layers()
	m, _ := old.Manifest()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base,
		mutate.Addendum{Layer: ls[0], Annotations: m.Layers[0].Annotations},
		mutate.Addendum{Layer: z, MediaType: DSSEMediaType})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, ref, img); err != nil {
		t.Fatal(err)
	}
}

func layerDigest(t *testing.T, st Store, ref string, i int) v1.Hash {
	t.Helper()
	img, err := st.(Lookuper).Lookup(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	return m.Layers[i].Digest
}
