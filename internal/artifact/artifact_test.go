package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/beneath"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
)

const mount = "/workspace/output"

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// fixture is a finished build: one succeeded task "build" whose output
// workspace is a temporary directory, read through the file system the
// local engine gives (package beneath), and a layout store.
type fixture struct {
	out   string // host directory mounted at /workspace/output
	store *store.Layout
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{out: t.TempDir(), store: st}
}

func (f *fixture) result(outputs ...engine.Output) *engine.Result {
	return &engine.Result{
		Succeeded: true,
		Tasks: []engine.TaskResult{
			{Name: "fetch", Status: engine.Succeeded, Workspaces: map[string]fs.FS{"/workspace/source": beneath.FS(filepath.Dir(f.out), "")}},
			{Name: "build", Status: engine.Succeeded, Workspaces: map[string]fs.FS{mount: beneath.FS(f.out, "")}},
		},
		Outputs: outputs,
	}
}

func (f *fixture) writeFile(t *testing.T, rel string, b []byte) {
	t.Helper()
	p := filepath.Join(f.out, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeImage writes a random image as an OCI layout at rel and returns it.
func (f *fixture) writeImage(t *testing.T, rel string) ggcrv1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(f.out, rel), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return img
}

// snapshot is the store's index and the names of its blobs.
func (f *fixture) snapshot(t *testing.T) (string, []string) {
	t.Helper()
	idx, err := os.ReadFile(filepath.Join(f.store.Dir(), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var blobs []string
	err = filepath.WalkDir(filepath.Join(f.store.Dir(), "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs = append(blobs, d.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(blobs)
	return string(idx), blobs
}

func digestOfImage(t *testing.T, img ggcrv1.Image) ggcrv1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCollectFile(t *testing.T) {
	ctx := context.Background()
	content := []byte("\x7fELF a static binary")
	for _, tc := range []struct {
		name   string
		uri    string
		digest string
	}{
		{"claimed digest right", mount + "/bin/app", sha(content)},
		{"digest without algorithm", mount + "/bin/app", strings.TrimPrefix(sha(content), "sha256:")},
		{"file:// URI", "file://" + mount + "/bin/app", sha(content)},
		{"unclean URI", mount + "/./tmp/../bin//app", sha(content)},
		{"symlink inside the workspace", mount + "/app-link", sha(content)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.writeFile(t, "bin/app", content)
			if err := os.Symlink("bin/app", filepath.Join(f.out, "app-link")); err != nil {
				t.Fatal(err)
			}
			out := engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: tc.uri, Digest: tc.digest}
			arts, err := Collect(ctx, f.result(out), f.store, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(arts) != 1 {
				t.Fatalf("got %d artifacts", len(arts))
			}
			a := arts[0]
			name := filepath.Base(tc.uri)
			want := Artifact{Name: name, Kind: engine.Artifact, URI: tc.uri, Digest: sha(content), Task: "build", Stored: a.Stored}
			if diff := cmp.Diff(want, a); diff != "" {
				t.Errorf("artifact (-want +got):\n%s", diff)
			}

			// Stored is a manifest digest the store can load, holding the file.
			h, err := ggcrv1.NewHash(a.Stored)
			if err != nil {
				t.Fatalf("Stored %q: %v", a.Stored, err)
			}
			img, err := f.store.Image(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if got := digestOfImage(t, img); got != h {
				t.Errorf("stored image digest %s, want %s", got, h)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("layers: %d, %v", len(layers), err)
			}
			rc, err := layers[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(b, content) {
				t.Errorf("stored bytes %q, want %q", b, content)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != FileArtifactType || m.Layers[0].Annotations["org.opencontainers.image.title"] != name {
				t.Errorf("manifest: mediaType %s, config %s, layer annotations %v", m.MediaType, m.Config.MediaType, m.Layers[0].Annotations)
			}
			if ref, err := f.store.Resolve(name); err != nil || ref != h {
				t.Errorf("Resolve(%q) = %v, %v", name, ref, err)
			}
			// Deterministic: the same name and bytes give the same manifest.
			again, err := FileImage(name, content)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestOfImage(t, again); d != h {
				t.Errorf("FileImage digest %s, stored %s", d, h)
			}
		})
	}
}

func TestCollectFileMismatch(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good, built := []byte("honest output"), []byte("what the task really built")
	f.writeFile(t, "good.txt", good)
	f.writeFile(t, "bin/app", built)
	lie := sha([]byte("what the task says it built"))
	res := f.result(
		// The honest output comes first: it must not be stored either.
		engine.Output{Kind: engine.Artifact, Task: "build", Hint: "GOOD_ARTIFACT_URI", URI: mount + "/good.txt", Digest: sha(good)},
		engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: lie},
	)
	idxBefore, blobsBefore := f.snapshot(t)

	arts, err := Collect(ctx, res, f.store, true)
	if arts != nil {
		t.Errorf("artifacts returned with the error: %v", arts)
	}
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("got %T (%v), want *MismatchError", err, err)
	}
	want := &MismatchError{Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Claimed: lie, Actual: sha(built)}
	if diff := cmp.Diff(want, me); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if msg := me.Error(); !strings.Contains(msg, "refusing to record") || !strings.Contains(msg, "fix: ") {
		t.Errorf("Error() = %q", msg)
	}
	idxAfter, blobsAfter := f.snapshot(t)
	if idxAfter != idxBefore {
		t.Errorf("index.json changed:\nbefore %s\nafter  %s", idxBefore, idxAfter)
	}
	if diff := cmp.Diff(blobsBefore, blobsAfter); diff != "" {
		t.Errorf("blobs written (-before +after):\n%s", diff)
	}
}

func TestCollectImage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		at     string // where the layout is written, under the workspace
		digest func(h ggcrv1.Hash) string
	}{
		{"layout at the workspace's top", ".", func(h ggcrv1.Hash) string { return h.String() }},
		{"layout in a subdirectory", "image", func(h ggcrv1.Hash) string { return h.String() }},
		{"layout two levels down", "oci/app", func(h ggcrv1.Hash) string { return h.String() }},
		{"digest without algorithm", "image", func(h ggcrv1.Hash) string { return h.Hex }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.writeFile(t, "bin/app", []byte("noise next to the layout"))
			img := f.writeImage(t, tc.at)
			h := digestOfImage(t, img)
			out := engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: tc.digest(h)}
			arts, err := Collect(ctx, f.result(out), f.store, true)
			if err != nil {
				t.Fatal(err)
			}
			want := []Artifact{{Name: "example.com/app", Kind: engine.Image, URI: "example.com/app", Digest: h.String(), Task: "build", Stored: h.String()}}
			if diff := cmp.Diff(want, arts); diff != "" {
				t.Errorf("artifacts (-want +got):\n%s", diff)
			}
			got, err := f.store.Image(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestOfImage(t, got); d != h {
				t.Errorf("stored image has digest %s, want %s", d, h)
			}
			wantLayers, _ := img.Layers()
			gotLayers, _ := got.Layers()
			if len(gotLayers) != len(wantLayers) {
				t.Fatalf("%d layers, want %d", len(gotLayers), len(wantLayers))
			}
			for i := range wantLayers {
				a, _ := wantLayers[i].Digest()
				b, _ := gotLayers[i].Digest()
				if a != b || !f.store.Has(b) {
					t.Errorf("layer %d: %s, want %s in the store", i, b, a)
				}
			}
			if ref, err := f.store.Resolve("example.com/app"); err != nil || ref != h {
				t.Errorf("Resolve = %v, %v", ref, err)
			}
		})
	}
}

func TestCollectImageAndFileTogether(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bin := []byte("binary")
	f.writeFile(t, "bin/app", bin)
	h := digestOfImage(t, f.writeImage(t, "image"))
	res := f.result(
		engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: h.String()},
		engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: sha(bin)},
	)
	arts, err := Collect(ctx, res, f.store, true)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range arts {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"app", "example.com/app"}, names); diff != "" {
		t.Errorf("artifacts sorted by name (-want +got):\n%s", diff)
	}
}

