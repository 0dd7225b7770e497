package pull_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/store"
)

// uncompressedImage is an image with uncompressed layers, as docker save
// writes them.
func uncompressedImage(t *testing.T, files ...string) v1.Image {
	t.Helper()
	img := empty.Image
	for _, f := range files {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(f)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f))
		tw.Close()
		var err error
		if img, err = mutate.AppendLayers(img, store.NewHashedLayer(buf.Bytes(), types.OCIUncompressedLayer)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ociDir writes an OCI layout holding x (an image or an index) under the
// ref name annotations.
func ociDir(t *testing.T, x any, ann map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	switch x := x.(type) {
	case v1.Image:
		err = lp.AppendImage(x, layout.WithAnnotations(ann))
	case v1.ImageIndex:
		err = lp.AppendIndex(x, layout.WithAnnotations(ann))
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarDir tars dir (gzipped if asked), with extra entries appended.
func tarDir(t *testing.T, dir string, gz bool, extra ...*tar.Header) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "image.tar")
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, _ := d.Info()
		h, _ := tar.FileInfoHeader(info, "")
		h.Name = filepath.ToSlash(rel)
		tw.WriteHeader(h)
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			tw.Write(b)
		}
		return nil
	})
	for _, h := range extra {
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func dockerSave(t *testing.T, tag string, img v1.Image) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "saved.tar")
	tg, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(f, tg, img); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestImport imports each kind of file and runs the image from the store
// by its pinned reference, with no registry.
func TestImport(t *testing.T) {
	amd, arm := platformImage(t, "linux", "amd64"), platformImage(t, "linux", "arm64")
	idx := index(t, map[string]v1.Image{"linux/amd64": amd, "linux/arm64": arm})
	idxDigest, _ := idx.Digest()
	plain := uncompressedImage(t, "etc/os-release", "usr/bin/tool")
	named := map[string]string{"io.containerd.image.name": "docker.io/library/golang:1.22", store.RefAnnotation: "1.22"}
	for _, tc := range []struct {
		name, file string
		ref        string // the pinned reference the result names
		manifest   string // the image that runs
	}{
		{"OCI layout directory", ociDir(t, amd, named), "index.docker.io/library/golang@" + digestOf(t, amd), digestOf(t, amd)},
		{"OCI layout directory, index", ociDir(t, idx, named), "index.docker.io/library/golang@" + idxDigest.String(), digestOf(t, amd)},
		{"OCI layout directory, no name", ociDir(t, amd, nil), digestOf(t, amd), digestOf(t, amd)},
		{"OCI layout tar", tarDir(t, ociDir(t, idx, named), false), "index.docker.io/library/golang@" + idxDigest.String(), digestOf(t, amd)},
		{"OCI layout tar.gz", tarDir(t, ociDir(t, amd, named), true), "index.docker.io/library/golang@" + digestOf(t, amd), digestOf(t, amd)},
		{"docker save, compressed layers", dockerSave(t, "registry.example/team/tool:v1", amd), "", ""},
		{"docker save, uncompressed layers", dockerSave(t, "busybox:1.36", plain), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			p := pull.New(pull.WithTempDir(t.TempDir()))
			res, err := p.Import(context.Background(), tc.file, st)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 {
				t.Fatalf("imported %d images, want 1: %+v", len(res), res)
			}
			r := res[0]
			if tc.ref != "" && (r.Ref != tc.ref || r.Manifest != tc.manifest) {
				t.Errorf("imported %s (image %s), want %s (image %s)", r.Ref, r.Manifest, tc.ref, tc.manifest)
			}
			if r.Platform != "linux/amd64" || r.Source != tc.file {
				t.Errorf("result %+v", r)
			}
			// Again, from the same file: the same digest.
			again, err := p.Import(context.Background(), tc.file, newStore(t))
			if err != nil || again[0].Ref != r.Ref {
				t.Errorf("a second import gave %+v, %v; want %s", again, err, r.Ref)
			}
			img, err := pull.NewImages(st, nil).ImageRef(context.Background(), pinnedRef(r.Ref))
			if err != nil {
				t.Fatalf("the imported %s is not found by reference: %v", r.Ref, err)
			}
			if got := digestOf(t, img); got != r.Manifest {
				t.Errorf("found %s, want %s", got, r.Manifest)
			}
			if err := store.VerifyBlobs(img, mustHash(t, r.Manifest)); err != nil {
				t.Errorf("stored image does not verify: %v", err)
			}
		})
	}
}

