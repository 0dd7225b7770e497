package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/sandbox"
)

// DefaultSidecarGrace is how long a sidecar has between SIGTERM and
// SIGKILL once its task's steps are done (Kubernetes gives a pod 30 s; a
// build's sidecar has nothing to save).
const DefaultSidecarGrace = 5 * time.Second

// WithSidecarGrace sets how long a sidecar may take to exit after SIGTERM
// before it is killed. Default [DefaultSidecarGrace].
func WithSidecarGrace(d time.Duration) Option { return func(e *Executor) { e.sidecarGrace = d } }

// sidecarSet is the running sidecars of one task and the pod (network
// namespace) they share with the task's steps.
type sidecarSet struct {
	r     *run
	task  string
	dir   string // <task dir>/sidecars: logs and homes, reached by no step
	pod   *sandbox.Pod
	list  []*sidecar
	grace time.Duration
}

type sidecar struct {
	spec      *v1.Sidecar
	res       engine.SidecarResult
	c         *sandbox.Container
	closeLogs func()
	start     time.Time
}

// sidecarName is a Kubernetes container name, which the loader requires.
var sidecarName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// podKey carries a task's pod in the context its steps run with.
type podKey struct{}

// startSidecars starts the task's sidecars, as Tekton does before its
// steps, in a new pod whose network namespace (loopback only) they share
// with the steps, and waits until each is ready (see waitReady). The
// returned context carries the pod for runContainer. Whatever happens,
// stop the returned set (nil without sidecars) once the steps are done.
func (r *run) startSidecars(ctx context.Context, task string, sidecars []v1.Sidecar, dir string, network bool) (context.Context, *sidecarSet, error) {
	if len(sidecars) == 0 {
		return ctx, nil, nil
	}
	if network {
		return ctx, nil, inputErr("pipeline task %q: a task with sidecars cannot have the accord.dev/network annotation\n  fix: split the task: one with the network annotation that fetches, another with the sidecars that works offline", task)
	}
	s := &sidecarSet{r: r, task: task, dir: filepath.Join(dir, "sidecars"), grace: r.e.sidecarGrace}
	if s.grace <= 0 {
		s.grace = DefaultSidecarGrace
	}
	for i := range sidecars {
		if !sidecarName.MatchString(sidecars[i].Name) {
			// The loader refuses it; the name makes host paths.
			return ctx, nil, inputErr("pipeline task %q: sidecar name %q is not a Kubernetes container name", task, sidecars[i].Name)
		}
		s.list = append(s.list, &sidecar{spec: &sidecars[i], res: engine.SidecarResult{Name: sidecars[i].Name, Image: sidecars[i].Image, ExitCode: -1}})
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		return ctx, s, err
	}
	pod, err := r.e.runner.NewPod(ctx, fmt.Sprintf("accord-%s-%s_pod", r.b.ID, task))
	if err != nil {
		return ctx, s, fmt.Errorf("pipeline task %q: %w", task, err)
	}
	s.pod = pod
	for i, sc := range s.list {
		if err := s.startOne(ctx, i, sc); err != nil {
			sc.res.Reason = err.Error()
			return ctx, s, fmt.Errorf("sidecar %q: %w", sc.spec.Name, err)
		}
	}
	for _, sc := range s.list {
		if err := sc.waitReady(ctx); err != nil {
			return ctx, s, err
		}
	}
	return context.WithValue(ctx, podKey{}, pod), s, nil
}

// runContainer runs a step: in its task's pod when the task has sidecars.
func (r *run) runContainer(ctx context.Context, s sandbox.Step, stdout, stderr io.Writer) (int, error) {
	if pod, ok := ctx.Value(podKey{}).(*sandbox.Pod); ok {
		return pod.Run(ctx, s, stdout, stderr)
	}
	return r.e.runner.Run(ctx, s, stdout, stderr)
}