func TestCollectImageTampered(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	h := digestOfImage(t, f.writeImage(t, "image"))
	// The task rewrites the manifest blob after computing its digest.
	blob := filepath.Join(f.out, "image", "blobs", "sha256", h.Hex)
	raw, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(raw, []byte(`"schemaVersion":2`), []byte(`"schemaVersion": 2`), 1)
	if err := os.WriteFile(blob, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	idxBefore, _ := f.snapshot(t)
	_, err = Collect(ctx, f.result(engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: h.String()}), f.store, true)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("got %T (%v), want *MismatchError", err, err)
	}
	if me.Claimed != h.String() || me.Actual != sha(tampered) {
		t.Errorf("claimed %s actual %s", me.Claimed, me.Actual)
	}
	if idxAfter, _ := f.snapshot(t); idxAfter != idxBefore {
		t.Errorf("index.json changed")
	}
}

func TestCollectNotFound(t *testing.T) {
	ctx := context.Background()
	other, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherDigest := digestOfImage(t, other).String()
	content := []byte("content")

	for _, tc := range []struct {
		name string
		out  engine.Output
		is   error  // the error must wrap this
		msg  string // and contain this
	}{
		{
			name: "image digest not in any layout",
			out:  engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: otherDigest},
			is:   ErrNotFound,
			msg:  "write the image as an OCI layout",
		},
		{
			name: "image of a task without workspaces",
			out:  engine.Output{Kind: engine.Image, Task: "nosuchtask", Hint: "IMAGE_URL", URI: "example.com/app", Digest: otherDigest},
			is:   ErrNotFound,
		},
		{
			name: "file outside every mount",
			out:  engine.Output{Kind: engine.Artifact, Task: "build", Hint: "X_ARTIFACT_URI", URI: "/tmp/app", Digest: sha(content)},
			is:   ErrNotFound,
			msg:  "$(workspaces.NAME.path)",
		},
		{
			name: "file next to a mount, sharing its prefix",
			out:  engine.Output{Kind: engine.Artifact, Task: "build", Hint: "X_ARTIFACT_URI", URI: mount + "2/bin/app", Digest: sha(content)},
			is:   ErrNotFound,
		},
		{
			name: "file escaping the mount with ..",
			out:  engine.Output{Kind: engine.Artifact, Task: "build", Hint: "X_ARTIFACT_URI", URI: mount + "/../../etc/passwd", Digest: sha(content)},
			is:   ErrNotFound,
		},
		{
			name: "file of another task's mount",
			out:  engine.Output{Kind: engine.Artifact, Task: "fetch", Hint: "X_ARTIFACT_URI", URI: mount + "/bin/app", Digest: sha(content)},
			is:   ErrNotFound,
		},
		{
			name: "file missing inside the mount",
			out:  engine.Output{Kind: engine.Artifact, Task: "build", Hint: "X_ARTIFACT_URI", URI: mount + "/bin/nothing", Digest: sha(content)},
			is:   fs.ErrNotExist,
		},
		{
			name: "image digest that is not a digest",
			out:  engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: "latest"},
			msg:  "is not a digest",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.writeFile(t, "bin/app", content)
			f.writeImage(t, "image")
			idxBefore, _ := f.snapshot(t)
			arts, err := Collect(ctx, f.result(tc.out), f.store, true)
			if err == nil {
				t.Fatalf("Collect succeeded: %+v", arts)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if idxAfter, _ := f.snapshot(t); idxAfter != idxBefore {
				t.Errorf("index.json changed")
			}
		})
	}
}

