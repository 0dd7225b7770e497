package beneath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// LinkError is a path whose component Link (slash-separated, relative to
// the directory it was opened beneath) is a symbolic link.
type LinkError struct {
	// Path is the path that was opened, Link its component that is a link.
	Path, Link string
}

func (e *LinkError) Error() string {
	if e.Link == e.Path {
		return fmt.Sprintf("%s is a symbolic link", e.Path)
	}
	return fmt.Sprintf("%s: %s is a symbolic link", e.Path, e.Link)
}

// NotRegularError is a path that is not a regular file (a directory, a
// FIFO, a device, a socket).
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is not a regular file (%s)", e.Path, e.Kind())
}

// Kind names what the path is instead: "directory", "FIFO", "socket",
// "device".
func (e *NotRegularError) Kind() string { return typeName(e.Mode) }

// NotDirError is a path component that is not a directory.
type NotDirError struct{ Path, Component string }

func (e *NotDirError) Error() string {
	return fmt.Sprintf("%s: %s is not a directory", e.Path, e.Component)
}

func typeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "regular file"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeSymlink != 0:
		return "symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	default:
		return t.String()
	}
}

// Components splits rel into its clean components: "" and "." give none;
// ".." cannot climb above the directory (the path is cleaned as if rooted).
func Components(rel string) []string {
	c := strings.TrimPrefix(path.Clean("/"+rel), "/")
	if c == "" {
		return nil
	}
	return strings.Split(c, "/")
}

// Owner is a uid and gid to give directories to.
type Owner struct{ UID, GID int }

// DirOptions configure [OpenDir]. The zero value opens existing
// directories only.
type DirOptions struct {
	// Create makes missing components (mode 0755 less the umask).
	Create bool
	// Owner, if set, is given every component opened below dir (the
	// existing and the new ones), through its descriptor.
	Owner *Owner
}

// OpenDir opens the directory rel beneath dir. Every component must be a
// directory and none may be a symbolic link ([*LinkError]); with
// o.Create, missing ones are made. The returned directory is the one
// checked, whatever happens to the path afterwards.
func OpenDir(dir *os.File, rel string, o DirOptions) (*os.File, error) {
	cur, err := dup(dir)
	if err != nil {
		return nil, err
	}
	comps := Components(rel)
	for i, c := range comps {
		sofar := strings.Join(comps[:i+1], "/")
		next, err := openComponent(cur, c, o.Create)
		cur.Close()
		if err != nil {
			return nil, componentErr(path.Join(comps...), sofar, err)
		}
		cur = next
		if o.Owner != nil {
			if err := cur.Chown(o.Owner.UID, o.Owner.GID); err != nil {
				cur.Close()
				return nil, fmt.Errorf("giving %s to uid %d: %w", sofar, o.Owner.UID, err)
			}
		}
	}
	return cur, nil
}

func dup(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating the descriptor of %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// openComponent opens the directory name in parent without following a
// link, making it first if create and it is missing.
func openComponent(parent *os.File, name string, create bool) (*os.File, error) {
	pfd := int(parent.Fd())
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := openat(pfd, name, flags)
	if errors.Is(err, unix.ENOENT) && create {
		if err = unix.Mkdirat(pfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		fd, err = openat(pfd, name, flags)
	}
	if err != nil {
		return nil, classify(pfd, name, err)
	}
	return os.NewFile(uintptr(fd), parent.Name()+"/"+name), nil
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// errLink and errNotDir mark a component as a link or as no directory.
var (
	errLink   = errors.New("symbolic link")
	errNotDir = errors.New("not a directory")
)

// classify turns the error of an O_NOFOLLOW open into errLink or errNotDir
// when the entry is one (ELOOP and ENOTDIR both happen for links).
func classify(dirfd int, name string, err error) error {
	if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
		return err
	}
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errLink
	}
	return errNotDir
}

func componentErr(p, comp string, err error) error {
	switch {
	case errors.Is(err, errLink):
		return &LinkError{Path: p, Link: comp}
	case errors.Is(err, errNotDir):
		return &NotDirError{Path: p, Component: comp}
	}
	return &fs.PathError{Op: "openat", Path: comp, Err: err}
}

// OpenFile opens the regular file rel beneath dir for reading. No
// component may be a symbolic link ([*LinkError]); anything but a regular
// file is refused ([*NotRegularError]) before it is opened, and the open
// does not block (a FIFO, a device), so the caller can check the size
// (Stat) before reading a byte.
func OpenFile(dir *os.File, rel string) (*os.File, error) {
	comps := Components(rel)
	if len(comps) == 0 {
		return nil, &NotRegularError{Path: ".", Mode: fs.ModeDir}
	}
	parent, err := OpenDir(dir, path.Join(comps[:len(comps)-1]...), DirOptions{})
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	f, err := OpenFileAt(parent, comps[len(comps)-1])
	if err != nil {
		return nil, relabel(err, path.Join(comps...))
	}
	return f, nil
}

// OpenFileAt is [OpenFile] for a name directly in dir.
func OpenFileAt(dir *os.File, name string) (*os.File, error) {
	pfd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "fstatat", Path: name, Err: err}
	}
	if err := regular(name, st.Mode); err != nil {
		return nil, err
	}
	fd, err := openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		if cerr := classify(pfd, name, err); errors.Is(cerr, errLink) {
			return nil, &LinkError{Path: name, Link: name}
		}
		return nil, &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	// The entry may have been replaced between the two calls: check what
	// was opened.
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if err := regular(name, st.Mode); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), dir.Name()+"/"+name), nil
}

func regular(name string, mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFLNK:
		return &LinkError{Path: name, Link: name}
	case unix.S_IFDIR:
		return &NotRegularError{Path: name, Mode: fs.ModeDir}
	case unix.S_IFIFO:
		return &NotRegularError{Path: name, Mode: fs.ModeNamedPipe}
	case unix.S_IFSOCK:
		return &NotRegularError{Path: name, Mode: fs.ModeSocket}
	}
	return &NotRegularError{Path: name, Mode: fs.ModeDevice}
}

// relabel names the full path in an error about its last component.
func relabel(err error, p string) error {
	var le *LinkError
	var ne *NotRegularError
	var pe *fs.PathError
	switch {
	case errors.As(err, &le):
		return &LinkError{Path: p, Link: p}
	case errors.As(err, &ne):
		return &NotRegularError{Path: p, Mode: ne.Mode}
	case errors.As(err, &pe):
		return &fs.PathError{Op: pe.Op, Path: p, Err: pe.Err}
	}
	return err
}
