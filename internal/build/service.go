package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/hashtree"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
)

// Service builds requests. Store is required.
type Service struct {
	// Store holds step images, artifacts and their evidence.
	Store store.Store
	// Engine runs the builds; default [Local] on Store with these
	// fields' settings.
	Engine Engine
	// WorkDir, Parallel, Keep and StepMemory configure the default local
	// engine (see [Local]).
	WorkDir    string
	Parallel   int
	Keep       bool
	StepMemory int64
	// Pull, for the default local engine, fetches step images the store
	// lacks from their registries (see [Local]); nil: the store only.
	Pull *pull.Puller
	// Trust decides whose stored provenance explains a divergence; nil
	// trusts none.
	Trust Trust
	// Logger gets the service's own log lines; default none.
	Logger *slog.Logger
}

func (s *Service) engine() Engine {
	if s.Engine != nil {
		return s.Engine
	}
	return &Local{Store: s.Store, WorkDir: s.WorkDir, Parallel: s.Parallel, Keep: s.Keep, StepMemory: s.StepMemory, Pull: s.Pull}
}

// Builder is one builder: who it is, the key it signs with, the engine
// configuration it runs with and how its environment varies.
type Builder struct {
	// Name is the builder's name in the builders file ("" for a builder
	// given on the command line).
	Name string
	// ID is the builder's identity (runDetails.builder.id).
	ID string
	// Signer signs its links, provenance and SBOMs; nil records no proof.
	Signer *attest.Signer
	// Runtime is the local engine's OCI runtime: runc (default), crun.
	Runtime string
	// Variation is the builder's environment.
	Variation engine.Variation
	// Validator stores artifacts by digest only: the names stay the
	// primary's.
	Validator bool
	// Progress is told how the build goes; may be nil.
	Progress Progress
}

// Progress is told how a build goes.
type Progress interface {
	engine.Observer
	// Started is called when the pipeline is resolved and the source
	// fetched, before the first task runs.
	Started(p PipelineInfo, s SourceInfo, runtime string, rootless bool)
}

// Resolve finds the pipeline of a request in the catalog (or its file).
func (s *Service) Resolve(ctx context.Context, pipeline string, allowUnpinned bool) (*pipelines.Resolved, error) {
	return Resolve(ctx, pipeline, allowUnpinned)
}

// Resolve finds a pipeline in the built-in catalog (or its file); a
// pipeline that is not there, or not valid, is an [*InputError].
func Resolve(ctx context.Context, pipeline string, allowUnpinned bool) (*pipelines.Resolved, error) {
	cat, err := pipelines.Builtin(ctx)
	if err != nil {
		return nil, err
	}
	r, err := cat.Resolve(ctx, pipeline, pipelines.WithAllowUnpinned(allowUnpinned))
	if err != nil {
		return nil, inputErr(err)
	}
	return r, nil
}

// Build runs req on builder b and records its artifacts and proof. A build
// whose tasks fail gives a report with Succeeded false (exit code 3) and
// no error; the error is for builds that could not run.
func (s *Service) Build(ctx context.Context, req Request, b Builder) (*Report, error) {
	resolved, err := s.Resolve(ctx, req.Pipeline, req.AllowUnpinned)
	if err != nil {
		return nil, err
	}
	if err := checkImageParam(resolved, req.Params, s.Store); err != nil {
		return nil, inputErr(err)
	}
	if err := b.Variation.Validate(); err != nil {
		return nil, inputErr(fmt.Errorf("variation: %w", err))
	}
	run, err := s.prepare(ctx, req, b, resolved)
	if err != nil {
		return nil, err
	}
	defer run.cleanup()
	return s.execute(ctx, run)
}

// run is one build in progress.
type run struct {
	id       string
	req      Request
	b        Builder
	resolved *pipelines.Resolved
	params   v1.Params
	info     EngineInfo
	exec     engine.Executor
	src      engine.Source
	srcInfo  SourceInfo
	cleanups []func()
}

func (r *run) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// prepare makes the executor and fetches the source.
func (s *Service) prepare(ctx context.Context, req Request, b Builder, resolved *pipelines.Resolved) (*run, error) {
	r := &run{id: newRunID(), req: req, b: b, resolved: resolved, params: append(v1.Params(nil), req.Params...)}
	var err error
	if r.exec, r.info, err = s.engine().Executor(ctx, b); err != nil {
		return nil, err
	}
	work, err := (&Local{WorkDir: s.WorkDir}).workDir()
	if err != nil {
		return nil, err
	}
	if req.Source.Optional && !declaresWorkspace(&resolved.Pipeline.Pipeline.Spec, engine.SourceWorkspace) {
		req.Source = Source{DateEpoch: req.Source.DateEpoch} // the pipeline takes no source and none was asked for
		r.req = req
	}
	src, info, cleanupSrc, err := fetchSource(ctx, req.Source, work, r.id)
	if err != nil {
		return nil, inputErr(err)
	}
	r.src, r.srcInfo, r.cleanups = src, info, append(r.cleanups, cleanupSrc)
	spec := &resolved.Pipeline.Pipeline.Spec
	if _, ok := findParamSpec(spec, "source-url"); ok && info.URI != "" && !hasParam(r.params, "source-url") {
		r.params = append(r.params, v1.Param{Name: "source-url", Value: *v1.NewStructuredValues(info.URI)})
	}
	if _, ok := findParamSpec(spec, "source-commit"); ok && info.Commit != "" && !hasParam(r.params, "source-commit") {
		r.params = append(r.params, v1.Param{Name: "source-commit", Value: *v1.NewStructuredValues(info.Commit)})
	}
	return r, nil
}