// TestCollectFileSymlinkOutOfWorkspace: a step can leave a symlink in its
// workspace pointing anywhere on the host. accord must not follow it out
// of the workspace: the host file is not something the run produced.
func TestCollectFileSymlinkOutOfWorkspace(t *testing.T) {
	ctx := context.Background()
	hostFile := filepath.Join(t.TempDir(), "host-secret")
	secret := []byte("a file on the host, not in any workspace")
	if err := os.WriteFile(hostFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, target, digest string
	}{
		{"absolute symlink to a host file", hostFile, sha(secret)},
		{"relative symlink climbing out", "../../../../../../../../.." + hostFile, sha(secret)},
		{"symlink to a device", "/dev/zero", sha(nil)},
		{"symlink to a directory outside", "/", sha(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := os.MkdirAll(filepath.Join(f.out, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target, filepath.Join(f.out, "bin", "app")); err != nil {
				t.Fatal(err)
			}
			idxBefore, _ := f.snapshot(t)
			out := engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: tc.digest}
			arts, err := Collect(ctx, f.result(out), f.store, true)
			if err == nil {
				t.Fatalf("Collect stored a file from outside the workspace: %+v", arts)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("error %v does not wrap ErrNotFound", err)
			}
			if idxAfter, _ := f.snapshot(t); idxAfter != idxBefore {
				t.Errorf("index.json changed")
			}
		})
	}
}

