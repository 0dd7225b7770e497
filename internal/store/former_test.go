package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestLayoutKeepsFormerArtifacts: a new artifact under an existing name
// does not make the older ones unreachable by digest, nor their evidence
// (attached by digest) disappear; attachments themselves are replaced.
func TestLayoutKeepsFormerArtifacts(t *testing.T) {
	ctx := context.Background()
	const name = "accord.dev/examples/hello"
	type step struct {
		ref string
		img int // index into imgs
	}
	imgs := []v1.Image{randomImage(t, 1), randomImage(t, 1), randomImage(t, 1)}
	h := func(i int) v1.Hash { return digest(t, imgs[i]) }
	tests := []struct {
		name    string
		puts    []step
		current int
		former  []int // newest first
	}{
		{"two builds", []step{{name, 0}, {name, 1}}, 1, []int{0}},
		{"three builds", []step{{name, 0}, {name, 1}, {name, 2}}, 2, []int{1, 0}},
		{"the same build twice", []step{{name, 0}, {name, 0}}, 0, nil},
		{"an older build again", []step{{name, 0}, {name, 1}, {name, 0}}, 0, []int{1}},
		{"a rebuild stored by digest only", []step{{name, 0}, {name, 1}, {"", 0}}, 1, []int{0}},
		{"a tagged name", []step{{name + ":v1", 0}, {name + ":v1", 1}}, 1, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := openLayout(t)
			for _, p := range tc.puts {
				if _, err := l.Put(ctx, p.ref, imgs[p.img]); err != nil {
					t.Fatal(err)
				}
			}
			ref := tc.puts[0].ref
			want := []v1.Hash{h(tc.current)}
			for _, i := range tc.former {
				want = append(want, h(i))
			}
			got, err := l.ResolveAll(ref)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ResolveAll (-want +got):\n%s\n%v", diff, entries(t, l))
			}
			for _, p := range tc.puts {
				if _, err := l.Image(ctx, h(p.img)); err != nil {
					t.Errorf("image %d by digest: %v", p.img, err)
				}
			}
		})
	}

	t.Run("evidence of the first build stays", func(t *testing.T) {
		l := openLayout(t)
		h0, err := l.Put(ctx, name, imgs[0])
		if err != nil {
			t.Fatal(err)
		}
		att := AttachmentRef(name, h0, AttSuffix)
		layer := Layer{MediaType: DSSEMediaType, Blob: []byte(`{"payload":"first"}`), Annotations: map[string]string{PredicateTypeAnnotation: "p"}}
		if _, err := Attach(ctx, l, att, []Layer{layer}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Put(ctx, name, imgs[1]); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Image(ctx, h0); err != nil {
			t.Errorf("first image by digest: %v", err)
		}
		ls, err := Layers(ctx, l, att)
		if err != nil || len(ls) != 1 || string(ls[0].Blob) != string(layer.Blob) {
			t.Errorf("first image's attestations = %v, %v", ls, err)
		}
		// Attaching again replaces the attachment manifest: no former
		// entry piles up for a sha256-... ref.
		if _, err := Attach(ctx, l, att, []Layer{{MediaType: types.MediaType("x"), Blob: []byte("second")}}, nil); err != nil {
			t.Fatal(err)
		}
		if all, err := l.ResolveAll(att); err != nil || len(all) != 1 {
			t.Errorf("ResolveAll(%s) = %v, %v; want one manifest", att, all, err)
		}
	})
}

func TestIsAttachmentRef(t *testing.T) {
	for ref, want := range map[string]bool{
		"accord.dev/x:sha256-abc.att":     true,
		"accord.dev/x:sha256-abc":         true,
		"localhost:5000/x:sha256-abc.sig": true,
		"localhost:5000/x":                false,
		"accord.dev/x:v1":                 false,
		"accord.dev/sha256-x":             false,
		AttachmentRef("r/x", v1.Hash{Algorithm: "sha256", Hex: "ab"}, "links"): true,
	} {
		if got := IsAttachmentRef(ref); got != want {
			t.Errorf("IsAttachmentRef(%q) = %v, want %v", ref, got, want)
		}
	}
}
