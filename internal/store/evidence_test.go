package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tamperedBlobs is the in-process registry's blob store with an attacker
// in it: Get serves the bytes tamper returns for a blob.
type tamperedBlobs struct {
	mem interface {
		registry.BlobHandler
		registry.BlobStatHandler
		registry.BlobPutHandler
		registry.BlobDeleteHandler
	}
	mu     sync.Mutex
	tamper map[v1.Hash]func([]byte) []byte
}

func (b *tamperedBlobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	return b.mem.Stat(ctx, repo, h)
}

func (b *tamperedBlobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	return b.mem.Put(ctx, repo, h, rc)
}

func (b *tamperedBlobs) Delete(ctx context.Context, repo string, h v1.Hash) error {
	return b.mem.Delete(ctx, repo, h)
}

func (b *tamperedBlobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	rc, err := b.mem.Get(ctx, repo, h)
	b.mu.Lock()
	f := b.tamper[h]
	b.mu.Unlock()
	if err != nil || f == nil {
		return rc, err
	}
	defer rc.Close()
	c, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(f(c))), nil
}

func (b *tamperedBlobs) set(h v1.Hash, f func([]byte) []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tamper == nil {
		b.tamper = map[v1.Hash]func([]byte) []byte{}
	}
	b.tamper[h] = f
}

// tamperedRegistry is a registry store whose blobs the test can tamper with.
func tamperedRegistry(t *testing.T) (*Registry, *tamperedBlobs) {
	t.Helper()
	blobs := &tamperedBlobs{mem: registry.NewInMemoryBlobHandler().(interface {
		registry.BlobHandler
		registry.BlobStatHandler
		registry.BlobPutHandler
		registry.BlobDeleteHandler
	})}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(blobs)))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/accord/store")
	if err != nil {
		t.Fatal(err)
	}
	return NewRegistry(repo), blobs
}

func flipByte(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/2] ^= 0x01
	return c
}

func truncate(b []byte) []byte { return b[:len(b)-1] }

// tamper changes blob h of a store as an attacker with write access to
// it would.
func tamper(t *testing.T, st Store, tb *tamperedBlobs, h v1.Hash, f func([]byte) []byte) {
	t.Helper()
	if l, ok := st.(*Layout); ok {
		b, err := os.ReadFile(l.blobPath(h))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.blobPath(h), f(b), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	tb.set(h, f)
}

// TestCheckBlobs: a byte flipped or cut in any blob of a stored image is
// found, in the layout store and in the registry store, and names the
// blob; the untouched blobs pass.
func TestCheckBlobs(t *testing.T) {
	ctx := context.Background()
	stores := map[string]func(t *testing.T) (Store, *tamperedBlobs){
		"layout":   func(t *testing.T) (Store, *tamperedBlobs) { return openLayout(t), nil },
		"registry": func(t *testing.T) (Store, *tamperedBlobs) { r, tb := tamperedRegistry(t); return r, tb },
	}
	for sname, open := range stores {
		for _, tc := range []struct {
			name, role string
			blob       func(m *v1.Manifest) v1.Hash
			f          func([]byte) []byte
		}{
			{"untouched", "", nil, nil},
			{"byte flipped in a layer", "layer 2", func(m *v1.Manifest) v1.Hash { return m.Layers[1].Digest }, flipByte},
			{"layer truncated", "layer 1", func(m *v1.Manifest) v1.Hash { return m.Layers[0].Digest }, truncate},
			{"byte appended to a layer", "layer 1", func(m *v1.Manifest) v1.Hash { return m.Layers[0].Digest }, func(b []byte) []byte { return append(b, 0) }},
			{"byte flipped in the config", "config", func(m *v1.Manifest) v1.Hash { return m.Config.Digest }, flipByte},
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
					tamper(t, st, tb, tc.blob(m), tc.f)
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

// zeroLayer is a layer of n zero bytes, streamed: a huge layer that costs
// no memory.
type zeroLayer struct {
	n int64
	h v1.Hash
}

func newZeroLayer(t *testing.T, n int64) *zeroLayer {
	t.Helper()
	hh := sha256.New()
	if _, err := io.Copy(hh, io.LimitReader(zeros{}, n)); err != nil {
		t.Fatal(err)
	}
	return &zeroLayer{n: n, h: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hh.Sum(nil))}}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func (z *zeroLayer) Digest() (v1.Hash, error)            { return z.h, nil }
func (z *zeroLayer) DiffID() (v1.Hash, error)            { return z.h, nil }
func (z *zeroLayer) Size() (int64, error)                { return z.n, nil }
func (z *zeroLayer) MediaType() (types.MediaType, error) { return DSSEMediaType, nil }
func (z *zeroLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(zeros{}, z.n)), nil
}
func (z *zeroLayer) Uncompressed() (io.ReadCloser, error) { return z.Compressed() }

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
		bad               func(t *testing.T, st Store, tb *tamperedBlobs) // adds or spoils layer 2
	}{
		{"layer over the limit", "layout", "over the", func(t *testing.T, st Store, _ *tamperedBlobs) {
			z := newZeroLayer(t, MaxLayerSize+1)
			// Sparse: the blob file has the size, not the disk use.
			l := st.(*Layout)
			f, err := os.Create(l.blobPath(z.h))
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(z.n)
			f.Close()
			insert(t, st, ref, z)
		}},
		{"layer over the limit", "registry", "over the", func(t *testing.T, st Store, _ *tamperedBlobs) {
			insert(t, st, ref, newZeroLayer(t, MaxLayerSize+1))
		}},
		{"layer edited in place", "layout", "content has digest", func(t *testing.T, st Store, tb *tamperedBlobs) {
			tamper(t, st, tb, layerDigest(t, st, ref, 1), flipByte)
		}},
		{"layer edited in place", "registry", "", func(t *testing.T, st Store, tb *tamperedBlobs) {
			tamper(t, st, tb, layerDigest(t, st, ref, 1), flipByte)
		}},
		{"layer truncated", "layout", "descriptor says", func(t *testing.T, st Store, tb *tamperedBlobs) {
			tamper(t, st, tb, layerDigest(t, st, ref, 1), truncate)
		}},
		{"layer grown", "layout", "larger than", func(t *testing.T, st Store, tb *tamperedBlobs) {
			tamper(t, st, tb, layerDigest(t, st, ref, 1), func(b []byte) []byte { return append(b, ' ') })
		}},
	} {
		t.Run(tc.store+"/"+tc.name, func(t *testing.T) {
			var st Store
			var tb *tamperedBlobs
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