func TestCollectFileNotRegular(t *testing.T) {
	f := newFixture(t)
	if err := os.MkdirAll(filepath.Join(f.out, "bin", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Opening a FIFO without a writer would block for ever.
	if err := syscall.Mkfifo(filepath.Join(f.out, "bin", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fifo", "dir"} {
		t.Run(name, func(t *testing.T) {
			out := engine.Output{Kind: engine.Artifact, Task: "build", Hint: "X_ARTIFACT_URI", URI: mount + "/bin/" + name, Digest: sha(nil)}
			_, err := Collect(context.Background(), f.result(out), f.store, true)
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("got %v, want a 'not a regular file' ErrNotFound", err)
			}
		})
	}
}

// TestCollectImageSymlinkOutOfWorkspace: the files of an image layout must
// be in the workspace too.
func TestCollectImageSymlinkOutOfWorkspace(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// redirect replaces a file of the layout at dir with a symlink,
		// given the manifest digest and the first layer's digest.
		redirect func(t *testing.T, dir string, manifest, layer ggcrv1.Hash)
	}{
		{"layer blob moved out, same bytes", func(t *testing.T, dir string, _, layer ggcrv1.Hash) {
			moveOut(t, filepath.Join(dir, "blobs", "sha256", layer.Hex))
		}},
		{"manifest blob moved out, same bytes", func(t *testing.T, dir string, manifest, _ ggcrv1.Hash) {
			moveOut(t, filepath.Join(dir, "blobs", "sha256", manifest.Hex))
		}},
		{"blobs directory moved out", func(t *testing.T, dir string, _, _ ggcrv1.Hash) {
			moveOut(t, filepath.Join(dir, "blobs"))
		}},
		{"layer blob is /dev/zero", func(t *testing.T, dir string, _, layer ggcrv1.Hash) {
			relink(t, filepath.Join(dir, "blobs", "sha256", layer.Hex), "/dev/zero")
		}},
		{"manifest blob is /dev/zero", func(t *testing.T, dir string, manifest, _ ggcrv1.Hash) {
			relink(t, filepath.Join(dir, "blobs", "sha256", manifest.Hex), "/dev/zero")
		}},
		{"index.json is /dev/zero", func(t *testing.T, dir string, _, _ ggcrv1.Hash) {
			relink(t, filepath.Join(dir, "index.json"), "/dev/zero")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			img := f.writeImage(t, "image")
			h := digestOfImage(t, img)
			layers, _ := img.Layers()
			ld, _ := layers[0].Digest()
			tc.redirect(t, filepath.Join(f.out, "image"), h, ld)
			idxBefore, blobsBefore := f.snapshot(t)
			out := engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: h.String()}
			arts, err := Collect(ctx, f.result(out), f.store, true)
			if err == nil {
				t.Fatalf("Collect stored an image read from outside the workspace: %+v", arts)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("error %v does not wrap ErrNotFound", err)
			}
			idxAfter, blobsAfter := f.snapshot(t)
			if idxAfter != idxBefore || !cmp.Equal(blobsBefore, blobsAfter) {
				t.Errorf("the store changed")
			}
		})
	}
}

// moveOut moves p out of the workspace and leaves a symlink to it.
func moveOut(t *testing.T, p string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(p))
	if err := os.Rename(p, dst); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dst, p); err != nil {
		t.Fatal(err)
	}
}

func relink(t *testing.T, p, target string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRegular(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for p, target := range map[string]string{
		"in/link-in":      "../file",
		"in/link-out":     filepath.Join(outside, "f"),
		"in/link-dangles": "nothing",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(root, "file"), filepath.Join(outside, "f")} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A mount root reached through a symlink still contains its files.
	linkedRoot := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(root, linkedRoot); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		root, p string
		want    string // content
		is      error
	}{
		{root, "file", filepath.Join(root, "file"), nil},
		{root, "in/link-in", filepath.Join(root, "file"), nil},
		{linkedRoot, "file", filepath.Join(root, "file"), nil},
		{root, "in/link-out", "", ErrNotFound},
		{root, "in", "", ErrNotFound},
		{root, "in/link-dangles", "", fs.ErrNotExist},
		{root, "missing", "", fs.ErrNotExist},
	} {
		got := ""
		f, err := openRegular(beneath.FS(tc.root, ""), tc.p)
		if err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			got = string(b)
		}
		if got != tc.want || (tc.is == nil) != (err == nil) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("openRegular(%s, %s) read %q, %v; want %q, %v", tc.root, tc.p, got, err, tc.want, tc.is)
		}
	}
}

