package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/accord-build/accord/internal/sandbox"
)

// treeState lists every path under dir with its kind, mode and content,
// following no link.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			m[rel] = "-> " + l
		case d.IsDir():
			m[rel] = fmt.Sprintf("dir %v", info.Mode())
		default:
			b, _ := os.ReadFile(p)
			m[rel] = fmt.Sprintf("%v %q", info.Mode(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writableRootFS is the base image with a few more files in /usr and
// /root, so that steps have something to delete and change.
func writableRootFS(t *testing.T) string {
	t.Helper()
	rootfs := baseRootFS(t)
	for _, f := range []string{"usr/share/doc/README", "usr/bin/tool", "root/.profile"} {
		if err := os.MkdirAll(filepath.Join(rootfs, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, f), []byte("original "+f+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs
}

// TestWritableRootFS: a step's root filesystem is writable as a Kubernetes
// container's is: it may create, change, delete and chmod image files
// anywhere, make directories the image lacks and work in a working
// directory the image lacks, and bind a mount below a path the image
// lacks; the next step sees the image as it was, and the cached rootfs
// never changes.
func TestWritableRootFS(t *testing.T) {
	rootfs := writableRootFS(t)
	before := treeState(t, rootfs)
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			r, work := newRunner(t, rt)
			ws := t.TempDir()
			cwd, dest := "/opt/new/dir", "/src/app"
			if rt == sandbox.Runsc {
				// runsc's gofer would make them in the cached image:
				// refused (see TestRunscLeavesTheImageCache).
				for _, s := range []sandbox.Step{{Cwd: cwd}, {Mounts: []sandbox.Mount{{Source: ws, Destination: dest}}}} {
					s.ID, s.RootFS, s.Args = newID(), rootfs, []string{"true"}
					if _, err := r.Run(context.Background(), s, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "does not exist in the image") {
						t.Errorf("runsc with working directory %q, mounts %v: err %v; want it refused", s.Cwd, s.Mounts, err)
					}
				}
				cwd, dest = "/usr", "/workspace"
			}
			writes := strings.Join([]string{
				"echo changed > /usr/bin/tool", "rm -r /usr/share/doc", "chmod 700 /usr/bin", "echo x >> /etc/passwd",
				"rm /etc/hosts", "chmod 600 /etc/group", "echo h > /root/.profile", "mkdir -p /root/.cache/x",
				"mkdir -p /go/src/github.com/x/y", "echo new > /newfile", "touch /bin/added", "ln -s /etc/passwd /usr/link",
				"pwd", "echo ok > " + dest + "/out",
			}, " && ")
			code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", writes}, Cwd: cwd,
				Mounts: []sandbox.Mount{{Source: ws, Destination: dest}}})
			if code != 0 || out != cwd+"\n" {
				t.Fatalf("writing the root filesystem: exit %d, stdout %q, stderr %s", code, out, stderr)
			}
			if b, err := os.ReadFile(filepath.Join(ws, "out")); err != nil || string(b) != "ok\n" {
				t.Errorf("bind below a path the image lacks: %q, %v", b, err)
			}
			check := `cat /usr/bin/tool /usr/share/doc/README /root/.profile && stat -c '%a %n' /usr/bin /etc/group && ` +
				`ls / && test ! -e /usr/link && test ! -e /bin/added && test -e /etc/hosts && ! grep -q '^x$' /etc/passwd`
			code, out, stderr = run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", check}})
			want := "original usr/bin/tool\noriginal usr/share/doc/README\noriginal root/.profile\n755 /usr/bin\n644 /etc/group\n" +
				"bin\ndev\netc\nproc\nroot\nsys\ntekton\ntmp\nusr\nworkspace\n"
			if code != 0 {
				t.Errorf("the next step: exit %d, stderr %s", code, stderr)
			}
			if diff := cmp.Diff(want, out); diff != "" {
				t.Errorf("the next step sees (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, treeState(t, rootfs)); diff != "" {
				t.Errorf("the cached rootfs changed (-before +after):\n%s", diff)
			}
			if es, _ := os.ReadDir(filepath.Join(work, "bundles")); len(es) != 0 {
				t.Errorf("bundles left after the runs: %v", es)
			}
		})
	}
}

// TestWritableLayerLinks: links a step plants in its writable layer (in an
// overlay's upper directory, in its root, inside a directory it left
// without permissions) that name host paths are never followed when the
// layer is removed, and the next step has a fresh layer without them.
func TestWritableLayerLinks(t *testing.T) {
	rootfs := writableRootFS(t)
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			r, work := newRunner(t, rt)
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.MkdirAll(filepath.Join(victim, "locked"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(victim, "locked", "secret"), []byte("keep\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(victim, "locked"), 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(filepath.Join(victim, "locked"), 0o700) })
			before := treeState(t, victim)
			for _, tc := range []struct{ name, script string }{
				{"link in an overlay's upper directory", "ln -s @V@ /usr/evil && ln -s @V@/locked /etc/evil"},
				{"link in the step's root", "ln -s @V@ /evil && ln -s @V@/locked/secret /evil-file"},
				{"link inside a directory left mode 000", "mkdir -p /root/x/y && ln -s @V@ /root/x/y/l && ln -s @V@/locked /root/x/l && chmod 000 /root/x/y /root/x"},
				{"image directory replaced with a link", "rm -r /usr/share && ln -s @V@ /usr/share && rm -r /etc/ssl && ln -s @V@/locked /etc/ssl"},
				{"link to the bundle's own upper directory", "ln -s ../upper /up && ln -s ../../../.. /usr/up"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					script := strings.ReplaceAll(tc.script, "@V@", victim)
					code, _, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", script}})
					if code != 0 {
						t.Fatalf("planting links: exit %d: %s", code, stderr)
					}
					if diff := cmp.Diff(before, treeState(t, victim)); diff != "" {
						t.Errorf("removing the layer changed the host directory the links name (-before +after):\n%s", diff)
					}
					code, _, stderr = run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c",
						"test ! -L /usr/evil && test ! -L /evil && test ! -e /root/x && test -d /usr/share/doc && test ! -L /up"}})
					if code != 0 {
						t.Errorf("the next step sees the links: exit %d: %s", code, stderr)
					}
					if es, _ := os.ReadDir(filepath.Join(work, "bundles")); len(es) != 0 {
						t.Errorf("bundles left after the runs: %v", es)
					}
				})
			}
		})
	}
}

