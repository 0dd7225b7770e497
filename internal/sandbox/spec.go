package sandbox

import (
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mount is a host path bound into the container.
type Mount struct {
	// Source is the host path. The runtime resolves it by name when it
	// mounts it (runc 1.1 and crun 1.8 refuse a descriptor's
	// /proc/PID/fd/N path: it names a mount of another mount namespace), so
	// the caller must keep every component of it from being replaced by a
	// link until [Runner.Run] returns (the local engine checks a subPath
	// beneath its workspace with the workspace locked against writers).
	Source string
	// Destination is the absolute path in the container.
	Destination string
	// ReadOnly binds it read-only.
	ReadOnly bool
}

// Step is one process to run in a fresh container.
type Step struct {
	// ID names the container; unique among running containers.
	ID string
	// RootFS is the host path of the unpacked image: the read-only lower
	// layer of the step's root filesystem, which gets a fresh writable layer
	// of its own, discarded when the step ends (see writableLayer). The
	// step never changes RootFS.
	RootFS string
	// Args is the command line.
	Args []string
	// Env is the complete environment ("K=V"); nothing comes from the host.
	Env []string
	// Cwd is the working directory. Default "/".
	Cwd string
	// Hostname in the container. Default "accord".
	Hostname string
	// Mounts are bound after the fixed ones (/proc, /dev, /sys, /tmp,
	// and tmpfs at /workspace and /tekton). A missing mount point is made
	// by the runtime in the step's writable layer.
	Mounts []Mount
	// Network gives the step the host's network. Default: a new network
	// namespace with loopback only.
	Network bool
	// MemoryLimit in bytes; 0 means none. Enforced through cgroups where
	// the runtime manages them (runc as root); see [Runner.MemoryLimits].
	MemoryLimit int64
	// TmpSize is the size of the /tmp tmpfs in bytes. Default 4 GiB.
	TmpSize int64
	// Umask of the process. Default 022.
	Umask uint32
	// UID and GID the process runs as; default 0. A non-root id runs in a
	// user namespace that maps it to [StepHostID] on the host: the binds it
	// writes must be owned by that id. Rootless runners cannot (they own
	// one host id).
	UID, GID uint32
	// CPUs limits the CPUs the step may run on (affinity); 0 means all.
	CPUs int
	// WorkspaceRoot is where the workspace tmpfs goes. Default /workspace.
	WorkspaceRoot string
	// NetNS and UserNS are paths of namespaces to join instead of new
	// ones; set by [Pod.Join], ignored with Network.
	NetNS, UserNS string
}

// defaultCaps is the set a step's root user keeps: Docker's default set
// without NET_RAW, MKNOD and AUDIT_WRITE.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL",
}

// config builds the OCI runtime config for s.
func config(s Step, rootless, cgroups bool) *specs.Spec {
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	host := s.Hostname
	if host == "" {
		host = "accord"
	}
	tmpSize := s.TmpSize
	if tmpSize == 0 {
		tmpSize = 4 << 30
	}
	umask := s.Umask
	if umask == 0 {
		umask = 0o022
	}
	wsRoot := s.WorkspaceRoot
	if wsRoot == "" {
		wsRoot = "/workspace"
	}
	userns := rootless || s.UID != 0 || s.GID != 0
	caps := append([]string(nil), defaultCaps...)
	c := &specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			User: specs.User{UID: s.UID, GID: s.GID, Umask: &umask},
			Args: s.Args,
			Env:  s.Env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: s.RootFS, Readonly: true},
		Hostname: host,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: devptsOptions(userns)},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			sysMount(rootless, userns, s.Network),
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=" + strconv.FormatInt(tmpSize, 10)}},
			{Destination: "/workspace", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=1m"}},
			{Destination: "/tekton", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=1m"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if wsRoot != "/workspace" {
		// Another workspace root; /workspace stays for tasks that name
		// paths under it.
		c.Mounts = append(c.Mounts, specs.Mount{Destination: wsRoot, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=1m"}})
	}
	if !s.Network {
		c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	switch {
	case rootless:
		c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		c.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
		c.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
	case userns:
		// The step runs as an unprivileged host id (StepHostID): it owns
		// nothing on the host but what accord handed it. Container root
		// stays the host's root inside the namespace, for the runtime's own
		// setup only: no step process runs as it.
		c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		c.Linux.UIDMappings, c.Linux.GIDMappings = stepIDMap(s.UID), stepIDMap(s.GID)
	}
	if cgroups && s.MemoryLimit > 0 {
		limit := s.MemoryLimit
		c.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	}
	for _, m := range s.Mounts {
		opts := []string{"rbind", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		c.Mounts = append(c.Mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	joinNamespaces(c, s, rootless, userns)
	return c
}

// stepIDMap maps container root to the host's and every other id a step
// may have, 1 to [MaxStepID], to its [StepHostID]: the step's own, and the
// owners of image files ([RootFSCache] unpacks them so), which a step sees
// as the image says.
func stepIDMap(uint32) []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: StepHostID(1), Size: MaxStepID}}
}

// MaxStepID is the largest non-root uid or gid a step may run as, or own
// image files as, under a root runner.
const MaxStepID = 65534

// StepHostID is the host id a step's non-root uid or gid maps to under a
// root runner: far above any account's, so the step owns no host file but
// those accord chowned to it (its workspaces).
func StepHostID(id uint32) uint32 { return stepIDBase + id }

const stepIDBase = 1 << 30

func devptsOptions(userns bool) []string {
	o := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	if !userns {
		o = append(o, "gid=5")
	}
	return o
}

// sysMount is /sys. A fresh read-only sysfs where the container may mount
// one: as root, or in a user namespace with its own network namespace. A
// rootless runner (an unprivileged host user) gets a read-only bind of the
// host's. A root runner's non-root step in the host's network namespace
// gets an empty read-only tmpfs: its id is the host's root in the user
// namespace, so a bind's writable submounts (cgroups, tracefs) would be its.
func sysMount(rootless, userns, hostNetwork bool) specs.Mount {
	switch {
	case rootless:
		return specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	case userns && hostNetwork:
		return specs.Mount{Destination: "/sys", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "nodev", "ro", "size=4k"}}
	}
	return specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
}

// ociVersion is the runtime-spec version written to config.json: the newest
// one that both runc 1.1 and crun 1.8 accept.
const ociVersion = "1.0.2"
