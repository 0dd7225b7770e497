package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/hashtree"
	"github.com/accord-build/accord/internal/sandbox"
)

// stepImage is an unpacked step image.
type stepImage struct {
	rootfs string
	config *ggcrv1.ConfigFile
	digest ggcrv1.Hash // of the manifest that runs (an index's: the platform's)
}

// image loads the image named by ref (which must carry a digest) and
// unpacks it.
func (r *run) image(ctx context.Context, ref string) (*stepImage, error) {
	h, err := imageDigest(ref)
	if err != nil {
		return nil, err
	}
	img, err := r.lookupImage(ctx, ref, h)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of image %s: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config of image %s: %w", ref, err)
	}
	root, err := r.e.rootfs.Get(ctx, img)
	if err != nil {
		return nil, err
	}
	return &stepImage{rootfs: root, config: cfg, digest: digest}, nil
}

// imageDigest returns the digest of a pinned reference. Unpinned images
// were refused (or explicitly allowed) when the catalog was loaded; the
// local engine has no registry to resolve a tag, so here they fail.
func imageDigest(ref string) (ggcrv1.Hash, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return ggcrv1.Hash{}, inputErr("step image %q has no digest: the local engine runs images by digest only\n  fix: pin it as NAME@sha256:<digest>", ref)
	}
	return ggcrv1.NewHash(d.DigestStr())
}

// prefetchImages loads and unpacks every literal step image before the
// first task starts, so a missing image fails the run before it begins.
func (r *run) prefetchImages(ctx context.Context) error {
	seen := map[string]bool{}
	for _, pt := range append(append([]v1.PipelineTask{}, r.spec.Tasks...), r.spec.Finally...) {
		spec, _ := r.b.Pipeline.TaskSpec(&pt)
		for _, s := range spec.Steps {
			img := s.Image
			if img == "" && spec.StepTemplate != nil {
				img = spec.StepTemplate.Image
			}
			if img == "" || strings.Contains(img, "$(") || seen[img] {
				continue
			}
			seen[img] = true
			if _, err := r.image(ctx, img); err != nil {
				return err
			}
		}
		if err := r.prefetchSidecarImages(ctx, spec, seen); err != nil {
			return err
		}
	}
	return r.prefetchStepActionImages(ctx, seen)
}

