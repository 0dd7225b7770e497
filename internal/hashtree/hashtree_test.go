package hashtree

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestTree(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "host secret")
	write(t, filepath.Join(root, "a.txt"), "a")
	write(t, filepath.Join(root, "dir/b.txt"), "b")
	write(t, filepath.Join(root, ".git/HEAD"), "ref")
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape"))
	os.Symlink(outside, filepath.Join(root, "escapedir"))
	got, err := Tree(root, Options{Prefix: "ws/", Skip: func(rel string) bool { return rel == ".git" }})
	if err != nil {
		t.Fatal(err)
	}
	want := Hashes{
		"ws/a.txt":     sum("a"),
		"ws/dir/b.txt": sum("b"),
		// Symlinks are recorded by their target text, never followed.
		"ws/escape":    sum(filepath.Join(outside, "secret")),
		"ws/escapedir": sum(outside),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for p, h := range got {
		if h == sum("host secret") {
			t.Errorf("%s hashed a file outside the tree", p)
		}
	}
}

// TestDirHash1MatchesShell: dirHash1 equals in-toto's documented shell
// recipe (and Go's dirhash h1).
func TestDirHash1MatchesShell(t *testing.T) {
	root := t.TempDir()
	for i, name := range []string{"b", "a/z", "a/y", "c d"} {
		write(t, filepath.Join(root, name), strings.Repeat("x", i+1))
	}
	h, err := Tree(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `find . -type f | cut -c3- | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done | sha256sum | cut -f1 -d' '`)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.DirHash1(), strings.TrimSpace(string(out)); got != want {
		t.Errorf("DirHash1 = %s, shell recipe = %s", got, want)
	}
}

func TestManyFilesParallel(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 500; i++ {
		write(t, filepath.Join(root, "d", string(rune('a'+i%26)), strings.Repeat("f", 1+i%7)+string(rune('0'+i%10))), strings.Repeat("y", i))
	}
	one, err := Tree(root, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	many, err := Tree(root, Options{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one, many); diff != "" {
		t.Errorf("parallel hashing differs:\n%s", diff)
	}
}

// TestTreeDirIsAnchored: a tree opened before a step swaps its path for a
// link to a host directory is still the tree that was opened.
func TestTreeDirIsAnchored(t *testing.T) {
	parent, outside := t.TempDir(), t.TempDir()
	write(t, filepath.Join(outside, "secret"), "host secret")
	root := filepath.Join(parent, "ws")
	write(t, filepath.Join(root, "dir", "mine.txt"), "mine")
	d, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Rename(root, filepath.Join(parent, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, root); err != nil {
		t.Fatal(err)
	}
	got, err := TreeDir(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Hashes{"dir/mine.txt": sum("mine")}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFileRefusesFIFO: hashing a path that is a FIFO fails at once
// instead of waiting for a writer.
func TestFileRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := exec.Command("mkfifo", p).Run(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := File(p); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("File(fifo) = %v, want a 'not a regular file' error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("File blocks on a FIFO")
	}
}
