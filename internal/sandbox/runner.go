package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime names an OCI runtime.
type Runtime string

// Supported runtimes.
const (
	Runc Runtime = "runc"
	Crun Runtime = "crun"
	// Runsc is gVisor: each step gets its own user-space kernel.
	Runsc Runtime = "runsc"
)

// ParseRuntime checks a runtime name.
func ParseRuntime(s string) (Runtime, error) {
	switch Runtime(s) {
	case Runc, Crun, Runsc:
		return Runtime(s), nil
	}
	return "", fmt.Errorf("unknown runtime %q: use runc, crun or runsc", s)
}

// Runner runs steps with an OCI runtime. A Runner is safe for concurrent
// use; each [Runner.Run] gets its own bundle and container.
type Runner struct {
	runtime  Runtime
	binary   string
	stateDir string
	workDir  string
	rootless bool
	keep     bool
}

// Option configures a [Runner].
type Option func(*Runner)

// WithKeep keeps bundles after the run (for debugging). Default: removed.
func WithKeep(keep bool) Option { return func(r *Runner) { r.keep = keep } }

// WithBinary sets the runtime binary. Default: the runtime's name from PATH.
func WithBinary(path string) Option { return func(r *Runner) { r.binary = path } }

// NewRunner returns a runner whose bundles and runtime state live under
// workDir. It runs rootless (in a user namespace) when the process is not
// root.
func NewRunner(rt Runtime, workDir string, opts ...Option) (*Runner, error) {
	r := &Runner{runtime: rt, binary: string(rt), workDir: workDir, rootless: os.Geteuid() != 0}
	for _, o := range opts {
		o(r)
	}
	p, err := exec.LookPath(r.binary)
	if err != nil {
		return nil, &MissingRuntimeError{Runtime: rt, Err: err}
	}
	r.binary = p
	r.stateDir = filepath.Join(workDir, "state")
	if err := os.MkdirAll(r.stateDir, 0o700); err != nil {
		return nil, err
	}
	if rt == Crun && r.rootless {
		return nil, fmt.Errorf("crun rootless is not supported by accord on this host (crun 1.8 needs a private cgroup2 mount, which needs root)\n  fix: use --runtime runc, or run as root")
	}
	return r, nil
}

// MissingRuntimeError says the runtime binary is not installed.
type MissingRuntimeError struct {
	Runtime Runtime
	Err     error
}

func (e *MissingRuntimeError) Error() string {
	return fmt.Sprintf("OCI runtime %s not found: %v\n  fix: apt-get install %s (or pass --runtime with one that is installed; 'accord doctor' checks)", e.Runtime, e.Err, e.Runtime)
}

func (e *MissingRuntimeError) Unwrap() error { return e.Err }

// Runtime returns the runtime name.
func (r *Runner) Runtime() Runtime { return r.runtime }

// Rootless reports whether steps run in a user namespace as the calling user.
func (r *Runner) Rootless() bool { return r.rootless }

// MemoryLimits reports whether [Step.MemoryLimit] is enforced: only runc and
// runsc as root manage cgroups here (crun runs with
// --cgroup-manager=disabled; rootless runners have no delegated cgroup).
// Under runsc the limit covers the step's user-space kernel too.
func (r *Runner) MemoryLimits() bool { return (r.runtime == Runc || r.runtime == Runsc) && !r.rootless }

// ErrTimeout is returned when the context's deadline stopped the step.
var ErrTimeout = errors.New("step timed out")

