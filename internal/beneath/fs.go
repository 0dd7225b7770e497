package beneath

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// FS returns the tree at rel (slash-separated; "" or "." for dir itself)
// beneath the directory dir as a read-only [fs.FS] confined to dir: every
// name is resolved inside dir by the kernel ([os.Root]), so a symbolic
// link on the way may lead elsewhere in dir, never out of it, and neither
// a link a step left nor a directory of rel that a step replaced with a
// link since can make a reader leave dir. Directory links are not
// followed by [fs.WalkDir] (their entries are links). dir itself is
// opened by name on every call: it must be a directory no step can
// replace (a workspace's own directory, not one of its subPaths).
//
// Open does not block on a FIFO or device (O_NONBLOCK): a reader can Stat
// what it opened before reading a byte. The FS implements [fs.StatFS],
// [fs.ReadDirFS] and [fs.ReadLinkFS]; errors name paths relative to the
// FS, never dir.
func FS(dir, rel string) fs.FS {
	return rootFS{dir: dir, rel: path.Join(Components(rel)...)}
}

type rootFS struct{ dir, rel string }

var (
	_ fs.StatFS     = rootFS{}
	_ fs.ReadDirFS  = rootFS{}
	_ fs.ReadLinkFS = rootFS{}
)

// in runs fn on name's path beneath a fresh root of dir.
func (f rootFS) in(op, name string, fn func(r *os.Root, p string) error) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	r, err := os.OpenRoot(f.dir)
	if err != nil {
		return &fs.PathError{Op: op, Path: name, Err: unwrapPath(err)}
	}
	defer r.Close()
	p := path.Join(f.rel, name)
	if p == "" {
		p = "."
	}
	if err := fn(r, p); err != nil {
		return &fs.PathError{Op: op, Path: name, Err: unwrapPath(err)}
	}
	return nil
}

// unwrapPath drops the path of an [*fs.PathError] (relative to dir, so
// holding rel): the caller names the path relative to the FS instead.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Open implements [fs.FS].
func (f rootFS) Open(name string) (fs.File, error) {
	var file *os.File
	err := f.in("open", name, func(r *os.Root, p string) (err error) {
		file, err = r.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	return file, nil
}

// Stat implements [fs.StatFS].
func (f rootFS) Stat(name string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := f.in("stat", name, func(r *os.Root, p string) (err error) {
		fi, err = r.Stat(p)
		return err
	})
	return fi, err
}

// Lstat implements [fs.ReadLinkFS].
func (f rootFS) Lstat(name string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := f.in("lstat", name, func(r *os.Root, p string) (err error) {
		fi, err = r.Lstat(p)
		return err
	})
	return fi, err
}

// ReadLink implements [fs.ReadLinkFS].
func (f rootFS) ReadLink(name string) (string, error) {
	var target string
	err := f.in("readlink", name, func(r *os.Root, p string) (err error) {
		target, err = r.Readlink(p)
		return err
	})
	return target, err
}

// ReadDir implements [fs.ReadDirFS]: the entries sorted by name.
func (f rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	var entries []fs.DirEntry
	err := f.in("readdir", name, func(r *os.Root, p string) error {
		d, err := r.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer d.Close()
		entries, err = d.ReadDir(-1)
		return err
	})
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}
