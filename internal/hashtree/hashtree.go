package hashtree

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/accord-build/accord/internal/beneath"
)

// Hashes maps slash-separated paths (relative to the tree, with an optional
// prefix) to lowercase hex SHA-256.
type Hashes map[string]string

// Options configure [Tree].
type Options struct {
	// Prefix is prepended to every path ("source/"). Default none.
	Prefix string
	// Workers bounds parallel hashing. Default: the number of CPUs.
	Workers int
	// Skip reports relative directory paths to leave out (e.g. ".git").
	Skip func(rel string) bool
}

// Tree hashes every regular file and symlink below root.
func Tree(root string, o Options) (Hashes, error) {
	d, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", root, err)
	}
	defer d.Close()
	h, err := TreeDir(d, o)
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", root, err)
	}
	return h, nil
}

// TreeDir is [Tree] for an open directory. Every directory and file is
// opened beneath the one before it without following a link, so a link
// swapped in while the tree is hashed makes hashing fail; it never makes
// it read outside dir.
func TreeDir(dir *os.File, o Options) (Hashes, error) {
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	type job struct {
		rel string
		f   *os.File
	}
	jobs := make(chan job, 64)
	out := Hashes{}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for j := range jobs {
				h, err := hashOpen(j.f, buf)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", j.rel, err))
				} else {
					out[o.Prefix+j.rel] = h
				}
				mu.Unlock()
			}
		}()
	}
	w := walker{o: o, file: func(rel string, f *os.File) { jobs <- job{rel, f} }, link: func(rel, target string) {
		h := sha256.Sum256([]byte(target))
		mu.Lock()
		out[o.Prefix+rel] = hex.EncodeToString(h[:])
		mu.Unlock()
	}}
	walkErr := w.walk(dir, "")
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// walker visits a tree through directory descriptors.
type walker struct {
	o    Options
	file func(rel string, f *os.File)
	link func(rel, target string)
}

func (w walker) walk(dir *os.File, rel string) error {
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", orDot(rel), err)
	}
	for _, e := range entries {
		p := path.Join(rel, e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			if w.o.Skip != nil && w.o.Skip(p) {
				continue
			}
			sub, err := beneath.OpenDir(dir, e.Name(), beneath.DirOptions{})
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			err = w.walk(sub, p)
			sub.Close()
			if err != nil {
				return err
			}
		case t&fs.ModeSymlink != 0:
			target, err := readlinkat(dir, e.Name())
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			w.link(p, target)
		case t.IsRegular():
			f, err := beneath.OpenFileAt(dir, e.Name())
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			w.file(p, f)
		}
		// sockets, fifos, devices: nothing to hash
	}
	return nil
}

func orDot(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

func readlinkat(dir *os.File, name string) (string, error) {
	for n := 256; ; n *= 2 {
		b := make([]byte, n)
		l, err := unix.Readlinkat(int(dir.Fd()), name, b)
		if err != nil {
			return "", &fs.PathError{Op: "readlinkat", Path: name, Err: err}
		}
		if l < n {
			return string(b[:l]), nil
		}
	}
}

func hashOpen(f *os.File, buf []byte) (string, error) {
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(p string, buf []byte) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|nofollow|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = &beneath.NotRegularError{Path: p, Mode: st.Mode()}
		}
		return "", err
	}
	return hashOpen(f, buf)
}

// Paths returns the sorted paths.
func (h Hashes) Paths() []string {
	out := make([]string, 0, len(h))
	for p := range h {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// DirHash1 is Go's dirhash "h1" of the tree in lowercase hex (in-toto's
// dirHash1): SHA-256 over the sorted lines "<sha256>  <path>\n".
func (h Hashes) DirHash1() string {
	var b strings.Builder
	for _, p := range h.Paths() {
		fmt.Fprintf(&b, "%s  %s\n", h[p], p)
	}
	s := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(s[:])
}

// File hashes one file (not following a final symlink).
func File(p string) (string, error) {
	return hashFile(p, make([]byte, 64<<10))
}
