package attest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
)

var testPipeline = "sha256:" + strings.Repeat("b", 64)

// chain is a three-step pipeline: fetch reads the source, build reads the
// source and writes output, package rewrites output.
var chain = []LayoutStep{
	{Name: "fetch-record", ReadOnly: []string{"source"}},
	{Name: "build-build", ReadOnly: []string{"source"}, Writable: []string{"output"}},
	{Name: "image-package", Writable: []string{"output"}},
}

func honestLinks() []LinkInput {
	src := map[string]string{"source/main.go": sha("main"), "source/go.mod": sha("mod")}
	built := map[string]string{"source/main.go": sha("main"), "source/go.mod": sha("mod"), "output/bin/hello": sha("bin")}
	packaged := map[string]string{"output/bin/hello": sha("bin"), "output/image/index.json": sha("idx")}
	return []LinkInput{
		{Name: "fetch-record", Materials: src, Products: src},
		{Name: "build-build", Materials: src, Products: built},
		{Name: "image-package", Materials: map[string]string{"output/bin/hello": sha("bin")}, Products: packaged},
	}
}

func sha(s string) string {
	return strings.Repeat(string("0123456789abcdef"[len(s)%16]), 63) + string("0123456789abcdef"[len(s)%7])
}

func writeLinks(t *testing.T, s *Signer, links []LinkInput) string {
	t.Helper()
	dir := t.TempDir()
	for _, l := range links {
		mb, err := SignLink(context.Background(), s, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteMetablock(mb, filepath.Join(dir, LinkFileName(l.Name, s.KeyID()))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLayoutVerification: honest links verify with in-toto-golang; each
// attack fails and the error names what in-toto found.
func TestLayoutVerification(t *testing.T) {
	ctx := context.Background()
	owner, ownerPub := newSigner(t, "")
	builder, builderPub := newSigner(t, "")
	intruder, _ := newSigner(t, "")
	layout, err := Layout(ctx, owner, chain, LayoutOptions{Functionaries: [][]byte{builderPub}, Expires: time.Now().Add(time.Hour), PipelineDigest: testPipeline})
	if err != nil {
		t.Fatal(err)
	}
	honest := writeLinks(t, builder, honestLinks())
	final, err := VerifyLinks(layout, ownerPub, honest)
	sameAsInToto(t, layout, ownerPub, honest, err)
	if err != nil {
		t.Fatalf("honest links do not verify: %v", err)
	}
	// The final products: what the last step that saw each path left.
	want := map[string]string{"source/main.go": sha("main"), "source/go.mod": sha("mod"), "output/bin/hello": sha("bin"), "output/image/index.json": sha("idx")}
	if diff := cmp.Diff(want, final); diff != "" {
		t.Errorf("final products (-want +got):\n%s", diff)
	}
	tests := []struct {
		name   string
		links  func() []LinkInput
		signer *Signer
		want   string
	}{
		{
			// SUNBURST: the build step rewrites a source file it may only read.
			name: "build step rewrites source",
			links: func() []LinkInput {
				l := honestLinks()
				l[1].Products = copyMap(l[1].Products)
				l[1].Products["source/main.go"] = sha("implant!")
				return l
			},
			want: "build-build",
		},
		{
			name:  "a step's link is missing",
			links: func() []LinkInput { return honestLinks()[:2] },
			want:  "image-package",
		},
		{
			// The binary packaged is not the one built.
			name: "artifact swapped between steps",
			links: func() []LinkInput {
				l := honestLinks()
				l[2].Materials = map[string]string{"output/bin/hello": sha("other binary")}
				return l
			},
			want: "image-package",
		},
		{
			name:   "links signed by a key the layout does not trust",
			links:  honestLinks,
			signer: intruder,
			want:   "",
		},
		{
			name: "a step adds a file nowhere allowed",
			links: func() []LinkInput {
				l := honestLinks()
				l[0].Products = copyMap(l[0].Products)
				l[0].Products["etc/passwd"] = sha("x")
				return l
			},
			want: "fetch-record",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := builder
			if tc.signer != nil {
				s = tc.signer
			}
			dir := writeLinks(t, s, tc.links())
			_, err := VerifyLinks(layout, ownerPub, dir)
			sameAsInToto(t, layout, ownerPub, dir, err)
			if err == nil {
				t.Fatal("verification passed")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
	t.Run("layout signed by another owner", func(t *testing.T) {
		_, otherPub := newSigner(t, "")
		_, err := VerifyLinks(layout, otherPub, honest)
		sameAsInToto(t, layout, otherPub, honest, err)
		if err == nil {
			t.Fatal("verified against the wrong owner key")
		}
	})
	t.Run("expired layout", func(t *testing.T) {
		expired, err := Layout(ctx, owner, chain, LayoutOptions{Functionaries: [][]byte{builderPub}, Expires: time.Now().Add(-time.Hour), PipelineDigest: testPipeline})
		if err != nil {
			t.Fatal(err)
		}
		_, err = VerifyLinks(expired, ownerPub, honest)
		sameAsInToto(t, expired, ownerPub, honest, err)
		if err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired layout: %v, want an expiry error", err)
		}
	})
}

// sameAsInToto checks that VerifyLinks, which runs in-toto-golang's
// verification steps itself to keep the links it accepted, decides as
// in-toto-golang's own InTotoVerify does, with the same error.
func sameAsInToto(t *testing.T, layout *intoto.Metablock, ownerPub []byte, linkDir string, got error) {
	t.Helper()
	k, err := InTotoKey(ownerPub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "root.layout")
	if err := WriteMetablock(layout, p); err != nil {
		t.Fatal(err)
	}
	md, err := intoto.LoadMetadata(p)
	if err != nil {
		t.Fatal(err)
	}
	_, want := intoto.InTotoVerify(md, map[string]intoto.Key{k.KeyID: k}, linkDir, "accord", nil, nil, false)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("VerifyLinks: %v; in-toto-golang's InTotoVerify: %v", got, want)
	}
}

func copyMap(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
