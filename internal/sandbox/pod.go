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
	"regexp"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Pod is a network namespace with loopback only that several containers
// share (a task's sidecars and steps), as the containers of a Kubernetes
// pod do. It is held by a container that is created but never started (its
// runtime's init process waits for a start that never comes), and, for a
// rootless runner, by the user namespace that owns it, which the pod's
// containers join too: a rootless runner cannot enter a network namespace
// owned by another user namespace.
//
// Every container started through the pod, and the holder, is registered
// with a watchdog: a host shell that outlives accord and deletes them all
// when accord's end of a pipe closes, so that no sidecar survives accord
// even when accord is killed. Close the pod when its containers are done.
type Pod struct {
	r      *Runner
	id     string
	bundle string
	net    *os.File
	user   *os.File
	watch  *watchdog
}

// containerID is what runc (and crun) accept as a container id; the
// watchdog reads ids line by line and passes them to the runtime.
var containerID = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)

// NewPod creates a pod named id: a fresh network namespace with loopback
// up and nothing else.
func (r *Runner) NewPod(ctx context.Context, id string) (*Pod, error) {
	if !containerID.MatchString(id) {
		return nil, fmt.Errorf("pod id %q: only letters, digits and _.+- are allowed", id)
	}
	if r.runtime != Runc && r.runtime != Crun {
		// gVisor, for one, gives each container its own network stack,
		// loopback included, in whatever namespace it runs.
		return nil, fmt.Errorf("sidecars need containers that share a network namespace, which accord does with runc and crun only, not %s\n  fix: run the task with --runtime runc or crun, or without sidecars", r.runtime)
	}
	w, err := r.startWatchdog()
	if err != nil {
		return nil, err
	}
	p := &Pod{r: r, id: id, bundle: filepath.Join(r.workDir, "bundles", id), watch: w}
	if err := p.create(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("creating the network namespace of pod %s: %w", id, err)
	}
	return p, nil
}

// create creates the holder container and opens its namespaces.
func (p *Pod) create(ctx context.Context) error {
	if err := p.watch.add(p.id); err != nil {
		return err
	}
	rootfs := filepath.Join(p.bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	// The runtime checks that the process exists before it waits for the
	// start; an empty file is enough, it never runs.
	f, err := os.OpenFile(filepath.Join(rootfs, "pause"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	f.Close()
	cfg, err := json.MarshalIndent(config(Step{ID: p.id, RootFS: rootfs, Args: []string{"/pause"}}, p.r.rootless, false), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.bundle, "config.json"), cfg, 0o600); err != nil {
		return err
	}
	// A file, not a pipe, for the runtime's stderr: the holder inherits it
	// and a pipe would stay open as long as the pod.
	logPath := filepath.Join(p.bundle, "create.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := p.r.bundleCommand("create", p.bundle, p.id, nil)
	cmd.Stderr = log
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s create: %w: %s", p.r.runtime, err, strings.TrimSpace(string(msg)))
	}
	return p.openNamespaces()
}

// openNamespaces opens the holder's network (and user) namespace. The
// descriptors keep them alive and are what containers join, so a holder
// that died cannot make them join a namespace that a recycled pid names.
func (p *Pod) openNamespaces() error {
	pid, err := p.holderPID()
	if err != nil {
		return err
	}
	if p.net, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil {
		return err
	}
	if p.r.rootless {
		if p.user, err = os.Open(fmt.Sprintf("/proc/%d/ns/user", pid)); err != nil {
			return err
		}
	}
	if again, err := p.holderPID(); err != nil || again != pid {
		return fmt.Errorf("the holder container changed while its namespaces were opened (pid %d, now %d): %v", pid, again, err)
	}
	return nil
}

// holderPID is the pid of the holder, which must be in state "created".
func (p *Pod) holderPID() (int, error) {
	out, err := p.r.ctl("state", p.id).Output()
	if err != nil {
		return 0, fmt.Errorf("%s state %s: %w", p.r.runtime, p.id, err)
	}
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("%s state %s: %w", p.r.runtime, p.id, err)
	}
	if st.Status != specs.StateCreated || st.Pid <= 0 {
		return 0, fmt.Errorf("holder container %s is %s (pid %d), want created", p.id, st.Status, st.Pid)
	}
	return st.Pid, nil
}

// Join makes s a container of the pod: it joins the pod's network
// namespace (and the user namespace that owns it) instead of getting its
// own, and never gets the host's network.
func (p *Pod) Join(s *Step) {
	s.Network = false
	s.NetNS = fdPath(p.net)
	s.UserNS = ""
	if p.user != nil {
		s.UserNS = fdPath(p.user)
	}
}

// fdPath names a descriptor of this process so that the runtime, another
// process, opens the same namespace.
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()) }

