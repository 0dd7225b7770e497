package attest

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
)

func rawTar(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		h := h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return b.Bytes()
}

func TestLinksBundle(t *testing.T) {
	files := map[string][]byte{"b-step.1234abcd.link": []byte(`{"b":1}`), "a-step.1234abcd.link": []byte(`{"a":1}`)}
	b, err := LinksBundle(files)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := LinksBundle(files)
	if !bytes.Equal(b, again) {
		t.Error("the links bundle is not deterministic")
	}
	got, err := ReadLinksBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(files, got); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	long := map[string][]byte{strings.Repeat("t", 63) + "-" + strings.Repeat("s", 63) + ".1234abcd.link": []byte("{}")}
	if b, err := LinksBundle(long); err != nil {
		t.Errorf("a long task and step name: %v", err)
	} else if got, err := ReadLinksBundle(b); err != nil || !cmp.Equal(long, got) {
		t.Errorf("a long task and step name: %v %v", got, err)
	}
	if _, err := LinksBundle(map[string][]byte{"../x.link": nil}); err == nil {
		t.Error("LinksBundle accepted a path as a link file name")
	}
	reg := func(name string, size int64) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644}
	}
	for _, tc := range []struct {
		name, want string
		blob       []byte
	}{
		{"garbage", "links bundle", bytes.Repeat([]byte("not a tar archive "), 64)},
		{"truncated", "unexpected EOF", b[:512*3+3]}, // inside the second link
		{"empty", "no link files", nil},
		{"path in a name", "not a link file name", rawTar(t, reg("../../etc/x.link", 1))},
		{"not a link", "not a link file name", rawTar(t, reg("notes.txt", 1))},
		{"symlink", "not a regular file", rawTar(t, tar.Header{Name: "a.link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})},
		{"duplicate", "appears twice", rawTar(t, reg("a.link", 1), reg("a.link", 2))},
		{"oversized link", "over the", rawTar(t, reg("a.link", maxLinkFile+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadLinksBundle(tc.blob)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestProvenanceNamesLinks: the provenance names the links bundle as a
// runDetails byproduct, and ParseProvenance reads it back.
func TestProvenanceNamesLinks(t *testing.T) {
	links := strings.Repeat("c", 64)
	for _, tc := range []struct{ name, links string }{{"with links", links}, {"without links", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			stmt, err := Provenance(&Build{Pipeline: "p", PipelineDigest: testPipeline, Run: Run{BuilderID: "https://b", LinksSHA256: tc.links}}, []Subject{{Name: "a", SHA256: strings.Repeat("d", 64)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(stmt), `"byproducts":[{"digest":{"sha256":"`+links+`"},"mediaType":"`+LinksBundleMediaType+`","name":"links"}]`); got != (tc.links != "") {
				t.Errorf("byproduct in provenance = %v:\n%s", got, stmt)
			}
			st, err := ParseStatement(stmt)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseProvenance(st.Predicate)
			if err != nil {
				t.Fatal(err)
			}
			if s.LinksSHA256 != tc.links {
				t.Errorf("LinksSHA256 = %q, want %q", s.LinksSHA256, tc.links)
			}
		})
	}
}

func TestLayoutPipelineDigest(t *testing.T) {
	ctx := context.Background()
	owner, _ := newSigner(t, "")
	_, fn := newSigner(t, "")
	o := LayoutOptions{Functionaries: [][]byte{fn}, Expires: time.Now().Add(time.Hour), Readme: "accord layout for pipeline p", PipelineDigest: testPipeline}
	mb, err := Layout(ctx, owner, chain, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := LayoutPipelineDigest(mb.Signed.(intoto.Layout)); err != nil || got != testPipeline {
		t.Errorf("LayoutPipelineDigest = %q, %v; want %q", got, err, testPipeline)
	}
	for _, bad := range []string{"", "sha256:abc", "md5:" + strings.Repeat("a", 64)} {
		o.PipelineDigest = bad
		if _, err := Layout(ctx, owner, chain, o); err == nil {
			t.Errorf("Layout accepted pipeline digest %q", bad)
		}
	}
	for _, readme := range []string{"accord layout", pipelineDigestLine + testPipeline + "\n" + pipelineDigestLine + testPipeline} {
		if _, err := LayoutPipelineDigest(intoto.Layout{Readme: readme}); err == nil {
			t.Errorf("readme %q: no error", readme)
		}
	}
}

// TestFinalProductsDeletion: a file a later step deletes is not among the
// final products.
func TestFinalProductsDeletion(t *testing.T) {
	ctx := context.Background()
	owner, ownerPub := newSigner(t, "")
	builder, builderPub := newSigner(t, "")
	layout, err := Layout(ctx, owner, chain, LayoutOptions{Functionaries: [][]byte{builderPub}, Expires: time.Now().Add(time.Hour), PipelineDigest: testPipeline})
	if err != nil {
		t.Fatal(err)
	}
	l := honestLinks()
	l[2].Products = map[string]string{"output/image/index.json": sha("idx")}
	final, err := VerifyLinks(layout, ownerPub, writeLinks(t, builder, l))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := final["output/bin/hello"]; ok {
		t.Errorf("a deleted file is among the final products: %v", final)
	}
}

// FuzzReadLinksBundle: any blob is an error or link files that make the
// same bundle again.
func FuzzReadLinksBundle(f *testing.F) {
	b, _ := LinksBundle(map[string][]byte{"a-step.1234abcd.link": []byte(`{"a":1}`)})
	f.Add(b)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, blob []byte) {
		files, err := ReadLinksBundle(blob)
		if err != nil {
			return
		}
		again, err := LinksBundle(files)
		if err != nil {
			t.Fatalf("read files LinksBundle refuses: %v", err)
		}
		back, err := ReadLinksBundle(again)
		if err != nil || !cmp.Equal(files, back) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
