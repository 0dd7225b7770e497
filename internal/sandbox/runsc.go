package sandbox

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What runsc (gVisor; Debian's 0.0~20221219) needs that runc and crun do
// not, each kept to the smallest difference:
//
//   - --platform=ptrace: it runs on any host, a VM without nested
//     virtualisation included (this release has no systrap platform; kvm
//     spins without starting a sandbox on our VMs, /dev/kvm or not).
//   - --network=none for a step without network: gVisor's own network
//     stack with loopback only, its sandbox process in the step's empty
//     network namespace. The default (sandbox) copies the interfaces of
//     that namespace into gVisor and refuses to start on Linux 6.x, whose
//     namespaces all look like the root one to this release. A step with
//     network gets --network=host: its sockets are the host kernel's, and
//     runsc as root then keeps the sandbox process in the host's user
//     namespace (as root with a few capabilities, under seccomp). A
//     blocking read(2) of such a socket fails with EAGAIN in this release
//     (busybox wget trips on it; Go, curl and git poll first).
//   - rootless: runsc --rootless inside a user namespace where the calling
//     user is root (unshare --user --map-root-user); runsc itself cannot
//     start its gofer as an unprivileged user.
//   - cgroups: as root, runsc puts the whole sandbox (the user-space kernel
//     included) in a cgroup named after the container, as runc does, and
//     the memory limit applies to it; rootless, none (as for runc). The
//     cpus variation is a cpuset there: joining the cgroup resets the
//     affinity that taskset gave (rootless, the affinity holds).
//   - environment order: this release passes the environment through a Go
//     map, so a step sees it in an order that changes from run to run
//     (the variables and values are exact). A builder cannot choose it:
//     see internal/builders.
//   - umask: this release starts every process with umask 0022 whatever
//     the spec says, so a step with another umask is refused.
//   - stdout and stderr are pipes: gVisor keeps its own offset for each
//     file it is given, so two descriptors of one file would overwrite each
//     other, and a pipe hands the sandbox less of the host than a file.
//   - /sys is gVisor's own sysfs, read-only, in every mode: it describes the
//     sandbox, not the host (runc gets a bind of the host's when rootless).
//   - a writable root: this release ignores mounts of type overlay, so the
//     image itself is the root and gVisor's own overlay (--overlay2) keeps
//     the step's writes in a file of the bundle; the image is untouched.
//   - mount points: runsc's gofer creates the mount point of every bind in
//     the root directory on the host, even below a tmpfs of the spec (the
//     tmpfs lives in gVisor's kernel, the gofer sees the directory under
//     it). With the image as the root those are empty directories in the
//     rootfs cache, below /workspace, /tekton or the workspace root, which
//     every runtime covers with a tmpfs: no step sees them (binds anywhere
//     else, and a working directory outside a bind, must exist in the
//     image already: runscMountPoints refuses the step otherwise).

// runscDefaultUmask is the umask runsc gives every process.
const runscDefaultUmask = 0o022

// runscCommand is a runsc invocation with accord's global flags and
// extra, a step's (see [runscStepFlags]).
func (r *Runner) runscCommand(extra []string, args ...string) *exec.Cmd {
	flags := append([]string{"--platform=ptrace", "--root", r.stateDir}, extra...)
	if r.rootless {
		flags = append([]string{"--user", "--map-root-user", r.binary, "--rootless"}, flags...)
		return exec.Command("unshare", append(flags, args...)...)
	}
	return exec.Command(r.binary, append(flags, args...)...)
}

// runscCheck refuses what runsc would silently do otherwise.
func runscCheck(s Step) error {
	if s.Umask != 0 && s.Umask != runscDefaultUmask {
		return fmt.Errorf("umask %04o: runsc (gVisor) starts every process with umask 0022 and ignores the one asked for\n  fix: use --runtime runc or crun for a umask variation, or leave the umask at 0022", s.Umask)
	}
	return nil
}

// runscStepFlags are the runsc flags of one step: its network, and for a
// writable root filesystem gVisor's own overlay, its upper layer in a file
// in the bundle directory (deleted with it), so that the image stays as it
// is.
func runscStepFlags(c *specs.Spec, s Step, bundle string) []string {
	f := []string{"--network=none"}
	if s.Network {
		f[0] = "--network=host"
	}
	if !c.Root.Readonly {
		f = append(f, "--overlay2=root:"+bundle)
	}
	return f
}

// runscSpec adapts c, the spec [config] built for s, to runsc. A writable
// root made of overlay mounts of the image (which this runsc ignores,
// leaving the step an empty root) becomes the image itself as the root,
// writable through gVisor's overlay ([runscStepFlags]).
func runscSpec(c *specs.Spec, s Step, rootless bool) error {
	mounts := c.Mounts[:0:0]
	for _, m := range c.Mounts {
		switch {
		case m.Destination == "/sys":
			m = specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
		case m.Type == "overlay":
			c.Root = &specs.Root{Path: s.RootFS, Readonly: false}
			continue
		}
		mounts = append(mounts, m)
	}
	c.Mounts = mounts
	if rootless {
		// In the user namespace of runscCommand the caller is root
		// already; runsc gives the sandbox a namespace of its own.
		var ns []specs.LinuxNamespace
		for _, n := range c.Linux.Namespaces {
			if n.Type != specs.UserNamespace {
				ns = append(ns, n)
			}
		}
		c.Linux.Namespaces, c.Linux.UIDMappings, c.Linux.GIDMappings = ns, nil, nil
		return nil
	}
	if s.CPUs > 0 {
		// Joining its cpuset cgroup resets the sandbox's affinity, so
		// the CPUs go in the cgroup: the user-space kernel then reports
		// that many.
		cpus, err := allowedCPUs(s.CPUs)
		if err != nil || cpus == "" {
			return err
		}
		if c.Linux.Resources == nil {
			c.Linux.Resources = &specs.LinuxResources{}
		}
		c.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: cpus}
	}
	return nil
}