// startOne starts sidecar i in the pod.
func (s *sidecarSet) startOne(ctx context.Context, i int, sc *sidecar) error {
	step, err := s.container(ctx, i, sc.spec)
	if err != nil {
		return err
	}
	stdout, stderr, closeLogs, err := s.logs(sc.spec.Name)
	if err != nil {
		return err
	}
	sc.start = time.Now()
	sc.c, err = s.pod.Start(ctx, step, stdout, stderr)
	if err != nil {
		closeLogs()
		return err
	}
	sc.closeLogs = closeLogs
	s.r.e.logger.Info("sidecar started", "task", s.task, "sidecar", sc.spec.Name, "image", sc.spec.Image)
	return nil
}

// container is sidecar i's container: like a step's, with its own home
// and the task's scripts, without the task's workspaces.
func (s *sidecarSet) container(ctx context.Context, i int, spec *v1.Sidecar) (sandbox.Step, error) {
	r := s.r
	img, err := r.image(ctx, spec.Image)
	if err != nil {
		return sandbox.Step{}, err
	}
	scripts := filepath.Join(filepath.Dir(s.dir), "scripts")
	args, err := sidecarArgs(spec, i, img.config.Config.Entrypoint, img.config.Config.Cmd, scripts)
	if err != nil {
		return sandbox.Step{}, err
	}
	v := r.b.Variation.WithDefaults()
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = img.config.Config.WorkingDir
	}
	// A workingDir missing from the image is made by the runtime in the
	// sidecar's writable layer.
	umask, err := v.UmaskBits()
	if err != nil {
		return sandbox.Step{}, inputErr("variation: %v", err)
	}
	// Its own home, as a container of a pod has: not the steps'.
	home := filepath.Join(s.dir, spec.Name+".home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return sandbox.Step{}, err
	}
	uid, gid, err := r.sidecarIdentity(s.task, spec, img, home)
	if err != nil {
		return sandbox.Step{}, err
	}
	mem := r.e.stepMemory
	if q, ok := spec.ComputeResources.Limits[corev1.ResourceMemory]; ok {
		mem = q.Value()
	}
	return sandbox.Step{
		ID:     fmt.Sprintf("accord-%s-%s_sidecar-%d", r.b.ID, s.task, i),
		RootFS: img.rootfs,
		Args:   args,
		Env:    stepEnv(img.config.Config.Env, r.b.Source.DateEpoch, spec.Env, v),
		Cwd:    cwd,
		Mounts: []sandbox.Mount{
			{Source: scripts, Destination: scriptsDir, ReadOnly: true},
			{Source: home, Destination: "/tekton/home"},
		},
		MemoryLimit:   mem,
		Hostname:      v.Hostname,
		Umask:         umask,
		UID:           uid,
		GID:           gid,
		WorkspaceRoot: v.WorkspaceRoot,
	}, nil
}

// logs creates a sidecar's output files, <task>/sidecars/NAME.stdout and
// .stderr, and tees them to the observer as step "sidecar-NAME" (the
// name of a Tekton sidecar's container).
func (s *sidecarSet) logs(name string) (io.Writer, io.Writer, func(), error) {
	outF, err := logFile(s.dir, name, "stdout")
	if err != nil {
		return nil, nil, nil, err
	}
	errF, err := logFile(s.dir, name, "stderr")
	if err != nil {
		outF.Close()
		return nil, nil, nil, err
	}
	var ow, ew io.Writer
	if obs := s.r.b.Observer; obs != nil {
		o, e := obs.StepOutput(s.task, "sidecar-"+name)
		if o != nil {
			ow = o
		}
		if e != nil {
			ew = e
		}
	}
	return multi(outF, ow), multi(errF, ew), func() { outF.Close(); errF.Close() }, nil
}

// sidecarArgs is a sidecar's command line, as for a step (see stepArgs):
// its script (written as /tekton/scripts/sidecar-script-<i>), its command
// and args, or the image's entrypoint with args replacing its cmd.
func sidecarArgs(sc *v1.Sidecar, i int, entrypoint, cmd []string, scripts string) ([]string, error) {
	switch {
	case sc.Script != "":
		script := sc.Script
		if !strings.HasPrefix(script, "#!") {
			script = "#!/bin/sh\nset -e\n" + script
		}
		name := fmt.Sprintf("sidecar-script-%d", i)
		if err := writeScript(scripts, name, script); err != nil {
			return nil, err
		}
		return append([]string{scriptsDir + "/" + name}, sc.Args...), nil
	case len(sc.Command) > 0:
		return append(append([]string{}, sc.Command...), sc.Args...), nil
	}
	args := append([]string{}, entrypoint...)
	if len(sc.Args) > 0 {
		args = append(args, sc.Args...)
	} else {
		args = append(args, cmd...)
	}
	if len(args) == 0 {
		return nil, inputErr("sidecar %q has no script, command or image entrypoint\n  fix: give the sidecar a script or a command", sc.Name)
	}
	return args, nil
}

