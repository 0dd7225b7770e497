package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(512, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func openLayout(t *testing.T) *Layout {
	t.Helper()
	l, err := OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// imageContent is what must survive a round trip: manifest, config and
// every layer's compressed bytes.
type imageContent struct {
	Digest   v1.Hash
	Manifest string
	Config   string
	Layers   map[string][]byte
}

func contentOf(t *testing.T, img v1.Image) imageContent {
	t.Helper()
	c := imageContent{Digest: digest(t, img), Layers: map[string][]byte{}}
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	c.Manifest = string(m)
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c.Config = string(cfg)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading layer %s: %v", h, err)
		}
		c.Layers[h.String()] = b
	}
	return c
}

func readIndex(t *testing.T, l *Layout) (v1.IndexManifest, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.Dir(), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.json is not valid JSON: %v\n%s", err, b)
	}
	return idx, b
}

// entries lists the index as "ref digest" lines, sorted.
func entries(t *testing.T, l *Layout) []string {
	t.Helper()
	idx, _ := readIndex(t, l)
	var out []string
	for _, m := range idx.Manifests {
		ref := m.Annotations[RefAnnotation]
		if f := m.Annotations[FormerRefAnnotation]; f != "" {
			ref = "former:" + f
		}
		out = append(out, ref+" "+m.Digest.String())
	}
	sort.Strings(out)
	return out
}