// execute runs the pipeline, then collects the artifacts and records the
// proof.
func (s *Service) execute(ctx context.Context, r *run) (*Report, error) {
	b := r.b
	eb := &engine.Build{ID: r.id, Pipeline: r.resolved, Params: r.params, Source: r.src, Timeout: r.req.Timeout,
		RecordArtifacts: b.Signer != nil, Variation: b.Variation}
	if b.Progress != nil {
		eb.Observer = b.Progress
		b.Progress.Started(PipelineInfo{r.resolved.Pipeline.Name, r.resolved.Digest}, r.srcInfo, r.info.Runtime, r.info.Rootless)
	}
	started := time.Now()
	res, err := r.exec.Run(ctx, eb)
	defer r.exec.Cleanup(context.WithoutCancel(ctx), eb)
	if err != nil {
		var ie *engine.InputError
		if errors.As(err, &ie) {
			return nil, inputErr(err)
		}
		return nil, &RunError{Err: err}
	}
	rep := &Report{Builder: b.Name, BuilderID: b.ID, Variation: effectiveVariation(b.Variation), Succeeded: res.Succeeded, Reason: res.Reason,
		Pipeline: PipelineInfo{r.resolved.Pipeline.Name, r.resolved.Digest}, Source: r.srcInfo, Runtime: r.info.Runtime,
		Rootless: r.info.Rootless, Tasks: res.Tasks, Results: res.Results, Seconds: res.Seconds, Artifacts: []artifact.Artifact{}}
	for _, d := range r.resolved.Definitions() {
		rep.Unpinned = append(rep.Unpinned, pipelines.UnpinnedImages(d)...)
	}
	if res.Succeeded {
		s.collect(ctx, r, res, rep, started)
	}
	if !rep.Succeeded {
		rep.ExitCode = ExitBuildFailed
	}
	return rep, nil
}

// collect stores the artifacts of a successful run and records its proof;
// a failure of either fails the build.
func (s *Service) collect(ctx context.Context, r *run, res *engine.Result, rep *Report, started time.Time) {
	arts, err := artifact.Collect(ctx, res, s.Store, !r.b.Validator)
	if err != nil {
		rep.Succeeded, rep.Reason = false, err.Error()
	}
	rep.Artifacts = append(rep.Artifacts, arts...)
	if err != nil || r.b.Signer == nil {
		return
	}
	in := &proof.Input{RunID: r.id, Pipeline: r.resolved, Params: r.params, Source: r.src, Result: res, Artifacts: arts,
		Internal: internalParameters(r.b, r.info), Started: started, Finished: time.Now()}
	if in.SourceTree, err = sourceTree(r.src.Dir); err == nil {
		rep.Proof, err = proof.Record(ctx, in, proof.Options{Signer: r.b.Signer, BuilderID: r.b.ID, Store: s.Store, Logger: s.Logger})
	}
	if err != nil {
		rep.Succeeded, rep.Reason = false, "recording proof: "+err.Error()
	}
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sourceTree is the dirHash1 of the source tree (without .git).
func sourceTree(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	h, err := hashtree.Tree(dir, hashtree.Options{Skip: func(rel string) bool { return filepath.Base(rel) == ".git" }})
	if err != nil {
		return "", err
	}
	return h.DirHash1(), nil
}

// internalParameters are what the provenance records about this builder:
// runtime, rootless, and the variation profile as the steps saw it.
func internalParameters(b Builder, info EngineInfo) map[string]any {
	rt := info.Runtime
	v := effectiveVariation(b.Variation)
	m := map[string]any{"runtime": rt, "rootless": info.Rootless, "variation": map[string]any{
		"workspaceRoot": v.WorkspaceRoot, "hostname": v.Hostname, "uid": v.UID, "gid": v.GID, "umask": v.Umask,
		"timezone": v.Timezone, "cpus": v.CPUs, "envOrder": v.EnvOrder, "runtime": rt,
	}}
	if b.Name != "" {
		m["builder"] = b.Name
	}
	return m
}

// effectiveVariation is the variation with defaults filled and the CPU
// count the steps saw.
func effectiveVariation(v engine.Variation) engine.Variation {
	v = v.WithDefaults()
	if v.CPUs == 0 || v.CPUs > runtime.NumCPU() {
		v.CPUs = runtime.NumCPU()
	}
	return v
}
