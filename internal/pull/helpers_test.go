package pull_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/internal/store"
)

// platformImage is a small random image whose config says os/arch.
func platformImage(t *testing.T, os, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(300, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// index is an index of imgs, each entry with its platform os/arch.
func index(t *testing.T, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range sortedKeys(imgs) {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: imgs[p], Descriptor: v1.Descriptor{Platform: pl}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// push writes img (a v1.Image or v1.ImageIndex) to repo by digest and
// returns the pinned reference.
func push(t *testing.T, repo string, x any, opts ...remote.Option) name.Digest {
	t.Helper()
	var h v1.Hash
	var err error
	switch x := x.(type) {
	case v1.Image:
		h, err = x.Digest()
	case v1.ImageIndex:
		h, err = x.Digest()
	}
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(repo + "@" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	switch x := x.(type) {
	case v1.Image:
		err = remote.Write(d, x, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(d, x, opts...)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", d, err)
	}
	return d
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func newStore(t *testing.T) *store.Layout {
	t.Helper()
	st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// snapshot is every file of a store directory (but its lock) by content
// hash.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".lock" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unchanged fails the test when the store differs from before.
func unchanged(t *testing.T, st *store.Layout, before map[string]string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, st.Dir())); diff != "" {
		t.Errorf("the store changed (-before +after):\n%s", diff)
	}
}

func hasImage(t *testing.T, st store.Store, digest string) bool {
	t.Helper()
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Image(context.Background(), h)
	if err != nil {
		return false
	}
	_, err = img.ConfigFile()
	return err == nil
}