// TestCollectFromTaskResults goes through engine.Outputs, as a run does.
func TestCollectFromTaskResults(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bin := []byte("binary")
	f.writeFile(t, "bin/app", bin)
	h := digestOfImage(t, f.writeImage(t, "image"))
	res := f.result()
	res.Tasks[1].Results = []v1.TaskRunResult{
		{Name: "BINARY_ARTIFACT_OUTPUTS", Type: v1.ResultsTypeObject, Value: *v1.NewObject(map[string]string{"uri": mount + "/bin/app", "digest": sha(bin)})},
		{Name: "IMAGE_URL", Type: v1.ResultsTypeString, Value: *v1.NewStructuredValues("example.com/app\n")},
		{Name: "IMAGE_DIGEST", Type: v1.ResultsTypeString, Value: *v1.NewStructuredValues(h.String())},
	}
	res.Outputs = engine.Outputs(res.Tasks)
	arts, err := Collect(ctx, res, f.store, true)
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ Name, Kind, Digest string }
	var gots []got
	for _, a := range arts {
		gots = append(gots, got{a.Name, string(a.Kind), a.Digest})
	}
	want := []got{{"app", "artifact", sha(bin)}, {"example.com/app", "image", h.String()}}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCollectUnnamed: a validator's artifacts are stored by digest only;
// the name keeps pointing at the primary's.
func TestCollectUnnamed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.writeFile(t, "bin/app", []byte("primary"))
	res := f.result()
	res.Tasks[1].Results = []v1.TaskRunResult{{Name: "BINARY_ARTIFACT_OUTPUTS", Type: v1.ResultsTypeObject,
		Value: *v1.NewObject(map[string]string{"uri": mount + "/bin/app", "digest": sha([]byte("primary"))})}}
	res.Outputs = engine.Outputs(res.Tasks)
	primary, err := Collect(ctx, res, f.store, true)
	if err != nil {
		t.Fatal(err)
	}
	f.writeFile(t, "bin/app", []byte("validator"))
	res.Tasks[1].Results[0].Value = *v1.NewObject(map[string]string{"uri": mount + "/bin/app", "digest": sha([]byte("validator"))})
	res.Outputs = engine.Outputs(res.Tasks)
	validator, err := Collect(ctx, res, f.store, false)
	if err != nil {
		t.Fatal(err)
	}
	h, err := f.store.Resolve("app")
	if err != nil || h.String() != primary[0].Stored {
		t.Errorf("app resolves to %s (%v), want the primary's %s", h, err, primary[0].Stored)
	}
	vh, _ := ggcrv1.NewHash(validator[0].Stored)
	if _, err := f.store.Image(ctx, vh); err != nil {
		t.Errorf("the validator's artifact is not in the store by digest: %v", err)
	}
}

