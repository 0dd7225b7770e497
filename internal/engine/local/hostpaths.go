package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/accord-build/accord/internal/beneath"
	"github.com/accord-build/accord/internal/sandbox"
)

// A bind is a host directory bound into a task's containers, with where it
// is on the host: the path rel beneath root, a directory no step can
// replace (a pipeline workspace's, or the task's results, home or
// scripts). Every host-side use of a bind by the engine opens rel beneath
// root without following links (package beneath), and readers of the
// result get it as a file system confined to root ([bind.fs]): the
// directories of a subPath are the workspace's, which any step that
// writes the workspace can replace with a link to anywhere on the host.
type bind struct {
	sandbox.Mount
	root, rel string
	// ws is the pipeline workspace ("" for the task's own directories),
	// name the task's workspace bound to it.
	ws, name string
	// chown: the step is handed the workspace first (handWorkspaces), so
	// it is locked exclusively.
	chown bool
	// vol is the task's emptyDir volume that root is (see volumeBinds).
	vol string
}

// fs is the bind as readers of the run's result see it: rel beneath
// root, every name resolved inside root (see [beneath.FS]), so a subPath
// directory a later step replaced with a link leads nowhere outside it.
func (b bind) fs() fs.FS { return beneath.FS(b.root, b.rel) }

func mountsOf(binds []bind) []sandbox.Mount {
	out := make([]sandbox.Mount, len(binds))
	for i, b := range binds {
		out[i] = b.Mount
	}
	return out
}

// owner is who the steps write as on the host, for beneath.OpenDir (nil:
// the runner itself).
func (r *run) owner() *beneath.Owner {
	uid, gid, ok := r.stepOwner()
	if !ok {
		return nil
	}
	return &beneath.Owner{UID: uid, GID: gid}
}

// openBind opens the directory rel beneath b's root, following no link,
// and (with create) makes the missing directories of rel, giving them all
// to the steps' owner.
func (r *run) openBind(task string, b bind, rel string, create bool) (*os.File, error) {
	d, err := r.openBeneath(b, rel, create)
	if err != nil && b.vol != "" {
		return nil, volumeErr(task, b, err)
	}
	if err != nil {
		what := fmt.Sprintf("pipeline task %q: workspace %q", task, b.name)
		if b.rel != "" {
			what += fmt.Sprintf(" (subPath %q)", b.rel)
		}
		return nil, bindErr(what, b, err)
	}
	return d, nil
}