func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Dir() != dir || l.String() != dir {
		t.Errorf("Dir() = %q, String() = %q, want %q", l.Dir(), l.String(), dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil || string(b) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q, %v", b, err)
	}
	idx, _ := readIndex(t, l)
	if idx.SchemaVersion != 2 || idx.MediaType != types.OCIImageIndex || len(idx.Manifests) != 0 {
		t.Errorf("new index = %+v", idx)
	}
	// go-containerregistry reads it as an OCI layout.
	if _, err := layout.FromPath(dir); err != nil {
		t.Errorf("layout.FromPath: %v", err)
	}

	// Reopening keeps what is there.
	h, err := l.Put(context.Background(), "example.com/a:1", randomImage(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l2.Resolve("example.com/a:1"); err != nil || got != h {
		t.Errorf("after reopening: Resolve = %v, %v; want %v", got, err, h)
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := openLayout(t)
	img := randomImage(t, 3)
	want := contentOf(t, img)

	h, err := l.Put(ctx, "example.com/app:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	if h != want.Digest {
		t.Errorf("Put returned %s, want the image digest %s", h, want.Digest)
	}
	got, err := l.Image(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, contentOf(t, got)); diff != "" {
		t.Errorf("stored image differs (-put +loaded):\n%s", diff)
	}
	for d := range want.Layers {
		if h, _ := v1.NewHash(d); !l.Has(h) {
			t.Errorf("layer %s is not in the store", d)
		}
	}
	cfg, _ := img.ConfigName()
	if !l.Has(cfg) || !l.Has(h) {
		t.Errorf("config or manifest blob missing")
	}

	// The blobs are where the OCI layout spec puts them.
	raw, err := os.ReadFile(filepath.Join(l.Dir(), "blobs", "sha256", h.Hex))
	if err != nil || string(raw) != want.Manifest {
		t.Errorf("manifest blob: %v", err)
	}

	// The index entry describes the manifest.
	idx, _ := readIndex(t, l)
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	wantIdx := []v1.Descriptor{{MediaType: desc.MediaType, Digest: h, Size: desc.Size, ArtifactType: desc.ArtifactType, Annotations: map[string]string{RefAnnotation: "example.com/app:v1"}}}
	if diff := cmp.Diff(wantIdx, idx.Manifests); diff != "" {
		t.Errorf("index (-want +got):\n%s", diff)
	}

	if _, err := l.Image(ctx, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}); err == nil {
		t.Error("Image of an unknown digest: no error")
	}
}

func TestLayoutResolve(t *testing.T) {
	ctx := context.Background()
	l := openLayout(t)
	refs := map[string]v1.Hash{}
	for _, ref := range []string{"example.com/a:v1", "example.com/a:v2", "localhost:5000/b"} {
		h, err := l.Put(ctx, ref, randomImage(t, 1))
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = h
	}
	if _, err := l.Put(ctx, "", randomImage(t, 1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref     string
		want    v1.Hash
		wantErr bool
	}{
		{"example.com/a:v1", refs["example.com/a:v1"], false},
		{"example.com/a:v2", refs["example.com/a:v2"], false},
		{"localhost:5000/b", refs["localhost:5000/b"], false},
		{"example.com/a", v1.Hash{}, true},
		{"example.com/a:v3", v1.Hash{}, true},
		{"", v1.Hash{}, false}, // checked below: the unnamed entry
	} {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := l.Resolve(tc.ref)
			if tc.ref == "" {
				return
			}
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "is not in store") {
					t.Errorf("Resolve(%q) = %v, %v; want a not-in-store error", tc.ref, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Resolve(%q) = %v, %v; want %v", tc.ref, got, err, tc.want)
			}
		})
	}
}

func TestLayoutPutReplacesRef(t *testing.T) {
	ctx := context.Background()
	l := openLayout(t)
	a, b, other := randomImage(t, 1), randomImage(t, 2), randomImage(t, 1)
	ha, hb, ho := digest(t, a), digest(t, b), digest(t, other)
	for _, p := range []struct {
		ref string
		img v1.Image
	}{{"example.com/app:v1", a}, {"example.com/other:v1", other}, {"example.com/app:v1", b}} {
		if _, err := l.Put(ctx, p.ref, p.img); err != nil {
			t.Fatal(err)
		}
	}
	// The old image stays indexed by digest (issue 8: it used to drop
	// out, and NAME@OLD with it), marked as the ref's former artifact.
	want := []string{"example.com/app:v1 " + hb.String(), "example.com/other:v1 " + ho.String(), "former:example.com/app:v1 " + ha.String()}
	if diff := cmp.Diff(want, entries(t, l)); diff != "" {
		t.Errorf("index (-want +got):\n%s", diff)
	}
	if got, err := l.Resolve("example.com/app:v1"); err != nil || got != hb {
		t.Errorf("Resolve = %v, %v; want the new image %v", got, err, hb)
	}
	if _, err := l.Image(ctx, ha); err != nil {
		t.Errorf("the replaced image is no longer loadable by digest: %v", err)
	}

	t.Run("same image under two refs", func(t *testing.T) {
		l := openLayout(t)
		for _, ref := range []string{"r/x:1", "r/x:2", "r/x:1"} {
			if _, err := l.Put(ctx, ref, a); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"r/x:1 " + ha.String(), "r/x:2 " + ha.String()}
		if diff := cmp.Diff(want, entries(t, l)); diff != "" {
			t.Errorf("index (-want +got):\n%s", diff)
		}
	})
	t.Run("same image without a ref", func(t *testing.T) {
		l := openLayout(t)
		for _, ref := range []string{"", "", "r/x:1", ""} {
			if _, err := l.Put(ctx, ref, a); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{" " + ha.String(), "r/x:1 " + ha.String()}
		if diff := cmp.Diff(want, entries(t, l)); diff != "" {
			t.Errorf("index (-want +got):\n%s", diff)
		}
	})
}

func TestLayoutConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	l := openLayout(t)
	const n = 8
	imgs := make([]v1.Image, n)
	var want []string
	for i := range imgs {
		imgs[i] = randomImage(t, 2)
		want = append(want, fmt.Sprintf("example.com/img:%d %s", i, digest(t, imgs[i])))
	}
	sort.Strings(want)

	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = l.Put(ctx, fmt.Sprintf("example.com/img:%d", i), imgs[i])
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, entries(t, l)); diff != "" {
		t.Errorf("index after %d concurrent puts (-want +got):\n%s", n, diff)
	}
	for _, img := range imgs {
		got, err := l.Image(ctx, digest(t, img))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(contentOf(t, img), contentOf(t, got)); diff != "" {
			t.Errorf("image %s (-put +loaded):\n%s", digest(t, img), diff)
		}
	}
	if tmp := tmpFiles(t, l.Dir()); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

var errBoom = errors.New("disk unplugged")

// brokenImage is an image one of whose layers fails while being read.
type brokenImage struct {
	v1.Image
	broken int // index of the broken layer
	mode   string
}

func (b brokenImage) Layers() ([]v1.Layer, error) {
	ls, err := b.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := append([]v1.Layer{}, ls...)
	out[b.broken] = brokenLayer{out[b.broken], b.mode}
	return out, nil
}

type brokenLayer struct {
	v1.Layer
	mode string
}

func (b brokenLayer) Compressed() (io.ReadCloser, error) {
	rc, err := b.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	switch b.mode {
	case "error midway":
		return io.NopCloser(io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotestErrReader{})), nil
	case "wrong bytes":
		data[len(data)/2] ^= 0xff
		return io.NopCloser(bytes.NewReader(data)), nil
	case "cannot open":
		return nil, errBoom
	}
	panic(b.mode)
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errBoom }

func TestLayoutPutFailureLeavesIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		mode    string
		wantErr string
		isBoom  bool
	}{
		{"error midway", "disk unplugged", true},
		{"cannot open", "disk unplugged", true},
		{"wrong bytes", "content has digest", false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			l := openLayout(t)
			if _, err := l.Put(ctx, "example.com/before:v1", randomImage(t, 1)); err != nil {
				t.Fatal(err)
			}
			_, before := readIndex(t, l)

			img := randomImage(t, 3)
			bad := brokenImage{Image: img, broken: 1, mode: tc.mode}
			ls, _ := img.Layers()
			badLayer, _ := ls[1].Digest()

			_, err := l.Put(ctx, "example.com/broken:v1", bad)
			if err == nil {
				t.Fatal("Put of an image with a broken layer succeeded")
			}
			if errors.Is(err, errBoom) != tc.isBoom || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q (wrapping the reader's error: %v)", err, tc.wantErr, tc.isBoom)
			}
			if _, after := readIndex(t, l); !bytes.Equal(before, after) {
				t.Errorf("index.json changed:\nbefore %s\nafter  %s", before, after)
			}
			if tmp := tmpFiles(t, l.Dir()); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
			if l.Has(badLayer) {
				t.Error("the broken layer's blob exists")
			}
			if l.Has(digest(t, img)) {
				t.Error("the manifest was written although a layer failed")
			}
			if _, err := l.Resolve("example.com/broken:v1"); err == nil {
				t.Error("the broken image is in the index")
			}

			// The same image, intact, can be stored afterwards.
			if _, err := l.Put(ctx, "example.com/broken:v1", img); err != nil {
				t.Fatalf("retry with the intact image: %v", err)
			}
			if got, err := l.Resolve("example.com/broken:v1"); err != nil || got != digest(t, img) {
				t.Errorf("after retry: Resolve = %v, %v", got, err)
			}
		})
	}
}

func TestLayoutPutCanceled(t *testing.T) {
	l := openLayout(t)
	_, before := readIndex(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Put(ctx, "example.com/x:v1", randomImage(t, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: %v, want context.Canceled", err)
	}
	if _, after := readIndex(t, l); !bytes.Equal(before, after) {
		t.Errorf("index.json changed: %s", after)
	}
}

func TestLayoutCorruptIndex(t *testing.T) {
	l := openLayout(t)
	p := filepath.Join(l.Dir(), "index.json")
	if err := os.WriteFile(p, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := l.Put(context.Background(), "example.com/x:v1", randomImage(t, 1))
	if err == nil || !strings.Contains(err.Error(), "is corrupt") {
		t.Errorf("Put over a corrupt index: %v, want a 'corrupt' error", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "{not json" {
		t.Errorf("corrupt index was overwritten: %q", b)
	}
}
