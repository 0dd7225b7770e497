package beneath

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tree makes root/{dir/sub/f, file, link-dir -> outside, dir/link-in ->
// sub, link-file -> outside/secret, fifo} and returns root and outside.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	root, outside = t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(root, "dir", "sub"), filepath.Join(outside, "x")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{filepath.Join(root, "dir", "sub", "f"): "f", filepath.Join(root, "file"): "file", filepath.Join(outside, "secret"): "secret"} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"link-dir": outside, "dir/link-in": "sub", "link-file": filepath.Join(outside, "secret")} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func open(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestOpenDir(t *testing.T) {
	root, outside := tree(t)
	for _, tc := range []struct {
		rel    string
		create bool
		link   string // the LinkError's component, if one
		notDir bool
		is     error
	}{
		{rel: "dir/sub"},
		{rel: ""},
		{rel: "../../dir/./sub/"}, // cleaned as if rooted
		{rel: "link-dir", link: "link-dir"},
		{rel: "link-dir/x", create: true, link: "link-dir"},
		{rel: "link-dir/new/deeper", create: true, link: "link-dir"},
		{rel: "dir/link-in", link: "dir/link-in"},
		{rel: "dir/link-in/f", link: "dir/link-in"},
		{rel: "file", notDir: true},
		{rel: "file/x", create: true, notDir: true},
		{rel: "missing", is: fs.ErrNotExist},
		{rel: "dir/new/deeper", create: true},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			d, err := OpenDir(open(t, root), tc.rel, DirOptions{Create: tc.create})
			var le *LinkError
			var nd *NotDirError
			switch {
			case tc.link != "":
				if !errors.As(err, &le) || le.Link != tc.link {
					t.Errorf("OpenDir(%q) = %v, want a LinkError at %s", tc.rel, err, tc.link)
				}
			case tc.notDir:
				if !errors.As(err, &nd) {
					t.Errorf("OpenDir(%q) = %v, want a NotDirError", tc.rel, err)
				}
			case tc.is != nil:
				if !errors.Is(err, tc.is) {
					t.Errorf("OpenDir(%q) = %v, want %v", tc.rel, err, tc.is)
				}
			case err != nil:
				t.Errorf("OpenDir(%q): %v", tc.rel, err)
			default:
				d.Close()
			}
		})
	}
	// Nothing was created outside.
	entries, _ := os.ReadDir(outside)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"secret", "x"}, names); diff != "" {
		t.Errorf("outside (-want +got):\n%s", diff)
	}
}

func TestOpenDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another id needs root")
	}
	root, _ := tree(t)
	d, err := OpenDir(open(t, root), "dir/made/here", DirOptions{Create: true, Owner: &Owner{UID: 4242, GID: 4343}})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, p := range []string{"dir", "dir/made", "dir/made/here"} {
		st, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != 4242 || s.Gid != 4343 {
			t.Errorf("%s is owned by %d:%d, want 4242:4343", p, s.Uid, s.Gid)
		}
	}
}

func TestOpenFile(t *testing.T) {
	root, _ := tree(t)
	for _, tc := range []struct {
		rel, want string
		link      bool
		kind      string
		is        error
	}{
		{rel: "file", want: "file"},
		{rel: "dir/sub/f", want: "f"},
		{rel: "link-file", link: true},
		{rel: "dir/link-in/f", link: true},
		{rel: "link-dir/secret", link: true},
		{rel: "fifo", kind: "FIFO"},
		{rel: "dir", kind: "directory"},
		{rel: "", kind: "directory"},
		{rel: "missing", is: fs.ErrNotExist},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			f, err := OpenFile(open(t, root), tc.rel)
			var le *LinkError
			var nr *NotRegularError
			switch {
			case tc.link:
				if !errors.As(err, &le) {
					t.Errorf("OpenFile(%q) = %v, want a LinkError", tc.rel, err)
				}
			case tc.kind != "":
				if !errors.As(err, &nr) || nr.Kind() != tc.kind {
					t.Errorf("OpenFile(%q) = %v, want a NotRegularError (%s)", tc.rel, err, tc.kind)
				}
			case tc.is != nil:
				if !errors.Is(err, tc.is) {
					t.Errorf("OpenFile(%q) = %v, want %v", tc.rel, err, tc.is)
				}
			case err != nil:
				t.Errorf("OpenFile(%q): %v", tc.rel, err)
			default:
				b, _ := io.ReadAll(f)
				f.Close()
				if string(b) != tc.want {
					t.Errorf("read %q, want %q", b, tc.want)
				}
			}
		})
	}
}