// TestKeptBundleHasTheLayer: a kept bundle (--keep) holds the step's root,
// writable, and what the step wrote, for inspection.
func TestKeptBundleHasTheLayer(t *testing.T) {
	rootfs := baseRootFS(t)
	for _, rt := range runcLike() {
		t.Run(string(rt), func(t *testing.T) {
			r, work := newRunner(t, rt, sandbox.WithKeep(true))
			id := newID()
			if code, _, stderr := run(t, r, sandbox.Step{ID: id, RootFS: rootfs, Args: []string{"sh", "-c", "echo w > /etc/written"}}); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			bundle := filepath.Join(work, "bundles", id)
			b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var spec specs.Spec
			if err := json.Unmarshal(b, &spec); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(specs.Root{Path: filepath.Join(bundle, "rootfs")}, *spec.Root); diff != "" {
				t.Errorf("config.json root (-want +got):\n%s", diff)
			}
			if got, err := os.ReadFile(filepath.Join(bundle, "upper", "etc", "written")); err != nil || string(got) != "w\n" {
				t.Errorf("upper/etc/written = %q, %v", got, err)
			}
			if _, err := os.Lstat(filepath.Join(rootfs, "etc", "written")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the cached rootfs got the file: %v", err)
			}
		})
	}
}

// TestWritableLayerNotMountedOnHost: the overlays are mounted by the
// runtime in the container's mount namespace only: while a step runs,
// the host's mount table has none of them, so a killed accord leaves no
// mount behind.
func TestWritableLayerNotMountedOnHost(t *testing.T) {
	rootfs := baseRootFS(t)
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			r, work := newRunner(t, rt)
			ws := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := r.Run(ctx, sandbox.Step{ID: newID(), RootFS: rootfs, Env: []string{"PATH=/bin"},
					Args:   []string{"sh", "-c", "grep -c ' overlay ' /proc/self/mountinfo > /workspace/out/n; sleep 60"},
					Mounts: []sandbox.Mount{{Source: ws, Destination: "/workspace/out"}}}, io.Discard, io.Discard)
				done <- err
			}()
			for i := 0; ; i++ {
				if b, err := os.ReadFile(filepath.Join(ws, "n")); err == nil && len(b) > 0 {
					if strings.TrimSpace(string(b)) == "0" {
						t.Errorf("the step sees no overlay mounts")
					}
					break
				}
				if i > 300 {
					t.Fatal("the step did not start")
				}
				time.Sleep(100 * time.Millisecond)
			}
			mi, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(mi), "\n") {
				if strings.Contains(line, work) {
					t.Errorf("host mount of the step's layer: %s", line)
				}
			}
			cancel()
			<-done
		})
	}
}

// TestWritableLayerOptionNames: an image's top-level directory whose name
// would say something in overlayfs's options (a ':' adds a lower layer,
// such as ".." of the runtime's working directory, the bundles of other
// steps; a ',' adds an option) is refused with its name.
func TestWritableLayerOptionNames(t *testing.T) {
	for i, name := range []string{"x:..", "x:.", "x,index=on", "x\\,y", "a:b"} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rootfs := baseRootFS(t)
			if err := os.Mkdir(filepath.Join(rootfs, name), 0o755); err != nil {
				t.Fatal(err)
			}
			r, _ := newRunner(t, runtimes()[0])
			var out, errb lockedBuffer
			code, err := r.Run(context.Background(), sandbox.Step{ID: newID(), RootFS: rootfs, Env: []string{"PATH=/bin"},
				Args: []string{"sh", "-c", "ls -a /x: /a:b"}}, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("top-level directory %q", name)) || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("%q: Run = %d, %v (stdout %q): want the directory refused", name, code, err, out.String())
			}
		})
	}
}
