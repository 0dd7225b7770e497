package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
)

// runOptions are the flags of 'accord run'.
type runOptions struct {
	source        string
	revision      string
	epoch         int64
	pipeline      string
	params        []string
	allowUnpinned bool
	key           string
	builderID     string
	sourceGiven   bool
	store         storeOptions
	out           outputOptions
	engine        engineOptions
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
	o.store.AddFlags(cmd, "store for step images, artifacts and their evidence")
	o.engine.AddFlags(cmd, "runc", "OCI runtime: runc, crun or runsc (gVisor: a user-space kernel per step)")
	o.out.AddFlags(cmd)
	f.BoolVar(&o.allowUnpinned, "allow-unpinned", false, "run step images that are not pinned by digest (recorded in the output)")
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
fresh OCI container: the image pinned by digest under a writable layer of
its own, discarded when the step ends, workspaces bound read-write, /tmp a
tmpfs, no network unless the catalog marks the task as needing it, an
environment built from nothing (TZ=UTC, LANG=C.UTF-8, SOURCE_DATE_EPOCH,
the image's Env, HOME=/tekton/home unless the image sets it), the image's
WorkingDir and User (or the step's securityContext runAsUser/runAsGroup).

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
			if err := o.out.check(); err != nil {
				return err
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

// buildService is the build service for these options' store and work
// settings.
func (o *runOptions) buildService() (*build.Service, store.Store, error) {
	st, err := o.store.open()
	if err != nil {
		return nil, nil, err
	}
	e := o.engine
	if e.stepMemory == 0 {
		e.stepMemory = -1 // 0 on the command line is no limit; the service's zero value is its default
	}
	puller, err := e.pull.puller(os.Stderr, e.workDir)
	if err != nil {
		return nil, nil, err
	}
	return &build.Service{Store: st, WorkDir: e.workDir, Parallel: e.parallel, Keep: e.keep, StepMemory: e.stepMemory, Pull: puller}, st, nil
}

// request is the build request these options describe; params are typed
// by the pipeline's declarations.
func (o *runOptions) request(ctx context.Context) (build.Request, error) {
	r, err := build.Resolve(ctx, o.pipeline, o.allowUnpinned)
	if err != nil {
		return build.Request{}, buildErr(err)
	}
	params, err := build.ParseParams(o.params, &r.Pipeline.Pipeline.Spec)
	if err != nil {
		return build.Request{}, usageErr(err)
	}
	src := build.Source{Revision: o.revision, DateEpoch: o.epoch, Optional: !o.sourceGiven}
	if st, err := os.Stat(o.source); o.source != "" && err == nil && st.IsDir() {
		src.Dir = o.source
	} else {
		src.URI = o.source
	}
	return build.Request{Source: src, Pipeline: o.pipeline, Params: params, Timeout: o.engine.timeout, AllowUnpinned: o.allowUnpinned}, nil
}

// builder is the one builder these options describe; signer is its key,
// loaded already (nil: loaded from --key here, if given).
func (o *runOptions) builder(ctx context.Context, signer *attest.Signer) (build.Builder, error) {
	if signer == nil && o.key != "" {
		var err error
		if signer, err = loadSigner(ctx, o.key); err != nil {
			return build.Builder{}, usageErr(err)
		}
	}
	return build.Builder{Name: o.builderName, ID: o.builderID, Signer: signer, Runtime: o.engine.runtime, Variation: o.variation, Validator: o.validator}, nil
}

// buildErr maps the build service's errors to exit codes: 2 bad input, 3
// a build that could not run.
func buildErr(err error) error {
	var ie *build.InputError
	var re *build.RunError
	switch {
	case errors.As(err, &ie):
		return usageErr(err)
	case errors.As(err, &re):
		return &exitError{code: exitBuildFailed, err: err}
	}
	return err
}

// runBuild runs a build and reports it (text or JSON); exit code 3 when
// the build failed.
func runBuild(cmd *cobra.Command, o *runOptions) error {
	_, err := runAndReport(cmd, o)
	return err
}

// runAndReport builds, prints the report and maps a failed build to exit
// code 3; the report is returned for callers that compare results.
func runAndReport(cmd *cobra.Command, o *runOptions) (*build.Report, error) {
	rep, st, err := buildOnce(cmd, o)
	if err != nil {
		return nil, err
	}
	if err := report(cmd, o.out.format, rep, st); err != nil {
		return nil, err
	}
	if !rep.Succeeded {
		return nil, &exitError{code: exitBuildFailed, err: errSilent}
	}
	return rep, nil
}

// buildOnce builds the request of o with its one builder.
func buildOnce(cmd *cobra.Command, o *runOptions) (*build.Report, store.Store, error) {
	ctx := cmd.Context()
	req, err := o.request(ctx)
	if err != nil {
		return nil, nil, err
	}
	svc, st, err := o.buildService()
	if err != nil {
		return nil, nil, err
	}
	b, err := o.builder(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	b.Progress = newProgress(cmd.ErrOrStderr(), o.out.json())
	rep, err := svc.Build(ctx, req, b)
	if err != nil {
		return nil, nil, buildErr(err)
	}
	return rep, st, nil
}

func report(cmd *cobra.Command, format string, rep *build.Report, st store.Store) error {
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
		if a.Reference != "" {
			fmt.Fprintf(w, "  %-8s at %s\n", "", a.Reference)
		}
	}
	for _, u := range rep.Unpinned {
		fmt.Fprintf(w, "warning: ran unpinned image %s (--allow-unpinned)\n", u)
	}
	return nil
}