func pinnedRef(ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return "accord.dev/imported@" + ref
	}
	return ref
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestImportBadInput: a file that was changed, or is no image, or tries
// to write outside its staging directory, fails with the store as it
// was.
func TestImportBadInput(t *testing.T) {
	amd := platformImage(t, "linux", "amd64")
	m, _ := amd.Manifest()
	layerHex := m.Layers[len(m.Layers)-1].Digest.Hex
	tamper := func(dir, hex string) string {
		f := filepath.Join(dir, "blobs", "sha256", hex)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		os.WriteFile(f, b, 0o644)
		return dir
	}
	manifestHex := strings.TrimPrefix(digestOf(t, amd), "sha256:")
	armOnly := index(t, map[string]v1.Image{"linux/arm64": platformImage(t, "linux", "arm64")})
	notImage := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notImage, []byte("not a tarball"), 0o644)
	docker := dockerSave(t, "busybox:1.36", uncompressedImage(t, "bin/sh"))
	tamperedDocker := tamperTar(t, docker, "bin/sh")
	escape := tarDir(t, ociDir(t, amd, nil), false,
		&tar.Header{Name: "../../escaped", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644},
		&tar.Header{Name: "blobs/sha256/" + strings.Repeat("e", 64), Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		&tar.Header{Name: "/abs/escaped", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644})
	for _, tc := range []struct {
		name, file string
		kind       pull.Kind
		fix        string
	}{
		{"layer changed", tamper(ociDir(t, amd, nil), layerHex), pull.DigestMismatch, "damaged or was modified"},
		{"manifest changed", tamper(ociDir(t, amd, nil), manifestHex), pull.DigestMismatch, "damaged or was modified"},
		{"layer changed in a tar", tarDir(t, tamper(ociDir(t, amd, nil), layerHex), false), pull.DigestMismatch, "damaged"},
		{"docker save, layer changed", tamperedDocker, pull.DigestMismatch, "damaged"},
		{"index without the host platform", ociDir(t, armOnly, nil), pull.NoPlatform, "has linux/amd64"},
		{"not an image", notImage, pull.Failed, "OCI layout"},
		{"no such file", filepath.Join(t.TempDir(), "missing.tar"), pull.Failed, "name an OCI layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			before := snapshot(t, st.Dir())
			_, err := pull.New(pull.WithTempDir(t.TempDir())).Import(context.Background(), tc.file, st)
			checkErr(t, err, tc.kind, "", tc.fix)
			unchanged(t, st, before)
		})
	}
	t.Run("entries outside the layout are ignored", func(t *testing.T) {
		st := newStore(t)
		staging := filepath.Join(t.TempDir(), "a", "b")
		res, err := pull.New(pull.WithTempDir(staging)).Import(context.Background(), escape, st)
		if err != nil || len(res) != 1 {
			t.Fatalf("Import = %+v, %v", res, err)
		}
		for _, p := range []string{filepath.Join(staging, "..", "..", "escaped"), "/abs/escaped"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s was written", p)
			}
		}
	})
}

// tamperTar rewrites the tar file with one byte of the first regular
// file containing marker flipped (a layer of a docker save tarball).
func tamperTar(t *testing.T, file, marker string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	done := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		body, _ := io.ReadAll(tr)
		if i := bytes.Index(body, []byte(marker+"\x00")); !done && i >= 0 && !strings.HasSuffix(h.Name, ".json") {
			j := bytes.LastIndex(body, []byte(marker))
			body[j] ^= 0x20
			done = true
		}
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	if !done {
		t.Fatalf("no layer with %q in %s", marker, file)
	}
	f := filepath.Join(t.TempDir(), "tampered.tar")
	os.WriteFile(f, out.Bytes(), 0o644)
	return f
}
