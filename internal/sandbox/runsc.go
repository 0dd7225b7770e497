package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What runsc (gVisor; Debian's 0.0~20221219) needs that runc and crun do
// not, each kept to the smallest difference:
//
//   - --platform=ptrace: it runs on any host, a VM without nested
//     virtualisation included (kvm needs /dev/kvm that works; this release
//     has no systrap platform).
//   - --network=none for a step without network: gVisor's own network
//     stack with loopback only, its sandbox process in the step's empty
//     network namespace. The default (sandbox) copies the interfaces of
//     that namespace into gVisor and refuses to start on Linux 6.x, whose
//     namespaces all look like the root one to this release. A step with
//     network gets --network=host: its sockets are the host kernel's.
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

// runscDefaultUmask is the umask runsc gives every process.
const runscDefaultUmask = 0o022

// runscCommand is a runsc invocation with accord's global flags;
// network is the step's (ignored by other subcommands than run).
func (r *Runner) runscCommand(network bool, args ...string) *exec.Cmd {
	net := "--network=none"
	if network {
		net = "--network=host"
	}
	flags := []string{"--platform=ptrace", net, "--root", r.stateDir}
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

// runscSpec adapts c, the spec [config] built for s, to runsc.
func runscSpec(c *specs.Spec, s Step, rootless bool) error {
	for i, m := range c.Mounts {
		if m.Destination == "/sys" {
			c.Mounts[i] = specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
		}
	}
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
