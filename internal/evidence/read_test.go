package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/tamper"
	"github.com/accord-build/accord/verify"
)

// storeKinds open an empty layout store, or a registry store whose blobs
// the test can tamper with (nil for the layout).
var storeKinds = map[string]func(t *testing.T) (store.Store, *tamper.Blobs){
	"layout": func(t *testing.T) (store.Store, *tamper.Blobs) {
		l, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return l, nil
	},
	"registry": func(t *testing.T) (store.Store, *tamper.Blobs) {
		r, blobs := tamper.Registry(t)
		repo, err := name.NewRepository(r)
		if err != nil {
			t.Fatal(err)
		}
		return store.NewRegistry(repo), blobs
	},
}

// tamperBlob makes the store serve f(blob) for blob h.
func tamperBlob(t *testing.T, st store.Store, tb *tamper.Blobs, h ggcrv1.Hash, f func([]byte) []byte) {
	t.Helper()
	if l, ok := st.(*store.Layout); ok {
		tamper.LayoutBlob(t, l.Dir(), h, f)
		return
	}
	tb.Set(h, f)
}

// TestFileArtifactDigest: a file artifact's digest is the one its blob
// check proved, so the file is read once (not again to hash it); a layer
// whose bytes do not match never yields the digest its manifest names,
// and every case gives the digest that hashing the stored layer again
// gives.
func TestFileArtifactDigest(t *testing.T) {
	ctx := context.Background()
	content := []byte("#!/bin/sh\necho hello\n")
	sum := sha256.Sum256(content)
	honest := hex.EncodeToString(sum[:])
	for sname, open := range storeKinds {
		for _, tc := range []struct {
			name      string
			blob      func(m *ggcrv1.Manifest) ggcrv1.Hash
			f         func([]byte) []byte
			role      string // the blob that fails the check
			wantHonst bool   // the digest is the file's
		}{
			{"untouched", nil, nil, "", true},
			{"byte flipped in the file", func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Layers[0].Digest }, tamper.FlipByte, "layer 1", false},
			{"file truncated", func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Layers[0].Digest }, tamper.Truncate, "layer 1", false},
			{"byte appended to the file", func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Layers[0].Digest }, func(b []byte) []byte { return append(b, 0) }, "layer 1", false},
			{"config changed, file intact", func(m *ggcrv1.Manifest) ggcrv1.Hash { return m.Config.Digest }, tamper.FlipByte, "config", true},
		} {
			t.Run(sname+"/"+tc.name, func(t *testing.T) {
				st, tb := open(t)
				img, err := artifact.FileImage("hello", content)
				if err != nil {
					t.Fatal(err)
				}
				h, err := st.Put(ctx, "hello", img)
				if err != nil {
					t.Fatal(err)
				}
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if tc.blob != nil {
					tamperBlob(t, st, tb, tc.blob(m), tc.f)
				}
				var reads atomic.Int32
				if tb != nil && tc.blob == nil {
					tb.Set(m.Layers[0].Digest, func(b []byte) []byte { reads.Add(1); return b })
				}
				ev, err := Read(ctx, st, "hello@"+h.String())
				if err != nil {
					t.Fatal(err)
				}
				if got := ev.ArtifactSHA256 == honest; got != tc.wantHonst {
					t.Errorf("artifact digest %s, the file's %s: want equal %v", ev.ArtifactSHA256, honest, tc.wantHonst)
				}
				for _, b := range ev.Blobs {
					if bad := b.Problem != ""; bad != (b.Role == tc.role) {
						t.Errorf("blob %s: problem %q, want a problem only for %q", b.Role, b.Problem, tc.role)
					}
				}
				if n := reads.Load(); tb != nil && tc.blob == nil && n != 1 {
					t.Errorf("the file's layer was read %d times, want 1", n)
				}
				// The digest is the one hashing the stored layer gives.
				stored, _ := st.Image(ctx, h)
				again, err := ArtifactSHA256(stored)
				if err != nil {
					again = "(unreadable)"
				}
				if ev.ArtifactSHA256 != again {
					t.Errorf("artifact digest %s, hashing the stored layer gives %s", ev.ArtifactSHA256, again)
				}
			})
		}
	}
}

// TestReadForEarlyLinks: with a policy that has a layout, the stored
// links bundles are being verified by the time the evidence is returned
// (Evidence.EarlyLinks), on exactly the bundles returned; without a
// layout, or without bundles, nothing is started.
func TestReadForEarlyLinks(t *testing.T) {
	ctx := context.Background()
	layout := []byte(`{"signed": {"_type": "layout", "readme": "accord.dev/pipeline-digest: sha256:` + hex.EncodeToString(make([]byte, 32)) + `"}, "signatures": []}`)
	bundle := []byte("not really a tar: verified and refused all the same")
	for sname, open := range storeKinds {
		for _, tc := range []struct {
			name   string
			pol    *verify.Policy
			layers []store.Layer
			early  bool
		}{
			{"layout and a bundle", &verify.Policy{Layout: layout}, []store.Layer{{MediaType: store.LinksBundleMediaType, Blob: bundle}}, true},
			{"no layout", &verify.Policy{}, []store.Layer{{MediaType: store.LinksBundleMediaType, Blob: bundle}}, false},
			{"no policy", nil, []store.Layer{{MediaType: store.LinksBundleMediaType, Blob: bundle}}, false},
			{"only a layer that is no links bundle", &verify.Policy{Layout: layout}, []store.Layer{{MediaType: "text/plain", Blob: bundle}}, false},
		} {
			t.Run(sname+"/"+tc.name, func(t *testing.T) {
				st, _ := open(t)
				img, err := artifact.FileImage("hello", []byte("hello"))
				if err != nil {
					t.Fatal(err)
				}
				h, err := st.Put(ctx, "hello", img)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := store.Attach(ctx, st, store.AttachmentRef(store.Name(st, "hello"), h, store.LinksSuffix), tc.layers, nil); err != nil {
					t.Fatal(err)
				}
				ev, err := ReadFor(ctx, st, "hello@"+h.String(), tc.pol)
				if err != nil {
					t.Fatal(err)
				}
				defer ev.EarlyLinks.Wait()
				if got := ev.EarlyLinks != nil; got != tc.early {
					t.Errorf("early links check started %v, want %v", got, tc.early)
				}
				want := 0
				if tc.layers[0].MediaType == store.LinksBundleMediaType {
					want = 1
				}
				if len(ev.LinkBundles) != want {
					t.Errorf("%d link bundles, want %d", len(ev.LinkBundles), want)
				}
			})
		}
	}
}
