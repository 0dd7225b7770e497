package sandbox

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// RootFSCache unpacks images into directories keyed by manifest digest, for
// use as the read-only lower layer of steps' root filesystems. Unpacking is atomic (temporary directory, then
// rename), so concurrent users of the same image are safe.
type RootFSCache struct {
	dir string
}

// NewRootFSCache returns a cache in dir.
func NewRootFSCache(dir string) (*RootFSCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rootfs cache %s: %w", dir, err)
	}
	return &RootFSCache{dir: dir}, nil
}

// Dir is the cache's directory.
func (c *RootFSCache) Dir() string { return c.dir }

// DefaultCacheDir is $XDG_CACHE_HOME/accord/rootfs (or ~/.cache/...).
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "accord", "rootfs")
}

// Get returns the rootfs directory of img, unpacking it if needed.
func (c *RootFSCache) Get(ctx context.Context, img v1.Image) (string, error) {
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	// "o-": unpacked with the image's owners (unpackOwner); a cache of an
	// older accord, all owned by the unpacker, is not reused.
	dest := filepath.Join(c.dir, "o-"+h.Hex)
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	tmp, err := os.MkdirTemp(c.dir, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(ctx, rc, tmp); err != nil {
		return "", fmt.Errorf("unpacking image %s: %w", h, err)
	}
	// mutate.Extract ends the tar stream before it reports its own error
	// (an unsafe path, a layer that does not match its digest), so the tar
	// reader sees a clean end: read on to get that error.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", fmt.Errorf("unpacking image %s: %w", h, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dest); err != nil {
		if _, serr := os.Stat(dest); serr == nil {
			return dest, nil // unpacked concurrently
		}
		return "", err
	}
	return dest, nil
}

// untar writes a flattened image filesystem under dir. All writes go through
// an os.Root, so no entry (nor a symlink planted by an earlier entry) can
// write outside dir.
func untar(ctx context.Context, r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)[1:]
		if name == "" {
			continue
		}
		if err := mkdirAll(root, path.Dir(name)); err != nil {
			return err
		}
		mode := fs.FileMode(h.Mode).Perm()
		if err := unpackEntry(root, tr, h, name, mode); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeLink && (h.Uid != 0 || h.Gid != 0) && os.Geteuid() == 0 {
			if err := root.Lchown(name, unpackOwner(h.Uid), unpackOwner(h.Gid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
}

// unpackOwner is the host id an image file owned by id gets when root
// unpacks it: the id a step's user namespace maps id to, so a step sees
// the image's owners (an image's USER owns its home). Ids above
// MaxStepID are root's. Rootless unpacks own everything: a rootless
// runner's steps run as root and see it all as root's.
func unpackOwner(id int) int {
	if id <= 0 || id > MaxStepID {
		return 0
	}
	return int(StepHostID(uint32(id)))
}

// unpackEntry writes one tar entry beneath root.
func unpackEntry(root *os.Root, tr *tar.Reader, h *tar.Header, name string, mode fs.FileMode) error {
	switch h.Typeflag {
	case tar.TypeDir:
		if err := root.Mkdir(name, mode|0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Also when the directory already existed as a parent; keep
		// the sticky bit (/tmp is 1777).
		dm := mode | 0o700
		if h.FileInfo().Mode()&fs.ModeSticky != 0 {
			dm |= fs.ModeSticky
		}
		if err := root.Chmod(name, dm); err != nil {
			return err
		}
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := root.Chmod(name, mode); err != nil {
			return err
		}
	case tar.TypeSymlink:
		_ = root.Remove(name)
		if err := root.Symlink(h.Linkname, name); err != nil {
			return err
		}
	case tar.TypeLink:
		target := path.Clean("/" + h.Linkname)[1:]
		_ = root.Remove(name)
		if err := root.Link(target, name); err != nil {
			return err
		}
	default:
		// Devices, fifos: a build image has no use for them and an
		// unprivileged unpack cannot create them.
	}
	return nil
}

func mkdirAll(root *os.Root, dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	if _, err := root.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirAll(root, path.Dir(dir)); err != nil {
		return err
	}
	if err := root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
