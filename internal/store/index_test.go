package store

import (
	"context"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestLayoutIndex: an index is kept with only the children put, is found
// by its digest, is no image, and a manifest is refused as an index.
func TestLayoutIndex(t *testing.T) {
	ctx := context.Background()
	l, err := OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	amd, _ := random.Image(100, 1)
	arm, _ := random.Image(100, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	raw, _ := idx.RawManifest()
	want, _ := idx.Digest()
	if _, err := l.Put(ctx, "example.com/golang", amd); err != nil {
		t.Fatal(err)
	}
	h, err := l.PutIndex(ctx, "example.com/golang", types.OCIImageIndex, raw)
	if err != nil || h != want {
		t.Fatalf("PutIndex = %s, %v; want %s", h, err, want)
	}
	got, err := l.Index(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := got.RawManifest(); string(b) != string(raw) {
		t.Errorf("Index gave other bytes")
	}
	if _, err := l.Image(ctx, h); err == nil {
		t.Error("an index was returned as an image")
	}
	amdH, _ := amd.Digest()
	if _, err := l.Image(ctx, amdH); err != nil {
		t.Errorf("the child put: %v", err)
	}
	m, _ := amd.RawManifest()
	if _, err := l.PutIndex(ctx, "", types.OCIManifestSchema1, m); err == nil {
		t.Error("a manifest was stored as an index")
	}
}