func (r *run) openBeneath(b bind, rel string, create bool) (*os.File, error) {
	root, err := os.Open(b.root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	o := beneath.DirOptions{Create: create}
	if create {
		o.Owner = r.owner()
	}
	return beneath.OpenDir(root, rel, o)
}

// bindErr explains why what (a subPath or working directory) is not a
// plain directory of the workspace.
func bindErr(what string, b bind, err error) error {
	var le *beneath.LinkError
	var nd *beneath.NotDirError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("%s: %s in workspace %q is a symbolic link that a step left there; accord never follows links in a workspace on the host\n  fix: a subPath or workingDir must name real directories of the workspace: make %s a directory, not a link", what, le.Link, b.ws, le.Link)
	case errors.As(err, &nd):
		return fmt.Errorf("%s: %s in workspace %q is not a directory\n  fix: a subPath or workingDir must name directories of the workspace", what, nd.Component, b.ws)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// makeBinds makes each workspace bind's subPath (as Tekton does), beneath
// the workspace without following links, owned by the steps.
func (r *run) makeBinds(task string, binds []bind) error {
	for _, b := range binds {
		d, err := r.openBind(task, b, b.rel, true)
		if err != nil {
			return err
		}
		d.Close()
	}
	return nil
}

// recheckBinds checks, with the workspaces locked, that every subPath is
// still a directory of its workspace: the runtime binds it by name, and a
// step that ran since the task started may have replaced a directory on
// the way with a link.
func (r *run) recheckBinds(task string, binds []bind) error {
	for _, b := range binds {
		if b.rel == "" {
			continue
		}
		d, err := r.openBind(task, b, b.rel, false)
		if err != nil {
			return err
		}
		d.Close()
	}
	return nil
}

// lockWorkspaces keeps, until unlock, any step that can write a pipeline
// workspace from running while a step that binds one of its subPaths by
// name is set up and runs: a step with a subPath bind locks its workspace
// exclusively, a step that writes a workspace shares it. The runtimes
// (runc 1.1, crun 1.8) bind a source by path, in a new mount namespace, and
// refuse a descriptor of this process (/proc/PID/fd/N: EINVAL across mount
// namespaces), so the path must not change between recheckBinds and the
// mount. Locks are taken in workspace order (no deadlock).
func (r *run) lockWorkspaces(binds []bind) (unlock func()) {
	mode := map[string]bool{} // workspace -> exclusive
	for _, b := range binds {
		switch {
		case b.ws == "":
		case b.rel != "" || b.chown:
			mode[b.ws] = true
		case !b.ReadOnly:
			if _, ok := mode[b.ws]; !ok {
				mode[b.ws] = false
			}
		}
	}
	names := make([]string, 0, len(mode))
	for ws := range mode {
		names = append(names, ws)
	}
	sort.Strings(names)
	var held []func()
	for _, ws := range names {
		l := r.wsLock(ws)
		if mode[ws] {
			l.Lock()
			held = append(held, l.Unlock)
		} else {
			l.RLock()
			held = append(held, l.RUnlock)
		}
	}
	return func() {
		for _, u := range held {
			u()
		}
	}
}

func (r *run) wsLock(ws string) *sync.RWMutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wsLocks == nil {
		r.wsLocks = map[string]*sync.RWMutex{}
	}
	l, ok := r.wsLocks[ws]
	if !ok {
		l = &sync.RWMutex{}
		r.wsLocks[ws] = l
	}
	return l
}

// makeWorkingDir creates a working directory under a writable bind,
// beneath its root without following links (the runtime would create it
// as root otherwise, and a non-root step could not use it).
func (r *run) makeWorkingDir(task, cwd string, binds []bind) error {
	for _, b := range binds {
		if !strings.HasPrefix(cwd+"/", b.Destination+"/") || b.ReadOnly {
			continue
		}
		rel := path.Join(b.rel, strings.TrimPrefix(cwd, b.Destination))
		d, err := r.openBeneath(b, rel, true)
		if err != nil {
			return bindErr(fmt.Sprintf("pipeline task %q: workingDir %q", task, cwd), b, err)
		}
		return d.Close()
	}
	return nil
}

// resultErr explains a result file accord will not read.
func resultErr(name string, err error) error {
	var le *beneath.LinkError
	var nr *beneath.NotRegularError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("result %q is a symbolic link: accord reads results without following links (a link can name any file of the host)\n  fix: write the value itself to $(results.%s.path)", name, name)
	case errors.As(err, &nr):
		return fmt.Errorf("result %q is a %s, not a regular file\n  fix: write the value to $(results.%s.path) as a file", name, nr.Kind(), name)
	}
	return fmt.Errorf("reading result %q: %w", name, err)
}

// openResult opens result name in the results directory dir: a regular
// file (no link, FIFO or device) at most maxResultSize bytes long, checked
// before a byte is read. It returns nil, nil when the steps wrote none.
func openResult(dir *os.File, name string) (*os.File, error) {
	f, err := beneath.OpenFileAt(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, resultErr(name, err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() > maxResultSize {
		err = tooLarge(name, st.Size())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func tooLarge(name string, n int64) error {
	return fmt.Errorf("result %q is %d bytes, over Tekton's limit of %d\n  fix: write large data to a workspace and return its path or digest", name, n, maxResultSize)
}

// readResult reads an opened result, never more than the limit.
func readResult(f *os.File, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, maxResultSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading result %q: %w", name, err)
	}
	if len(b) > maxResultSize {
		return nil, tooLarge(name, int64(len(b)))
	}
	return b, nil
}

// checkResults is openResult for every declared result, after each step,
// so an error names the step that left the result.
func checkResults(dir string, names []string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, n := range names {
		f, err := openResult(d, n)
		if err != nil {
			return err
		}
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// writeScript writes a step's script into the scripts directory.
func writeScript(dir, name, script string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, script); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chownTree gives the tree at dir to uid and gid, never following a link.
func chownTree(dir string, uid, gid int) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(p, uid, gid)
	})
}

// copyTree copies a source tree (regular files, directories, symlinks),
// leaving out .git, creating everything beneath dst without following the
// links it copies.
func copyTree(src, dst string) error {
	from, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer to.Close()
	return fs.WalkDir(from.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		switch {
		case p == ".":
			return nil
		case d.IsDir():
			return to.Mkdir(p, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := from.Readlink(p)
			if err != nil {
				return err
			}
			return to.Symlink(l, p)
		case d.Type().IsRegular():
			return copyFile(from, to, p)
		}
		return nil
	})
}

func copyFile(from, to *os.Root, p string) error {
	in, err := from.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if st.Mode()&0o111 != 0 {
		mode = 0o755
	}
	out, err := to.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
