package store

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestHashedLayer pins that a [HashedLayer] is the same layer static
// bytes make (same digest, size, bytes: a file artifact's manifest does not
// change), and that Layout.Put writes it without hashing it again, through
// the mutate wrappers a file artifact's image is made with: a layer whose
// digest was forged (possible only inside this package) is written under
// that digest, where any other layer's is checked.
func TestHashedLayer(t *testing.T) {
	content := []byte("a file artifact\n")
	hl := NewHashedLayer(content, "application/octet-stream")
	sl := static.NewLayer(content, "application/octet-stream")
	for _, f := range []func(v1.Layer) (v1.Hash, error){v1.Layer.Digest, v1.Layer.DiffID} {
		got, _ := f(hl)
		want, _ := f(sl)
		if got != want {
			t.Errorf("hashed layer %s, static layer %s", got, want)
		}
	}
	if n, _ := hl.Size(); n != int64(len(content)) {
		t.Errorf("size %d, want %d", n, len(content))
	}
	forged := &HashedLayer{b: content, h: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, mt: "application/octet-stream"}
	for _, tc := range []struct {
		name    string
		layer   v1.Layer
		wantErr string
	}{
		{"hashed", hl, ""},
		{"hashed, forged digest: not hashed again", forged, ""},
		{"other layer, wrong bytes: checked", liar{sl, forged.h}, "content has digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLayout(t)
			img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: tc.layer})
			if err != nil {
				t.Fatal(err)
			}
			img = mutate.ConfigMediaType(img, "application/vnd.accord.file.v1")
			_, err = l.Put(context.Background(), "", img)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Put = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h, _ := tc.layer.Digest()
			got, err := os.ReadFile(l.blobPath(h))
			if err != nil || string(got) != string(content) {
				t.Errorf("blob %s = %q, %v; want %q", h, got, err, content)
			}
		})
	}
}

// liar is a layer that claims digest h for other bytes.
type liar struct {
	v1.Layer
	h v1.Hash
}

func (l liar) Digest() (v1.Hash, error) { return l.h, nil }
func (l liar) DiffID() (v1.Hash, error) { return l.h, nil }
func (l liar) Compressed() (io.ReadCloser, error) {
	return l.Layer.Compressed()
}
