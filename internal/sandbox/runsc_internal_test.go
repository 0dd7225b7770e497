package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/accord-build/accord/internal/testutil"
)

// TestRunscWritableRoot: a writable root built of overlay mounts of the
// image (which runsc ignores: the step would see an empty root) becomes,
// under runsc, the image itself with gVisor's overlay on top: the step
// writes anywhere, its workspace writes reach the host, and the image
// directory on the host is unchanged.
func TestRunscWritableRoot(t *testing.T) {
	testutil.RequireBinary(t, "runsc")
	cache, err := NewRootFSCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := cache.Get(context.Background(), testutil.BaseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(Runsc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	s := Step{
		ID: "runsc-root-" + filepath.Base(t.TempDir()), RootFS: rootfs, Env: []string{"PATH=/bin"},
		Args:   []string{"sh", "-c", "echo data > /etc/new && mkdir -p /go/src/x /root/.cache && touch /x && cat /etc/new && echo ws > /workspace/out/f"},
		Mounts: []Mount{{Source: ws, Destination: "/workspace/out"}},
	}
	c := config(s, r.rootless, r.MemoryLimits())
	// The root as an overlay of each top-level directory of the image.
	c.Root = &specs.Root{Path: t.TempDir()}
	ents, err := os.ReadDir(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	for _, e := range ents {
		if e.IsDir() {
			up, work := filepath.Join(scratch, "u", e.Name()), filepath.Join(scratch, "w", e.Name())
			c.Mounts = append(c.Mounts, specs.Mount{Destination: "/" + e.Name(), Type: "overlay", Source: "overlay",
				Options: []string{"lowerdir=" + filepath.Join(rootfs, e.Name()), "upperdir=" + up, "workdir=" + work}})
		}
	}
	before := sizes(t, rootfs)
	if err := runscSpec(c, s, r.rootless); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&specs.Root{Path: rootfs}, c.Root); diff != "" {
		t.Errorf("root (-want +got):\n%s", diff)
	}
	for _, m := range c.Mounts {
		if m.Type == "overlay" {
			t.Errorf("overlay mount %s left in the spec", m.Destination)
		}
	}
	bundle := t.TempDir()
	b, _ := json.Marshal(c)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd := r.command(bundle, s.ID, runscStepFlags(c, s, bundle))
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || out.String() != "data\n" {
		t.Fatalf("step: %v, stdout %q, stderr %q", err, out.String(), errb.String())
	}
	if got, err := os.ReadFile(filepath.Join(ws, "f")); err != nil || string(got) != "ws\n" {
		t.Errorf("workspace file on the host: %q, %v", got, err)
	}
	for _, p := range []string{"etc/new", "go", "x", "root/.cache"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the step's /%s is in the image on the host: %v", p, err)
		}
	}
	after := sizes(t, rootfs)
	for p := range after {
		if _, ok := before[p]; !ok && filepath.Dir(p) != "workspace" && p != "workspace" {
			t.Errorf("new in the image on the host: %s", p)
		}
	}
}

// sizes lists the paths under dir with their sizes.
func sizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