// runStep runs one step in a fresh container.
func (r *run) runStep(ctx context.Context, task string, i int, s *v1.Step, dir string, binds []bind, network bool) (engine.StepResult, error) {
	mounts := mountsOf(binds)
	sr := engine.StepResult{Name: s.Name, Image: s.Image}
	if sr.Name == "" {
		sr.Name = fmt.Sprintf("step-%d", i)
	}
	obs := r.b.Observer
	if obs != nil {
		obs.StepStarted(task, sr.Name, s.Image)
	}
	start := time.Now()
	finish := func(st engine.Status) {
		sr.Status, sr.Duration, sr.Seconds = st, time.Since(start), round(time.Since(start))
		if obs != nil {
			obs.StepFinished(task, sr)
		}
	}
	img, err := r.image(ctx, s.Image)
	if err != nil {
		finish(engine.Failed)
		return sr, err
	}
	sr.ImageDigest = img.digest.String()
	args, err := stepArgs(s, i, img.config, filepath.Join(dir, "scripts"))
	if err != nil {
		finish(engine.Failed)
		return sr, err
	}
	cwd := s.WorkingDir
	if cwd == "" {
		cwd = img.config.Config.WorkingDir
	}
	v := r.b.Variation.WithDefaults()
	uid, gid, err := r.stepIdentity(task, s, img, dir)
	if err != nil {
		finish(engine.Failed)
		return sr, err
	}
	// A workingDir under a workspace is made there (owned by the step); any
	// other the runtime makes in the step's writable layer.
	if err := r.makeWorkingDir(task, cwd, binds); err != nil {
		finish(engine.Failed)
		return sr, err
	}
	umask, err := v.UmaskBits()
	if err != nil {
		finish(engine.Failed)
		return sr, inputErr("variation: %v", err)
	}
	mem := r.e.stepMemory
	if q, ok := s.ComputeResources.Limits[corev1.ResourceMemory]; ok {
		mem = q.Value()
	}
	if s.Timeout != nil && s.Timeout.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout.Duration)
		defer cancel()
	}
	step := sandbox.Step{
		ID:            fmt.Sprintf("accord-%s-%s-%d", r.b.ID, task, i),
		RootFS:        img.rootfs,
		Args:          args,
		Env:           stepEnv(img.config.Config.Env, r.b.Source.DateEpoch, s.Env, v),
		Cwd:           cwd,
		Mounts:        append(append([]sandbox.Mount{}, mounts...), networkMounts(network, img.rootfs)...),
		Network:       network,
		MemoryLimit:   mem,
		Hostname:      v.Hostname,
		Umask:         umask,
		UID:           uid,
		GID:           gid,
		CPUs:          v.CPUs,
		WorkspaceRoot: v.WorkspaceRoot,
	}
	stdout, stderr, closeLogs, err := r.stepWriters(task, sr.Name, dir)
	if err != nil {
		finish(engine.Failed)
		return sr, err
	}
	// Held until the step is done: see lockWorkspaces.
	binds, change := r.handWorkspaces(uid, gid, binds)
	defer r.lockWorkspaces(binds)()
	if err := r.chownWorkspaces(uid, gid, change); err != nil {
		closeLogs()
		finish(engine.Failed)
		return sr, err
	}
	if err := r.recheckBinds(task, binds); err != nil {
		closeLogs()
		finish(engine.Failed)
		return sr, err
	}
	if r.b.RecordArtifacts {
		sr.Command = args
		if sr.Materials, err = r.hashWorkspaces(task, binds); err != nil {
			closeLogs()
			finish(engine.Failed)
			return sr, err
		}
	}
	code, err := r.runContainer(ctx, step, stdout, stderr)
	closeLogs()
	sr.ExitCode = code
	if r.b.RecordArtifacts && err == nil {
		if sr.Products, err = r.hashWorkspaces(task, binds); err != nil {
			finish(engine.Failed)
			return sr, err
		}
		sr.StdoutSHA256 = fileSHA256(filepath.Join(dir, sr.Name+".stdout"))
		sr.StderrSHA256 = fileSHA256(filepath.Join(dir, sr.Name+".stderr"))
	}
	switch {
	case errors.Is(err, sandbox.ErrTimeout):
		finish(engine.TimedOut)
		return sr, fmt.Errorf("step %q: %w\n  fix: raise the step's or task's timeout, or --timeout for the whole run", sr.Name, err)
	case err != nil:
		finish(engine.Failed)
		return sr, fmt.Errorf("step %q: %w", sr.Name, err)
	case code != 0:
		finish(engine.Failed)
	default:
		finish(engine.Succeeded)
	}
	return sr, nil
}

func (r *run) stepWriters(task, step, dir string) (io.Writer, io.Writer, func(), error) {
	outF, err := logFile(dir, step, "stdout")
	if err != nil {
		return nil, nil, nil, err
	}
	errF, err := logFile(dir, step, "stderr")
	if err != nil {
		outF.Close()
		return nil, nil, nil, err
	}
	var ow, ew io.Writer
	if obs := r.b.Observer; obs != nil {
		o, e := obs.StepOutput(task, step)
		if o != nil {
			ow = o
		}
		if e != nil {
			ew = e
		}
	}
	return multi(outF, ow), multi(errF, ew), func() { outF.Close(); errF.Close() }, nil
}

