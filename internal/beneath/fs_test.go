package beneath

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFS: the FS of a tree (or of rel beneath it) reads what is inside
// the tree, through links that stay inside too, and refuses every way
// out: a link to a host file or directory, a relative link climbing out,
// "..", and a directory of rel replaced with a link. Opening a FIFO does
// not block; no error names the host directory.
func TestFS(t *testing.T) {
	root, outside := tree(t)
	// A directory of rel later replaced with a link out (a swapped subPath).
	if err := os.MkdirAll(filepath.Join(outside, "x", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "x", "sub", "f"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"swapped":        filepath.Join(outside, "x"),
		"dir/climb":      "../../../../../../../../.." + outside + "/secret",
		"dir/link-root":  "/",
		"dir/sub/link-f": "../../file",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		rel, name string
		want      string // content; "" for an error
		is        error
	}{
		{"", "file", "file", nil},
		{".", "dir/sub/f", "f", nil},
		{"dir", "sub/f", "f", nil},
		{"dir/sub", "f", "f", nil},
		{"dir", "link-in/f", "f", nil},            // a link inside the tree
		{"dir/sub", "link-f", "file", nil},        // a link above rel, still inside
		{"", "link-file", "", nil},                // a link to a host file
		{"", "link-dir/secret", "", nil},          // a link to a host directory
		{"dir", "climb", "", nil},                 // a relative link climbing out
		{"dir", "link-root/etc/passwd", "", nil},  // a link to /
		{"swapped/sub", "f", "", nil},             // rel's directory swapped for a link out
		{"../../../../..", "etc/passwd", "", nil}, // rel cannot climb either
		{"", "../file", "", fs.ErrInvalid},        // nor can a name
		{"", "/etc/passwd", "", fs.ErrInvalid},    // nor an absolute one
		{"", "missing", "", fs.ErrNotExist},
	} {
		t.Run(tc.rel+":"+tc.name, func(t *testing.T) {
			fsys := FS(root, tc.rel)
			b, err := fs.ReadFile(fsys, tc.name)
			if tc.want != "" {
				if err != nil || string(b) != tc.want {
					t.Fatalf("read %q, %v; want %q", b, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("read %q from outside the tree", b)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if strings.Contains(err.Error(), root) || strings.Contains(err.Error(), outside) {
				t.Errorf("error %q names a host directory", err)
			}
			if _, err := fs.Stat(fsys, tc.name); err == nil && tc.name != "../file" {
				t.Errorf("Stat(%s) of what Open refused succeeds", tc.name)
			}
		})
	}
}

// TestFSFIFO: opening a FIFO returns at once, and Stat says what it is.
func TestFSFIFO(t *testing.T) {
	root, _ := tree(t)
	done := make(chan error, 1)
	go func() {
		f, err := FS(root, "").Open("fifo")
		if err == nil {
			var st fs.FileInfo
			if st, err = f.Stat(); err == nil && st.Mode().Type() != fs.ModeNamedPipe {
				err = errors.New("not reported as a FIFO: " + st.Mode().String())
			}
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("opening a FIFO blocks")
	}
}

// TestFSWalk: WalkDir lists links as links (not following them), Lstat
// and ReadLink see them, and the FS passes testing/fstest on a plain tree.
func TestFSWalk(t *testing.T) {
	root, _ := tree(t)
	fsys := FS(root, "")
	var seen []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		seen = append(seen, p+":"+d.Type().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".:d---------", "dir:d---------", "dir/link-in:L---------", "dir/sub:d---------", "dir/sub/f:----------",
		"fifo:p---------", "file:----------", "link-dir:L---------", "link-file:L---------"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	if fi, err := fs.Lstat(fsys, "link-dir"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(link-dir) = %v, %v; want a link", fi, err)
	}
	if target, err := fs.ReadLink(fsys, "dir/link-in"); err != nil || target != "sub" {
		t.Errorf("ReadLink(dir/link-in) = %q, %v", target, err)
	}
	plain := t.TempDir()
	if err := os.MkdirAll(filepath.Join(plain, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/x", "a/b/y", "z"} {
		if err := os.WriteFile(filepath.Join(plain, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := fstest.TestFS(FS(plain, ""), "a/x", "a/b/y", "z"); err != nil {
		t.Error(err)
	}
	if err := fstest.TestFS(FS(plain, "a"), "x", "b/y"); err != nil {
		t.Error(err)
	}
}