// TestMountOf: a container path maps to the host through the task's
// workspace mounts (the longest mount path wins), never outside them.
func TestMountOf(t *testing.T) {
	mounts := map[string]string{"/workspace/output": "/host/out", "/workspace/output/cache": "/host/cache", "/workspace/source": "/host/src"}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/workspace/output/bin/app", "/host/out/bin/app", true},
		{"/workspace/output", "/host/out", true},
		{"/workspace/output/cache/x", "/host/cache/x", true}, // the longest mount wins
		{"file:///workspace/source/go.mod", "/host/src/go.mod", true},
		{"/workspace/output/../source/go.mod", "/host/src/go.mod", true},
		{"/workspace/outputs/x", "", false},
		{"/workspace/output/../../etc/passwd", "", false},
		{"relative/path", "", false},
		{"", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			dest, rest, ok := mountOf(tc.in, []string{"/workspace/output", "/workspace/output/cache", "/workspace/source"})
			got := ""
			if ok {
				got = filepath.Join(mounts[dest], rest)
			}
			if got != tc.want || ok != tc.ok {
				t.Errorf("mountOf(%q) maps to %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestCollectSubPathReplacedByLink: a task announced an output in a
// subPath mount; a later step of the run replaced a directory of that
// subPath with a link to a host directory. The mount's host path now leads
// there; Collect reads through the FS the engine gave, beneath the
// workspace root, and cannot leave it.
func TestCollectSubPathReplacedByLink(t *testing.T) {
	ctx := context.Background()
	secret := []byte("host secret: must never reach the store")
	host := t.TempDir()
	if err := os.MkdirAll(filepath.Join(host, "b", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "b", "bin", "app"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(host, "b", "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	h := digestOfImage(t, img)
	file := engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: sha(secret)}
	image := engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: h.String()}
	for _, tc := range []struct {
		name string
		// The mount is subPath a/b; link (a or a/b) became a link to target.
		link, target string
		out          engine.Output
	}{
		{"file, a directory of the subPath now a link to a host directory", "a", host, file},
		{"file, the subPath now a link to a host directory", "a/b", filepath.Join(host, "b"), file},
		{"file, the subPath now a link to /", "a/b", "/", engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + host + "/b/bin/app", Digest: sha(secret)}},
		{"image, a directory of the subPath now a link to a host directory", "a", host, image},
		{"image, a directory of the subPath now a relative link out", "a", "../../../../../../../../../.." + host, image},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ws := f.out
			link := filepath.Join(ws, tc.link)
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target, link); err != nil {
				t.Fatal(err)
			}
			res := &engine.Result{Succeeded: true, Outputs: []engine.Output{tc.out}, Tasks: []engine.TaskResult{{
				Name: "build", Status: engine.Succeeded,
				Workspaces: map[string]fs.FS{mount: beneath.FS(ws, "a/b")},
			}}}
			idxBefore, blobsBefore := f.snapshot(t)
			arts, err := Collect(ctx, res, f.store, true)
			if err == nil {
				t.Fatalf("Collect stored %+v, read through a link out of the workspace", arts)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("error %v does not wrap ErrNotFound", err)
			}
			if strings.Contains(err.Error(), sha(secret)) {
				t.Errorf("the error shows the digest of the host file: %v", err)
			}
			if idxAfter, blobsAfter := f.snapshot(t); idxAfter != idxBefore || !cmp.Equal(blobsBefore, blobsAfter) {
				t.Errorf("the store changed")
			}
		})
	}
}

// TestCollectFromAnotherEngine: Collect reads workspaces only through the
// FS an engine gives, so an engine whose workspaces are not host
// directories (here an in-memory FS, as a cluster engine's could be)
// works the same: a file and an OCI layout are found by container path,
// and what is not a regular file is refused.
func TestCollectFromAnotherEngine(t *testing.T) {
	ctx := context.Background()
	bin := []byte("\x7fELF from a cluster")
	f := newFixture(t)
	img := f.writeImage(t, "image")
	h := digestOfImage(t, img)
	mem := fstest.MapFS{
		"bin/app":  {Data: bin, Mode: 0o755},
		"bin/fifo": {Mode: fs.ModeNamedPipe},
		"bin/dir":  {Mode: fs.ModeDir | 0o755},
	}
	err := filepath.WalkDir(filepath.Join(f.out, "image"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(f.out, p)
		mem[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	result := func(outs ...engine.Output) *engine.Result {
		return &engine.Result{Succeeded: true, Outputs: outs, Tasks: []engine.TaskResult{
			{Name: "build", Status: engine.Succeeded, Workspaces: map[string]fs.FS{mount: mem}},
		}}
	}
	file := engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: sha(bin)}
	image := engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: "example.com/app", Digest: h.String()}
	arts, err := Collect(ctx, result(file, image), f.store, true)
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ Name, Digest string }
	var gots []got
	for _, a := range arts {
		gots = append(gots, got{a.Name, a.Digest})
	}
	if diff := cmp.Diff([]got{{"app", sha(bin)}, {"example.com/app", h.String()}}, gots); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, name := range []string{"fifo", "dir"} {
		out := engine.Output{Kind: engine.Artifact, Task: "build", Hint: "X_ARTIFACT_URI", URI: mount + "/bin/" + name, Digest: sha(nil)}
		if _, err := Collect(ctx, result(out), f.store, true); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: got %v, want a 'not a regular file' ErrNotFound", name, err)
		}
	}
}