// runscWriter hides an *os.File behind a plain writer, so that the
// runtime's output reaches it through a pipe.
func runscWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok {
		return struct{ io.Writer }{f}
	}
	return w
}

// runscMountPoints refuses a working directory or bind mount point that
// runsc's gofer would create in the image itself: the root is the cached
// image (runscSpec), shared by every step and build that uses it, and the
// gofer makes a missing working directory or mount point there, on the
// host, where it stays for every later step of that image under any
// runtime. A mount point below another mount of the spec (a tmpfs such as
// /workspace, /tekton or /tmp, or a bind) is covered by it, a working
// directory at or below a bind is made in the bind's source (the local
// engine makes a workspace's); any other must exist in the image, its
// links resolved as the gofer resolves them (inside the image).
func runscMountPoints(c *specs.Spec, rootfs string) error {
	var dests, binds []string
	for _, m := range c.Mounts {
		dests = append(dests, path.Clean(m.Destination))
		if m.Type == "bind" {
			binds = append(binds, path.Clean(m.Destination))
		}
	}
	refuse := func(what, p string) error {
		return fmt.Errorf("%s %s does not exist in the image: runsc (gVisor) would create it in the cached image itself, which every later step of this image would see\n  fix: use a %s that exists in the image or lies in a workspace, or use --runtime runc or crun", what, p, what)
	}
	if cwd := path.Clean("/" + c.Process.Cwd); cwd != "/" {
		p, ok := resolveInImage(rootfs, cwd)
		if !ok && !belowAny(p, binds, true) {
			return refuse("working directory", cwd)
		}
	}
	for _, m := range c.Mounts {
		if m.Type != "bind" {
			continue
		}
		p, ok := resolveInImage(rootfs, path.Clean("/"+m.Destination))
		if !ok && !belowAny(p, dests, false) {
			return refuse("mount point", m.Destination)
		}
	}
	return nil
}

// belowAny reports whether p lies below one of dests (or is one, when at
// is true).
func belowAny(p string, dests []string, at bool) bool {
	for _, d := range dests {
		if (at && d == p) || (d != "/" && strings.HasPrefix(p, d+"/")) {
			return true
		}
	}
	return false
}

// resolveInImage resolves p in the image at rootfs as runsc's gofer
// does, its links inside the image (an absolute link names a path of the
// image; ".." stops at its root), and reports whether it exists there. A
// missing path is resolved as far as it exists, the rest appended.
func resolveInImage(rootfs, p string) (string, bool) {
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		host := filepath.Join(rootfs, filepath.FromSlash(next))
		st, err := os.Lstat(host)
		if err != nil {
			return path.Join(append([]string{next}, todo...)...), false
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(host)
		if hops++; err != nil || hops > 255 {
			return p, false
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return cur, true
}
