package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The writable layer. A Kubernetes container's root filesystem is its
// image plus a fresh writable layer, discarded with the container; a step's
// is the same. The cached image ([RootFSCache]) is the read-only lower
// layer and is never written: each step gets, in its bundle,
//
//	rootfs/        the container's root: a directory per top-level
//	               directory of the image (the mount points), the image's
//	               top-level links recreated, its top-level files copied
//	upper/<dir>/   the writable layer of /<dir>
//	work/<dir>/    overlayfs's work directory for it
//
// and the runtime mounts an overlay (lowerdir the image's <dir>) on each
// /<dir> inside the container's mount namespace: nothing is mounted on the
// host, so a killed accord leaves no mount behind, only the bundle's
// directories, which the next [Runner.Run] of that id or the runner's
// owner removes. What a step writes outside its mounts lands in upper/ or
// rootfs/ and goes when the bundle goes. Overlayfs needs a root runner or,
// rootless, Linux 5.11 or later (unprivileged overlay in a user namespace,
// with user.* xattrs: option userxattr).

// sandboxDirs are the image's top-level directories the sandbox mounts over
// anyway: they get an empty mount point, no overlay.
var sandboxDirs = map[string]bool{"proc": true, "dev": true, "sys": true, "tmp": true, "workspace": true, "tekton": true}

// writableLayer lays out the step's root in bundle over the image at lower
// and returns the root's path and the overlay mounts, in order, to put
// before every other mount. userns says the runtime mounts them in a user
// namespace (userxattr).
func writableLayer(bundle, lower string, userns bool) (string, []specs.Mount, error) {
	for _, p := range []string{bundle, lower} {
		if strings.ContainsAny(p, overlaySpecials) {
			return "", nil, fmt.Errorf("path %q holds a character that overlayfs options cannot carry (',' ':' '\\')\n  fix: use a work directory and rootfs cache whose paths have none", p)
		}
	}
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{root, filepath.Join(bundle, "upper"), filepath.Join(bundle, "work")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", nil, fmt.Errorf("writable layer: %w", err)
		}
	}
	entries, err := os.ReadDir(lower)
	if err != nil {
		return "", nil, fmt.Errorf("reading the image rootfs: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var mounts []specs.Mount
	for _, e := range entries {
		m, err := layerEntry(bundle, lower, e, userns)
		if err != nil {
			return "", nil, fmt.Errorf("writable layer for /%s: %w", e.Name(), err)
		}
		if m != nil {
			mounts = append(mounts, *m)
		}
	}
	return root, mounts, nil
}

// layerEntry recreates one top-level entry of the image in the step's root
// and returns the overlay mount of a directory.
func layerEntry(bundle, lower string, e fs.DirEntry, userns bool) (*specs.Mount, error) {
	name := e.Name()
	if e.IsDir() && !sandboxDirs[name] && strings.ContainsAny(name, overlaySpecials) {
		// In lowerdir= a ':' adds a layer and a ',' an option: the image
		// would choose what is mounted.
		return nil, fmt.Errorf("the image's top-level directory %q holds a character that overlayfs options cannot carry (',' ':' '\\'), so accord cannot give it a writable layer\n  fix: rename it in the image", name)
	}
	src, dst := filepath.Join(lower, name), filepath.Join(bundle, "rootfs", name)
	switch {
	case e.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return nil, err
		}
		return nil, os.Symlink(target, dst)
	case e.Type().IsRegular():
		return nil, copyRegular(src, dst)
	case !e.IsDir():
		return nil, nil // devices, sockets: none in an unpacked image
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return nil, err
	}
	if sandboxDirs[name] {
		return nil, nil
	}
	// The mounted overlay shows the image directory's mode and owner.
	upper, work := filepath.Join(bundle, "upper", name), filepath.Join(bundle, "work", name)
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := []string{"lowerdir=" + src, "upperdir=" + upper, "workdir=" + work}
	if userns {
		opts = append(opts, "userxattr")
	}
	return &specs.Mount{Destination: "/" + name, Type: "overlay", Source: "overlay", Options: opts}, nil
}

// copyRegular copies a top-level file of the image into the step's root
// (a hard link would let the step write the cached image).
func copyRegular(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// removeTree removes dir, a bundle that a step may have filled through its
// writable layer: directories it left without permissions (and overlayfs's
// own work directories, mode 000) are opened up first, beneath dir and
// never through a link; os.RemoveAll follows no link either.
func removeTree(dir string) error {
	if root, err := os.OpenRoot(dir); err == nil {
		// WalkDir hands over a directory before reading it: a chmod here
		// makes it readable in time.
		_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if info, ierr := d.Info(); ierr == nil && info.Mode().Perm()&0o700 != 0o700 {
					_ = root.Chmod(p, info.Mode().Perm()|0o700)
				}
			}
			return nil
		})
		root.Close()
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// withLayer makes c's root the step's own writable one: root, with the
// overlay mounts first (every later mount point may be below one of them).
func withLayer(c *specs.Spec, root string, overlays []specs.Mount) {
	c.Root = &specs.Root{Path: root}
	c.Mounts = append(append([]specs.Mount{}, overlays...), c.Mounts...)
}

const oNoFollow = syscall.O_NOFOLLOW

// overlaySpecials are the characters overlayfs's mount options give a
// meaning to (and the newline, which no path here needs).
const overlaySpecials = ",:\\\n"
