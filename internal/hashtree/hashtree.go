package hashtree

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
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
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	type job struct{ rel, path string }
	jobs := make(chan job, 256)
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
				h, err := hashFile(j.path, buf)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out[o.Prefix+j.rel] = h
				}
				mu.Unlock()
			}
		}()
	}
	walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && o.Skip != nil && o.Skip(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256([]byte(target))
			mu.Lock()
			out[o.Prefix+rel] = hex.EncodeToString(h[:])
			mu.Unlock()
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // sockets, fifos, devices: nothing to hash
		}
		jobs <- job{rel, p}
		return nil
	})
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("hashing %s: %w", root, err)
	}
	return out, nil
}

func hashFile(p string, buf []byte) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|nofollow, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