// Run runs s to completion and returns its exit code. Output goes to stdout
// and stderr as it is produced. When ctx ends, the container is killed and
// the error wraps ctx.Err() ([ErrTimeout] for a deadline). The bundle is
// removed afterwards unless the runner keeps them.
func (r *Runner) Run(ctx context.Context, s Step, stdout, stderr io.Writer) (int, error) {
	bundle := filepath.Join(r.workDir, "bundles", s.ID)
	// A bundle left by a killed run of this id goes first.
	if err := removeTree(bundle); err != nil {
		return -1, err
	}
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return -1, err
	}
	if !r.keep {
		defer removeTree(bundle)
	}
	spec, err := r.layeredSpec(bundle, s)
	if err != nil {
		return -1, err
	}
	var runscFlags []string
	if r.runtime == Runsc {
		if err := runscCheck(s); err != nil {
			return -1, err
		}
		if err := runscSpec(spec, s, r.rootless); err != nil {
			return -1, err
		}
		if err := runscMountPoints(spec, s.RootFS); err != nil {
			return -1, err
		}
		runscFlags = runscStepFlags(spec, s, bundle)
		stdout, stderr = runscWriter(stdout), runscWriter(stderr)
	}
	cfg, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return -1, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o600); err != nil {
		return -1, err
	}
	if r.rootless && (s.UID != 0 || s.GID != 0) {
		return -1, fmt.Errorf("running as uid %d: a rootless runner owns a single host id\n  fix: run accord as root for a uid/gid variation, or leave uid/gid unset", s.UID)
	}
	cmd := r.command(bundle, s.ID, runscFlags)
	if s.CPUs > 0 {
		// Affinity is inherited by the container's processes: nproc and
		// Go's runtime.NumCPU see s.CPUs.
		cpus, err := allowedCPUs(s.CPUs)
		if err != nil {
			return -1, err
		}
		if cpus != "" {
			if _, err := exec.LookPath("taskset"); err != nil {
				return -1, fmt.Errorf("a cpus variation needs taskset: %w\n  fix: apt-get install util-linux", err)
			}
			cmd = exec.Command("taskset", append([]string{"-c", cpus, cmd.Path}, cmd.Args[1:]...)...)
		}
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var runtimeErr strings.Builder
	if stderr == nil {
		cmd.Stderr = &runtimeErr
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("starting %s: %w", r.runtime, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// "runc run" (and crun's) removes the container when it exits; an
	// explicit delete is only needed when we stopped it or it failed.
	select {
	case err = <-done:
	case <-ctx.Done():
		defer r.delete(s.ID)
		r.kill(s.ID)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return -1, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		return -1, ctx.Err()
	}
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() < 0 { // killed by a signal: the runtime itself died
			r.delete(s.ID)
		}
		return ee.ExitCode(), nil
	}
	r.delete(s.ID)
	return -1, fmt.Errorf("running %s: %w", r.runtime, err)
}

// layeredSpec is s's runtime config, its root filesystem the image under
// a fresh writable layer laid out in bundle.
func (r *Runner) layeredSpec(bundle string, s Step) (*specs.Spec, error) {
	spec := config(s, r.rootless, r.MemoryLimits())
	root, overlays, err := writableLayer(bundle, s.RootFS, r.rootless || s.UID != 0 || s.GID != 0)
	if err != nil {
		return nil, err
	}
	withLayer(spec, root, overlays)
	return spec, nil
}

// allowedCPUs lists the first n CPUs this process may run on ("" when it
// may run on n or fewer anyway).
func allowedCPUs(n int) (string, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return "", fmt.Errorf("reading CPU affinity: %w", err)
	}
	if set.Count() <= n {
		return "", nil
	}
	var ids []string
	for i := 0; len(ids) < n && i < 1024; i++ {
		if set.IsSet(i) {
			ids = append(ids, strconv.Itoa(i))
		}
	}
	return strings.Join(ids, ","), nil
}

// command builds the runtime invocation. crun runs in a private mount
// namespace with cgroup2 mounted and its cgroup manager disabled: on hosts
// with a hybrid cgroup hierarchy (like ours) that is the only way crun 1.8
// starts a container. runsc gets the step's flags, runscFlags.
func (r *Runner) command(bundle, id string, runscFlags []string) *exec.Cmd {
	return r.bundleCommand("run", bundle, id, runscFlags)
}

// bundleCommand is command with another verb that takes a bundle ("run" or
// "create").
func (r *Runner) bundleCommand(verb, bundle, id string, runscFlags []string) *exec.Cmd {
	switch r.runtime {
	case Crun:
		script := `mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || mount -t tmpfs none /sys/fs/cgroup; exec "$@"`
		return exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "crun",
			r.binary, "--cgroup-manager=disabled", "--root", r.stateDir, verb, "--bundle", bundle, id)
	case Runsc:
		return r.runscCommand(runscFlags, verb, "--bundle", bundle, id)
	}
	return exec.Command(r.binary, "--root", r.stateDir, verb, "--bundle", bundle, id)
}

func (r *Runner) kill(id string) {
	_ = r.ctl("kill", id, "KILL").Run()
}

func (r *Runner) delete(id string) {
	_ = r.ctl("delete", "--force", id).Run()
}

func (r *Runner) ctl(args ...string) *exec.Cmd {
	base := []string{"--root", r.stateDir}
	switch r.runtime {
	case Crun:
		base = append([]string{"--cgroup-manager=disabled"}, base...)
	case Runsc:
		return r.runscCommand(nil, args...)
	}
	return exec.Command(r.binary, append(base, args...)...)
}
