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
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Container is a step running in the background ([Runner.Start]), such
// as a sidecar. Stop it (or let it exit and Wait) before the runner goes.
type Container struct {
	r      *Runner
	id     string
	bundle string
	cmd    *exec.Cmd
	done   chan struct{}
	code   int
	err    error
}

// Start starts s in the background and returns once the runtime runs it.
// Output goes to stdout and stderr as it is produced. The container runs
// until its process exits or [Container.Stop]; ctx is only for starting.
func (r *Runner) Start(ctx context.Context, s Step, stdout, stderr io.Writer) (*Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.rootless && (s.UID != 0 || s.GID != 0) {
		return nil, fmt.Errorf("running as uid %d: a rootless runner owns a single host id\n  fix: run accord as root for a uid/gid variation, or leave uid/gid unset", s.UID)
	}
	bundle, err := r.writeBundle(s)
	if err != nil {
		return nil, err
	}
	c := &Container{r: r, id: s.ID, bundle: bundle, done: make(chan struct{})}
	c.cmd = r.command(bundle, s.ID, nil)
	c.cmd.Stdout, c.cmd.Stderr = stdout, stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		c.removeBundle()
		return nil, fmt.Errorf("starting %s: %w", r.runtime, err)
	}
	go func() {
		c.code, c.err = exitStatus(c.cmd.Wait(), r.runtime)
		close(c.done)
	}()
	if err := c.waitRunning(ctx); err != nil {
		c.Stop(0)
		return nil, err
	}
	return c, nil
}

// waitRunning waits until the runtime has started the container's process
// (or it has exited already): only then is a Kubernetes container started.
func (c *Container) waitRunning(ctx context.Context) error {
	for {
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("starting container %s: %w", c.id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		out, err := c.r.ctl("state", c.id).Output()
		if err != nil {
			continue // not created yet
		}
		var st specs.State
		if json.Unmarshal(out, &st) == nil && st.Status != specs.StateCreating && st.Status != specs.StateCreated {
			return nil
		}
	}
}

// writeBundle writes s's bundle and returns its directory.
func (r *Runner) writeBundle(s Step) (string, error) {
	bundle := filepath.Join(r.workDir, "bundles", s.ID)
	if err := removeTree(bundle); err != nil {
		return "", err
	}
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return "", err
	}
	// A background container's root filesystem is writable as a step's
	// is (a database sidecar writes its data directory), discarded with
	// the bundle.
	spec, err := r.layeredSpec(bundle, s)
	if err != nil {
		removeTree(bundle)
		return "", err
	}
	cfg, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		removeTree(bundle)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o600); err != nil {
		removeTree(bundle)
		return "", err
	}
	return bundle, nil
}

// exitStatus turns the runtime's exit into the container's exit code:
// runc and crun exit with their container's code (128+N for signal N).
func exitStatus(err error, rt Runtime) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode(), nil
	}
	return -1, fmt.Errorf("running %s: %w", rt, err)
}

// ID is the container's id.
func (c *Container) ID() string { return c.id }

// Done is closed when the container's process has exited.
func (c *Container) Done() <-chan struct{} { return c.done }

// Wait waits for the container's process to exit and returns its exit
// code; the error is for a runtime that failed or was killed.
func (c *Container) Wait() (int, error) {
	<-c.done
	return c.code, c.err
}

// Stop ends the container: SIGTERM to its process, SIGKILL once grace has
// passed, then deletes it and its bundle. It returns what Wait returns
// (128+15 or 128+9 for a container that had to be stopped). Stopping a
// container that exited already just cleans up.
func (c *Container) Stop(grace time.Duration) (int, error) {
	select {
	case <-c.done:
	default:
		_ = c.r.ctl("kill", c.id, "TERM").Run()
		select {
		case <-c.done:
		case <-time.After(grace):
			c.r.kill(c.id)
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				// The runtime itself hangs: kill it and its children.
				_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
				<-c.done
			}
		}
	}
	c.r.delete(c.id)
	c.removeBundle()
	return c.code, c.err
}

func (c *Container) removeBundle() {
	if !c.r.keep {
		removeTree(c.bundle)
	}
}

// Exec runs args in the running container (with its environment, user and
// working directory) and returns the exit code; ctx bounds it.
func (c *Container) Exec(ctx context.Context, args ...string) (int, error) {
	cmd := c.r.ctl(append([]string{"exec", c.id}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("%s exec: %w", c.r.runtime, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitStatus(err, c.r.runtime)
	case <-ctx.Done():
		// The exec'd process is in the container: killing the runtime's
		// process group leaves it, as kubelet's probe timeout does.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1, ctx.Err()
	}
}