// Start starts s in the background in the pod (see [Runner.Start]).
func (p *Pod) Start(ctx context.Context, s Step, stdout, stderr io.Writer) (*Container, error) {
	if p.net == nil {
		return nil, errors.New("pod is closed")
	}
	p.Join(&s)
	if err := p.watch.add(s.ID); err != nil {
		return nil, err
	}
	return p.r.Start(ctx, s, stdout, stderr)
}

// Run runs s to completion in the pod (see [Runner.Run]).
func (p *Pod) Run(ctx context.Context, s Step, stdout, stderr io.Writer) (int, error) {
	if p.net == nil {
		return -1, errors.New("pod is closed")
	}
	p.Join(&s)
	if err := p.watch.add(s.ID); err != nil {
		return -1, err
	}
	return p.r.Run(ctx, s, stdout, stderr)
}

// Close deletes the holder, so the network namespace goes with the last
// of the pod's containers; stop those first. The watchdog then deletes
// whatever container of the pod is left, and Close waits for it.
func (p *Pod) Close() error {
	p.r.delete(p.id)
	for _, f := range []*os.File{p.net, p.user} {
		if f != nil {
			f.Close()
		}
	}
	p.net, p.user = nil, nil
	err := p.watch.close()
	if !p.r.keep {
		if rerr := os.RemoveAll(p.bundle); err == nil {
			err = rerr
		}
	}
	return err
}

// joinNamespaces points the config's network (and user) namespace at a
// pod's (see [Pod.Join]).
func joinNamespaces(c *specs.Spec, s Step, rootless, userns bool) {
	if s.NetNS == "" || s.Network {
		return
	}
	for i, ns := range c.Linux.Namespaces {
		switch {
		case ns.Type == specs.NetworkNamespace:
			c.Linux.Namespaces[i].Path = s.NetNS
		case ns.Type == specs.UserNamespace && s.UserNS != "":
			c.Linux.Namespaces[i].Path = s.UserNS
		}
	}
	if userns && s.UserNS == "" {
		// A new user namespace does not own the pod's network namespace,
		// so it may not mount a sysfs: as with the host's network.
		for i, m := range c.Mounts {
			if m.Destination == "/sys" {
				c.Mounts[i] = sysMount(rootless, userns, true)
			}
		}
	}
}

// watchdog is a host shell that reads container ids from a pipe and, when
// the pipe ends (accord closed it, or exited, or was killed), force-deletes
// each: "delete --force" kills what still runs. It runs in its own session
// so that a terminal's signals to accord do not reach it, and ignores
// SIGTERM, SIGINT and SIGHUP (a service manager stopping accord's unit
// signals every process of it): only the end of the pipe ends it.
type watchdog struct {
	mu  sync.Mutex
	w   *os.File
	cmd *exec.Cmd
}

const watchdogScript = `trap '' TERM INT HUP
ids=
while read -r id; do ids="$ids $id"; done
for id in $ids; do "$@" delete --force "$id" >/dev/null 2>&1; done`

func (r *Runner) startWatchdog() (*watchdog, error) {
	pr, pw, err := os.Pipe() // close-on-exec: no other child holds pw
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdogScript, "accord-watchdog"}, r.ctl().Args...)...)
	cmd.Stdin = pr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("starting the container watchdog: %w", err)
	}
	return &watchdog{w: pw, cmd: cmd}, nil
}

// add registers a container id before its container is created.
func (w *watchdog) add(id string) error {
	if !containerID.MatchString(id) {
		return fmt.Errorf("container id %q: only letters, digits and _.+- are allowed", id)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return errors.New("pod is closed")
	}
	if _, err := fmt.Fprintln(w.w, id); err != nil {
		return fmt.Errorf("registering container %s with the watchdog: %w", id, err)
	}
	return nil
}

// close ends the pipe and waits for the watchdog's deletes.
func (w *watchdog) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return nil
	}
	w.w.Close()
	w.w = nil
	if err := w.cmd.Wait(); err != nil {
		return fmt.Errorf("container watchdog: %w", err)
	}
	return nil
}