// waitReady waits until the sidecar is ready by Tekton's rule (its
// SidecarsReady): a running sidecar without a readiness probe is ready
// once started, one with a probe once the probe succeeded
// successThreshold times in a row, and a sidecar that has exited counts
// as ready too (the steps run; its exit code is reported). The exec probe
// runs as the kubelet's: after initialDelaySeconds, every periodSeconds
// (default 10), each bounded by timeoutSeconds (default 1).
func (sc *sidecar) waitReady(ctx context.Context) error {
	p := sc.spec.ReadinessProbe
	if p == nil || p.Exec == nil {
		return nil
	}
	period := secondsOr(p.PeriodSeconds, 10)
	timeout := secondsOr(p.TimeoutSeconds, 1)
	need := max(int(p.SuccessThreshold), 1)
	next := sc.start.Add(time.Duration(p.InitialDelaySeconds) * time.Second)
	for ok := 0; ok < need; {
		select {
		case <-sc.c.Done():
			return nil
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("sidecar %q was not ready when the task's time ran out: %w: %w", sc.spec.Name, sandbox.ErrTimeout, ctx.Err())
			}
			return fmt.Errorf("waiting for sidecar %q to be ready: %w", sc.spec.Name, ctx.Err())
		case <-time.After(time.Until(next)):
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		code, err := sc.c.Exec(pctx, p.Exec.Command...)
		cancel()
		if err == nil && code == 0 {
			ok++
		} else {
			ok = 0
		}
		next = next.Add(period)
	}
	return nil
}

func secondsOr(n int32, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

// stop stops every sidecar still running (SIGTERM, SIGKILL after the
// grace period), all at once, closes the pod and reports each sidecar in
// out, in the task's order.
func (s *sidecarSet) stop(out *engine.TaskResult) {
	if s == nil {
		return
	}
	var wg sync.WaitGroup
	for _, sc := range s.list {
		if sc.c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stopOne(sc)
		}()
	}
	wg.Wait()
	if s.pod != nil {
		if err := s.pod.Close(); err != nil {
			s.r.e.logger.Warn("closing the sidecars' pod", "task", s.task, "error", err)
		}
	}
	for _, sc := range s.list {
		out.Sidecars = append(out.Sidecars, sc.res)
	}
}

func (s *sidecarSet) stopOne(sc *sidecar) {
	select {
	case <-sc.c.Done():
	default:
		sc.res.Stopped = true
	}
	code, err := sc.c.Stop(s.grace)
	sc.closeLogs()
	sc.res.ExitCode = code
	if err != nil {
		sc.res.Reason = err.Error()
	}
	sc.res.Duration = time.Since(sc.start)
	sc.res.Seconds = round(sc.res.Duration)
	if s.r.b.RecordArtifacts {
		sc.res.StdoutSHA256 = fileSHA256(filepath.Join(s.dir, sc.spec.Name+".stdout"))
		sc.res.StderrSHA256 = fileSHA256(filepath.Join(s.dir, sc.spec.Name+".stderr"))
	}
}

// prefetchSidecarImages loads and unpacks the sidecars' images with the
// steps' (see prefetchImages).
func (r *run) prefetchSidecarImages(ctx context.Context, spec *v1.TaskSpec, seen map[string]bool) error {
	for _, sc := range spec.Sidecars {
		if sc.Image == "" || strings.Contains(sc.Image, "$(") || seen[sc.Image] {
			continue
		}
		seen[sc.Image] = true
		if _, err := r.image(ctx, sc.Image); err != nil {
			return err
		}
	}
	return nil
}
