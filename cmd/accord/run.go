package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/hashtree"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/source"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
)

// runOptions are the flags of 'accord run'.
type runOptions struct {
	source        string
	revision      string
	epoch         int64
	pipeline      string
	params        []string
	storeRef      string
	runtime       string
	parallel      int
	keep          bool
	allowUnpinned bool
	timeout       time.Duration
	stepMemory    int64
	workDir       string
	output        string
	key           string
	builderID     string
	sourceGiven   bool
	// builderName and variation come from the builders file (or a
	// rebuild's default validator profile).
	builderName  string
	variation    engine.Variation
	builders     int
	buildersFile string
	// validator stores artifacts by digest only.
	validator bool
	threshold int
}

func (o *runOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.source, "source", ".", "source: a directory, or a git URL (or path to a git repository) with --revision")
	f.StringVar(&o.revision, "revision", "", "git commit (40 hex), branch or tag; a branch or tag is resolved and the commit recorded")
	f.Int64Var(&o.epoch, "source-date-epoch", 0, "SOURCE_DATE_EPOCH for a directory source (git sources use the commit time)")
	f.StringVar(&o.pipeline, "pipeline", "go-image", "catalog pipeline name, or a YAML file with a Pipeline (and its Tasks)")
	f.StringArrayVarP(&o.params, "param", "p", nil, "pipeline param NAME=VALUE (arrays: a,b or JSON; objects: JSON); repeatable")
	f.StringVar(&o.storeRef, "store", "", "store: OCI layout directory or HOST/REPO (default $XDG_DATA_HOME/accord/store)")
	f.StringVar(&o.runtime, "runtime", "runc", "OCI runtime: runc or crun")
	f.IntVar(&o.parallel, "parallel", 0, "tasks to run at once (default: number of CPUs)")
	f.BoolVar(&o.keep, "keep", false, "keep workspaces, bundles and step logs after the run, for debugging")
	f.BoolVar(&o.allowUnpinned, "allow-unpinned", false, "run step images that are not pinned by digest (recorded in the output)")
	f.DurationVar(&o.timeout, "timeout", time.Hour, "limit for the whole run")
	f.Int64Var(&o.stepMemory, "step-memory", 4<<30, "memory limit in bytes for steps that set none (runc as root enforces it)")
	f.StringVar(&o.workDir, "workdir", "", "where runs keep their temporary state (default: a directory under $TMPDIR)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.key, "key", "", "builder signing key: a cosign key file or KMS URI (hashivault://, awskms://, gcpkms://, azurekms://); with it, every step gets a signed in-toto link and every artifact signed SLSA provenance and an SBOM")
	f.StringVar(&o.builderID, "builder-id", "https://accord.dev/builders/local", "this builder's identity (runDetails.builder.id)")
	f.IntVar(&o.builders, "builders", 1, "run the primary and N-1 validators of the builders file, compare their digests; exit 1 without consensus")
	f.StringVar(&o.buildersFile, "builders-file", defaultBuildersFile(), "the builders file for --builders (see 'accord builders --help'); $ACCORD_BUILDERS")
	f.IntVar(&o.threshold, "threshold", 0, "with --builders: how many builders must produce identical artifacts (default: all N); any disagreement still fails")
}

func newRunCmd() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a catalog pipeline hermetically on a source",
		Long: `Run a Tekton pipeline from accord's catalog (or a file) on a source tree.

The source is a directory, or a git repository fetched with real git at an
exact commit (SOURCE_DATE_EPOCH is the commit time). Every step runs in a
fresh OCI container: read-only image rootfs pinned by digest, workspaces
bound read-write, /tmp a tmpfs, no network unless the catalog marks the task
as needing it, an environment built from nothing (TZ=UTC, LANG=C.UTF-8,
SOURCE_DATE_EPOCH, HOME=/tekton/home, the image's PATH).

Artifacts announced by Tekton Chains type hints (IMAGE_URL/IMAGE_DIGEST,
*_ARTIFACT_OUTPUTS) are checked against the bytes the run produced and put
into the store.

With --builders N, the primary and N-1 validators from the builders file
each build the same request in their own environment (runtime, workspace
path, hostname, uid/gid, umask, timezone, CPU count, environment order),
sign with their own keys, and their digests are compared: consensus marks
the artifacts released (a .released attachment); any disagreement exits 1
and prints a signed divergence report that names the cause.

Exit codes: 0 ok (consensus), 1 no consensus, 2 bad input, 3 build failed.`,
		Example: `  accord run --source examples/hello
  accord run --source https://example.com/org/app.git --revision v1.2.0 -o json
  accord run --source ./app --pipeline ./my-pipeline.yaml -p package=./cmd/app
  accord builders init ./builders && accord run --source examples/hello --builders 2 --builders-file ./builders/builders.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "text" && o.output != "json" {
				return usageErr(fmt.Errorf("--output %q: use text or json", o.output))
			}
			o.sourceGiven = cmd.Flags().Changed("source")
			if o.builders != 1 || cmd.Flags().Changed("threshold") {
				return runConsensus(cmd, o)
			}
			return runBuild(cmd, o)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// runReport is the JSON output of 'accord run'.
type runReport struct {
	Builder   string                 `json:"builder,omitempty"`
	BuilderID string                 `json:"builderId"`
	Variation engine.Variation       `json:"variation"`
	Succeeded bool                   `json:"succeeded"`
	Reason    string                 `json:"reason,omitempty"`
	Pipeline  pipelineInfo           `json:"pipeline"`
	Source    sourceInfo             `json:"source"`
	Runtime   string                 `json:"runtime"`
	Rootless  bool                   `json:"rootless"`
	Unpinned  []string               `json:"unpinnedImages,omitempty"`
	Artifacts []artifact.Artifact    `json:"artifacts"`
	Tasks     []engine.TaskResult    `json:"tasks"`
	Results   []v1.PipelineRunResult `json:"results,omitempty"`
	Proof     []proof.Recorded       `json:"proof,omitempty"`
	Seconds   float64                `json:"seconds"`
	ExitCode  int                    `json:"exitCode"`
}

type pipelineInfo struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

type sourceInfo struct {
	URI             string `json:"uri,omitempty"`
	Ref             string `json:"ref,omitempty"`
	Commit          string `json:"commit,omitempty"`
	Dir             bool   `json:"directory,omitempty"`
	SourceDateEpoch int64  `json:"sourceDateEpoch"`
}

// build runs the pipeline and records artifacts and proof; the report
// says whether it succeeded, err is for runs that could not happen.
func build(cmd *cobra.Command, o *runOptions) (*runReport, store.Store, error) {
	ctx := cmd.Context()
	cat, err := pipelines.Builtin(ctx)
	if err != nil {
		return nil, nil, err
	}
	resolved, err := cat.Resolve(ctx, o.pipeline, pipelines.WithAllowUnpinned(o.allowUnpinned))
	if err != nil {
		return nil, nil, usageErr(err)
	}
	params, err := parseParams(o.params, &resolved.Pipeline.Pipeline.Spec)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	if err := checkImageParam(resolved, params); err != nil {
		return nil, nil, usageErr(err)
	}
	rt, err := sandbox.ParseRuntime(o.runtime)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	st, err := store.Open(o.storeRef)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	// The key is decrypted once, here, and stays in this process: steps
	// run in containers that see neither it nor the store.
	var signer *attest.Signer
	if o.key != "" {
		if signer, err = loadSigner(ctx, o.key); err != nil {
			return nil, nil, usageErr(err)
		}
	}
	id := newRunID()
	work := o.workDir
	if work == "" {
		work = filepath.Join(os.TempDir(), fmt.Sprintf("accord-%d", os.Getuid()))
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, nil, err
	}
	runner, err := sandbox.NewRunner(rt, work, sandbox.WithKeep(o.keep))
	if err != nil {
		return nil, nil, usageErr(err)
	}
	rootfs, err := sandbox.NewRootFSCache(sandbox.DefaultCacheDir())
	if err != nil {
		return nil, nil, err
	}
	if !o.sourceGiven && !declaresWorkspace(&resolved.Pipeline.Pipeline.Spec, engine.SourceWorkspace) {
		o.source = "" // the pipeline takes no source and none was asked for
	}
	src, srcInfo, cleanupSrc, err := fetchSource(ctx, o, work, id)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	defer cleanupSrc()
	if _, ok := findParamSpec(&resolved.Pipeline.Pipeline.Spec, "source-url"); ok && srcInfo.URI != "" && !hasParam(params, "source-url") {
		params = append(params, v1.Param{Name: "source-url", Value: *v1.NewStructuredValues(srcInfo.URI)})
	}
	if _, ok := findParamSpec(&resolved.Pipeline.Pipeline.Spec, "source-commit"); ok && srcInfo.Commit != "" && !hasParam(params, "source-commit") {
		params = append(params, v1.Param{Name: "source-commit", Value: *v1.NewStructuredValues(srcInfo.Commit)})
	}
	var exec engine.Executor = local.New(st, runner, rootfs, work, local.WithParallel(o.parallel), local.WithKeep(o.keep), local.WithStepMemory(o.stepMemory))
	prog := newProgress(cmd.ErrOrStderr(), o.output == "json")
	if err := o.variation.Validate(); err != nil {
		return nil, nil, usageErr(fmt.Errorf("variation: %w", err))
	}
	b := &engine.Build{ID: id, Pipeline: resolved, Params: params, Source: src, Timeout: o.timeout, Observer: prog, RecordArtifacts: signer != nil, Variation: o.variation}
	started := time.Now()
	if o.output != "json" {
		prog.header(resolved, srcInfo, runner)
	}
	res, err := exec.Run(ctx, b)
	defer exec.Cleanup(context.WithoutCancel(ctx), b)
	if err != nil {
		var ie *engine.InputError
		if errors.As(err, &ie) {
			return nil, nil, usageErr(err)
		}
		return nil, nil, &exitError{code: exitBuildFailed, err: err}
	}
	rep := &runReport{Builder: o.builderName, BuilderID: o.builderID, Variation: effectiveVariation(o.variation), Succeeded: res.Succeeded, Reason: res.Reason, Pipeline: pipelineInfo{resolved.Pipeline.Name, resolved.Digest},
		Source: srcInfo, Runtime: string(rt), Rootless: runner.Rootless(), Tasks: res.Tasks, Results: res.Results, Seconds: res.Seconds, Artifacts: []artifact.Artifact{}}
	for _, d := range resolved.Definitions() {
		rep.Unpinned = append(rep.Unpinned, pipelines.UnpinnedImages(d)...)
	}
	if res.Succeeded {
		arts, err := artifact.Collect(ctx, res, st, !o.validator)
		if err != nil {
			rep.Succeeded, rep.Reason = false, err.Error()
		}
		rep.Artifacts = append(rep.Artifacts, arts...)
		if err == nil && signer != nil {
			in := &proof.Input{RunID: id, Pipeline: resolved, Params: params, Source: src, Result: res, Artifacts: arts,
				Internal: internalParameters(o, rt, runner), Started: started, Finished: time.Now()}
			if in.SourceTree, err = sourceTree(src.Dir); err == nil {
				rep.Proof, err = proof.Record(ctx, in, proof.Options{Signer: signer, BuilderID: o.builderID, Store: st})
			}
			if err != nil {
				rep.Succeeded, rep.Reason = false, "recording proof: "+err.Error()
			}
		}
	}
	if !rep.Succeeded {
		rep.ExitCode = exitBuildFailed
	}
	return rep, st, nil
}

// runBuild runs a build and reports it (text or JSON); exit code 3 when
// the build failed.
func runBuild(cmd *cobra.Command, o *runOptions) error {
	_, err := runAndReport(cmd, o)
	return err
}

// runAndReport builds, prints the report and maps a failed build to exit
// code 3; the report is returned for callers that compare results.
func runAndReport(cmd *cobra.Command, o *runOptions) (*runReport, error) {
	rep, st, err := build(cmd, o)
	if err != nil {
		return nil, err
	}
	if err := report(cmd, o.output, rep, st); err != nil {
		return nil, err
	}
	if !rep.Succeeded {
		return nil, &exitError{code: exitBuildFailed, err: errSilent}
	}
	return rep, nil
}

func report(cmd *cobra.Command, format string, rep *runReport, st store.Store) error {
	w := cmd.OutOrStdout()
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if !rep.Succeeded {
		fmt.Fprintf(cmd.ErrOrStderr(), "\nbuild failed: %s\n", rep.Reason)
		return nil
	}
	fmt.Fprintf(w, "\nbuild succeeded in %.1fs; artifacts in %s:\n", rep.Seconds, st)
	for _, a := range rep.Artifacts {
		fmt.Fprintf(w, "  %-8s %s  %s\n", a.Kind, a.Digest, a.Name)
	}
	for _, u := range rep.Unpinned {
		fmt.Fprintf(w, "warning: ran unpinned image %s (--allow-unpinned)\n", u)
	}
	return nil
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fetchSource gives the build its source: a directory as is, or a git
// repository fetched at the exact commit.
func fetchSource(ctx context.Context, o *runOptions, work, id string) (engine.Source, sourceInfo, func(), error) {
	if o.source == "" {
		return engine.Source{DateEpoch: o.epoch}, sourceInfo{SourceDateEpoch: o.epoch}, func() {}, nil
	}
	st, err := os.Stat(o.source)
	isDir := err == nil && st.IsDir()
	if isDir && o.revision == "" {
		abs, _ := filepath.Abs(o.source)
		return engine.Source{Dir: abs, DateEpoch: o.epoch}, sourceInfo{Dir: true, SourceDateEpoch: o.epoch}, func() {}, nil
	}
	if !isDir && !strings.Contains(o.source, "://") && !strings.Contains(o.source, "@") {
		return engine.Source{}, sourceInfo{}, nil, fmt.Errorf("--source %q is neither a directory nor a git URL\n  fix: give an existing directory, or a git URL with --revision", o.source)
	}
	uri := o.source
	if isDir {
		abs, _ := filepath.Abs(o.source)
		uri = "file://" + abs
	}
	dir := filepath.Join(work, id+"-src")
	co, err := source.Fetch(ctx, uri, o.revision, dir)
	cleanup := func() { os.RemoveAll(dir) }
	if err != nil {
		cleanup()
		return engine.Source{}, sourceInfo{}, nil, err
	}
	return engine.Source{Dir: co.Dir, URI: co.URI, Ref: co.Ref, Commit: co.Commit, DateEpoch: co.DateEpoch},
		sourceInfo{URI: co.URI, Ref: co.Ref, Commit: co.Commit, SourceDateEpoch: co.DateEpoch}, cleanup, nil
}

// parseParams turns NAME=VALUE flags into params typed by the pipeline's
// declarations: arrays from JSON or comma lists, objects from JSON.
func parseParams(flags []string, spec *v1.PipelineSpec) (v1.Params, error) {
	var out v1.Params
	for _, f := range flags {
		name, val, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE", f)
		}
		ps, _ := findParamSpec(spec, name)
		var pv v1.ParamValue
		switch {
		case ps.Type == v1.ParamTypeArray && !strings.HasPrefix(val, "["):
			pv = *v1.NewStructuredValues(strings.Split(val, ",")[0], strings.Split(val, ",")[1:]...)
		case ps.Type == v1.ParamTypeArray || ps.Type == v1.ParamTypeObject:
			if err := json.Unmarshal([]byte(val), &pv); err != nil {
				return nil, fmt.Errorf("--param %s: not valid JSON for a param of type %s: %v", name, ps.Type, err)
			}
		default:
			pv = *v1.NewStructuredValues(val)
		}
		out = append(out, v1.Param{Name: name, Value: pv})
	}
	return out, nil
}

// checkImageParam checks, before anything runs, the image param of a
// catalog pipeline: the name its image is announced (IMAGE_URL) and stored
// under. artifact.Collect checks every announced name again afterwards.
func checkImageParam(r *pipelines.Resolved, params v1.Params) error {
	if !strings.HasPrefix(r.Pipeline.File, "pipelines/catalog/") {
		return nil
	}
	for _, p := range params {
		if p.Name != "image" || p.Value.Type != v1.ParamTypeString {
			continue
		}
		if err := artifact.CheckImageName(p.Value.StringVal); err != nil {
			return fmt.Errorf("-p image=%s: %w\n  fix: name the image REGISTRY/REPOSITORY[:TAG] (lower case, no digest; tags sha256-* and *.sig, *.att, *.links, *.released, *.sbom are reserved for evidence)", p.Value.StringVal, err)
		}
	}
	return nil
}

func findParamSpec(spec *v1.PipelineSpec, name string) (v1.ParamSpec, bool) {
	for _, p := range spec.Params {
		if p.Name == name {
			return p, true
		}
	}
	return v1.ParamSpec{}, false
}

func hasParam(ps v1.Params, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func declaresWorkspace(spec *v1.PipelineSpec, name string) bool {
	for _, w := range spec.Workspaces {
		if w.Name == name {
			return true
		}
	}
	return false
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
func internalParameters(o *runOptions, rt sandbox.Runtime, runner *sandbox.Runner) map[string]any {
	v := effectiveVariation(o.variation)
	m := map[string]any{"runtime": string(rt), "rootless": runner.Rootless(), "variation": map[string]any{
		"workspaceRoot": v.WorkspaceRoot, "hostname": v.Hostname, "uid": v.UID, "gid": v.GID, "umask": v.Umask,
		"timezone": v.Timezone, "cpus": v.CPUs, "envOrder": v.EnvOrder, "runtime": string(rt),
	}}
	if o.builderName != "" {
		m["builder"] = o.builderName
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