// networkMounts gives a task with network the host's DNS and CA roots,
// read-only. Steps without network get neither. A file the image lacks is
// left out: the image has no use for it.
func networkMounts(network bool, rootfs string) []sandbox.Mount {
	if !network {
		return nil
	}
	var m []sandbox.Mount
	for _, p := range []struct{ host, dest string }{
		{"/etc/resolv.conf", "/etc/resolv.conf"},
		{"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt"},
	} {
		_, herr := os.Stat(p.host)
		_, ierr := os.Lstat(filepath.Join(rootfs, p.dest))
		if herr == nil && ierr == nil {
			m = append(m, sandbox.Mount{Source: p.host, Destination: p.dest, ReadOnly: true})
		}
	}
	return m
}

// scriptsDir is where the task's step scripts are in its containers.
const scriptsDir = "/tekton/scripts"

// scriptName is the file of step i's script in scriptsDir.
func scriptName(i int) string { return fmt.Sprintf("script-%d", i) }

// Commands are the command lines the local engine runs for steps
// ([engine.StepCommands]); an [Executor] has them too, and the zero value
// serves where no executor is (writing a layout).
type Commands struct{}

var _ engine.StepCommands = Commands{}

// ExpectedCommand implements [engine.StepCommands]: a step's script runs as
// the file /tekton/scripts/script-<i> with its args, a command with its
// args; otherwise the image's entrypoint decides (nil).
func (Commands) ExpectedCommand(spec *v1.TaskSpec, i int) []string {
	if spec == nil || i < 0 || i >= len(spec.Steps) {
		return nil
	}
	return declaredCommand(&spec.Steps[i], i)
}

// declaredCommand is the command line step i declares: its script file
// or its command, with its args; nil when the image decides.
func declaredCommand(s *v1.Step, i int) []string {
	if s.Script != "" {
		return append([]string{path.Join(scriptsDir, scriptName(i))}, s.Args...)
	}
	if len(s.Command) > 0 {
		return append(append([]string{}, s.Command...), s.Args...)
	}
	return nil
}

// stepArgs is the command line: a script (written to /tekton/scripts, with
// Tekton's default "#!/bin/sh\nset -e" when it has no shebang), or
// command+args, or the image's entrypoint with args replacing its cmd.
func stepArgs(s *v1.Step, i int, cfg *ggcrv1.ConfigFile, scripts string) ([]string, error) {
	if s.Script != "" {
		script := s.Script
		if !strings.HasPrefix(script, "#!") {
			script = "#!/bin/sh\nset -e\n" + script
		}
		if err := writeScript(scripts, scriptName(i), script); err != nil {
			return nil, err
		}
	}
	if args := declaredCommand(s, i); args != nil {
		return args, nil
	}
	args := append([]string{}, cfg.Config.Entrypoint...)
	if len(s.Args) > 0 {
		args = append(args, s.Args...)
	} else {
		args = append(args, cfg.Config.Cmd...)
	}
	if len(args) == 0 {
		return nil, inputErr("step %q has no script, command or image entrypoint\n  fix: give the step a script or a command", s.Name)
	}
	return args, nil
}

// hashWorkspaces hashes every file of the step's workspace mounts, keyed
// "<pipeline workspace>[/<subPath>]/<path>", so paths are the same on every
// builder whatever its host directories. Each mount is opened beneath its
// workspace and hashed through descriptors: no link is followed.
func (r *run) hashWorkspaces(task string, binds []bind) (map[string]string, error) {
	all := map[string]string{}
	for _, b := range binds {
		if b.ws == "" {
			continue
		}
		d, err := r.openBind(task, b, b.rel, false)
		if err != nil {
			return nil, err
		}
		h, err := hashtree.TreeDir(d, hashtree.Options{Prefix: path.Join(b.ws, b.rel) + "/"})
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("hashing workspace %q: %w", path.Join(b.ws, b.rel), err)
		}
		for k, v := range h {
			all[k] = v
		}
	}
	return all, nil
}

func fileSHA256(p string) string {
	h, _ := hashtree.File(p)
	return h
}
