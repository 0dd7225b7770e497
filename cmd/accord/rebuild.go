package main

import (
	"encoding/json"
	"fmt"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/divergence"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/hashtree"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
)

func newRebuildCmd() *cobra.Command {
	o := &runOptions{}
	var builder, from, sourceDir, policyFile string
	cmd := &cobra.Command{
		Use:   "rebuild ARTIFACT --builder NAME [--key FILE]",
		Short: "Rebuild an artifact from its stored provenance alone, as an independent validator",
		Long: `Re-execute the build that produced ARTIFACT from what its SLSA provenance
records, nothing else: the source (repository URI and exact commit), the
pipeline (found in this builder's catalog by name and checked against the
recorded digest) and the params. The rebuild is signed with this builder's
own key and identity and stored beside the artifact, so 'accord verify' can
count it toward the policy's threshold. The rebuilt digests are compared with
the recorded ones: exit 0 when they agree, 1 when they do not, 3 when the
build failed.

The validator's environment is NAME's profile in the builders file
(--builders-file; its key too, unless --key is given); a NAME the file
does not have builds with the default validator profile: crun when
installed, workspaces under /build/validator-1, another hostname, umask,
timezone, one CPU, reversed environment (and uid/gid when run as root).
When the digests disagree, a signed divergence report (predicate type
https://accord.dev/attestations/divergence/v1) is stored beside both
artifacts and printed.

A provenance of a directory build records the tree's hash, not a location:
give the tree with --source, and accord checks its hash first.

Only provenance whose signature verifies is used: with the key of the
builder --from names (default: any trusted builder), found in the builders
file (NAME.pub beside NAME.key, or the KMS key) or in the verify policy
--policy names. Stored provenance with another signature is skipped, with
a note. Every value taken from it is checked before use: the repository
(an https, ssh, git or file URL, user@host:path, or an absolute path;
nothing git could take for an option or a transport helper), the full
commit hash, the pipeline (a catalog name, or --pipeline), and the params
(declared by the pipeline, of their declared types).`,
		Example: `  accord rebuild app@sha256:... --builder validator-1 --builders-file builders/builders.yaml --from primary
  accord rebuild registry.example/app@sha256:... --store registry.example/accord --builder https://ci.example/validator --key validator.key --policy policy.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if builder == "" {
				return usageErr(fmt.Errorf("--builder is required: a rebuild is signed by the validator that ran it"))
			}
			if err := o.asValidator(cmd, builder); err != nil {
				return usageErr(err)
			}
			o.validator = true
			st, err := store.Open(o.storeRef)
			if err != nil {
				return usageErr(err)
			}
			ts := trustSources{buildersFile: o.buildersFile, buildersGiven: cmd.Flags().Changed("builders-file"), policy: policyFile}
			rec, sum, err := recordedBuild(cmd, st, args[0], from, ts)
			if err != nil {
				return usageErr(err)
			}
			if o.output != "json" {
				fmt.Fprintf(cmd.ErrOrStderr(), "rebuilding %s from the provenance of %s\n", args[0], sum.BuilderID)
			}
			if err := o.fromProvenance(cmd, sum, sourceDir); err != nil {
				return usageErr(err)
			}
			rep, _, err := build(cmd, o)
			if err != nil {
				return err
			}
			if o.output != "json" {
				if err := report(cmd, o.output, rep, st); err != nil {
					return err
				}
			}
			if !rep.Succeeded {
				if o.output == "json" {
					writeJSON(cmd.OutOrStdout(), map[string]any{"agree": false, "build": rep})
				}
				return &exitError{code: exitBuildFailed, err: errSilent}
			}
			return compareRebuild(cmd, o, st, rec, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&builder, "builder", "", "this validator's identity: a name (https://accord.dev/builders/NAME) or a URI")
	f.StringVar(&o.key, "key", "", "this validator's signing key (cosign key file or KMS URI); default: NAME's key in the builders file")
	f.StringVar(&o.buildersFile, "builders-file", defaultBuildersFile(), "builders file with NAME's identity, key, runtime and variation (used when it exists)")
	f.StringVar(&o.storeRef, "store", "", "store holding ARTIFACT and its provenance; the rebuild is recorded there")
	f.StringVar(&from, "from", "", "rebuild from the provenance of this builder (an id, or a name in the builders file); default: the first stored provenance of any trusted builder")
	f.StringVar(&policyFile, "policy", "", "a verify policy whose builders (ids and public keys) are trusted to sign the provenance rebuilt from")
	f.StringVar(&o.pipeline, "pipeline", "", "a pipeline file, for a provenance of a pipeline outside the catalog (its digest is checked)")
	f.StringVar(&sourceDir, "source", "", "the source tree, for a provenance of a directory build (its hash is checked)")
	f.StringVar(&o.runtime, "runtime", "", "OCI runtime: runc or crun (default: NAME's, else crun when installed)")
	f.StringVar(&o.workDir, "workdir", "", "where the run keeps its temporary state")
	f.DurationVar(&o.timeout, "timeout", time.Hour, "limit for the whole run")
	f.Int64Var(&o.stepMemory, "step-memory", 4<<30, "memory limit in bytes for steps that set none")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

// recorded is the build a rebuild reproduces: the artifact as stored and
// the digests its provenance names.
type recorded struct {
	name    string
	stored  ggcrv1.Hash
	builder string
	want    map[string]string
	// trusted are the builders whose provenance the rebuild believes.
	trusted []trustedBuilder
}

// recordedBuild reads the provenance stored for ARTIFACT that a trusted
// builder (the one from names, when given) signed: the artifacts it names
// (all subjects' digests) and what it says about the build. Provenance
// that does not verify is skipped with a note on stderr.
func recordedBuild(cmd *cobra.Command, st store.Store, arg, from string, ts trustSources) (*recorded, *attest.Summary, error) {
	ctx := cmd.Context()
	tb, notes, err := ts.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range notes {
		fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n)
	}
	if tb = only(tb, from); len(tb) == 0 {
		return nil, nil, errNoTrust("rebuild", from)
	}
	name, h, err := resolveArtifact(ctx, st, arg)
	if err != nil {
		return nil, nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	sha, err := artifactSHA256(img)
	if err != nil {
		return nil, nil, err
	}
	envs, err := attestations(ctx, st, name, h, attest.SLSAProvenanceV1, cmd.ErrOrStderr())
	if err != nil || len(envs) == 0 {
		return nil, nil, fmt.Errorf("no provenance stored for %s (%v)\n  fix: rebuild needs an artifact built with 'accord run --key'", arg, err)
	}
	vps, notes := trustedProvenance(envs, tb, sha)
	for _, n := range notes {
		fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n)
	}
	if len(vps) == 0 {
		return nil, nil, fmt.Errorf("no provenance of %s is signed by %s (%d stored, none verifies)\n  fix: check --from, and that --policy or --builders-file has the builder's public key", arg, idsOf(tb), len(envs))
	}
	sum, stmt := vps[0].sum, vps[0].stmt
	if sum.BuildType != attest.BuildType {
		return nil, nil, fmt.Errorf("provenance of %s has build type %q; accord rebuilds %s", arg, sum.BuildType, attest.BuildType)
	}
	want := map[string]string{}
	for _, s := range stmt.Subject {
		d := s.Digest["sha256"]
		if !sha256Hex.MatchString(d) {
			return nil, nil, fmt.Errorf("provenance of %s: subject %q has sha256 %q, not 64 hex digits", arg, s.Name, d)
		}
		want[s.Name] = "sha256:" + d
	}
	return &recorded{name: name, stored: h, builder: sum.BuilderID, want: want, trusted: tb}, sum, nil
}

// fromProvenance fills the run options from the recorded build.
func (o *runOptions) fromProvenance(cmd *cobra.Command, s *attest.Summary, sourceDir string) error {
	cat, err := pipelines.Builtin(cmd.Context())
	if err != nil {
		return err
	}
	want := s.Pipeline
	if o.pipeline != "" {
		want = o.pipeline // a pipeline file; its digest is checked below
	} else if !catalogName.MatchString(want) {
		return badField("externalParameters.pipeline.name", fmt.Sprintf("%q is not a catalog pipeline name", want), "give the pipeline file with --pipeline FILE (its digest is checked)")
	}
	r, err := cat.Resolve(cmd.Context(), want)
	if err != nil {
		return fmt.Errorf("pipeline %q of the provenance: %w", want, err)
	}
	if r.Digest != s.PipelineDigest {
		return fmt.Errorf("this builder's catalog has pipeline %s at %s, the provenance records %s\n  fix: rebuild with the catalog the artifact was built from", s.Pipeline, r.Digest, s.PipelineDigest)
	}
	if err := checkRecorded(s, &r.Pipeline.Pipeline.Spec); err != nil {
		return err
	}
	o.pipeline = want
	switch {
	case s.SourceCommit == "" && s.SourceTree == "" && s.SourceURI == "":
		// The build took no source.
		o.source, o.epoch = "", s.SourceDateEpoch
		return o.paramsFrom(s)
	case s.SourceCommit != "": // both checked by checkRecorded
		o.source, o.revision = s.SourceURI, s.SourceCommit
	case sourceDir != "":
		h, err := hashtree.Tree(sourceDir, hashtree.Options{Skip: func(rel string) bool { return rel == ".git" || strings.HasSuffix(rel, "/.git") }})
		if err != nil {
			return err
		}
		if got := h.DirHash1(); got != s.SourceTree {
			return fmt.Errorf("--source %s has tree hash %s, the provenance records %s: not the same source", sourceDir, got, s.SourceTree)
		}
		o.source, o.epoch = sourceDir, s.SourceDateEpoch
	default:
		return fmt.Errorf("the provenance records a directory build (tree %s)\n  fix: give that tree with --source DIR", s.SourceTree)
	}
	o.sourceGiven = true
	return o.paramsFrom(s)
}

// paramsFrom sets the recorded params (the source ones are filled from the
// fetched source).
func (o *runOptions) paramsFrom(s *attest.Summary) error {
	names := make([]string, 0, len(s.Params))
	for k := range s.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "source-url" || k == "source-commit" {
			continue // filled from the fetched source
		}
		v := s.Params[k]
		if str, ok := v.(string); ok {
			o.params = append(o.params, k+"="+str)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		o.params = append(o.params, k+"="+string(b))
	}
	return nil
}

// compareRebuild checks that every recorded artifact came out with the
// same digest; when one did not, it explains why.
func compareRebuild(cmd *cobra.Command, o *runOptions, st store.Store, rec *recorded, rep *runReport) error {
	got := map[string]artifactRef{}
	for _, a := range rep.Artifacts {
		got[a.Name] = artifactRef{Name: a.Name, Digest: a.Digest, Stored: a.Stored}
	}
	var diffs []string
	var reports []*divergence.Report
	names := make([]string, 0, len(rec.want))
	for name := range rec.want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d := rec.want[name]
		b, ok := got[name]
		if b.Digest == d {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s: recorded %s, rebuilt %s", name, d, orNone(b.Digest)))
		if !ok || name != rec.name && len(rec.want) > 1 {
			continue
		}
		signer, err := loadSigner(cmd.Context(), o.key)
		if err != nil {
			signer = nil // it signed the build a moment ago; report unsigned rather than nothing
		}
		roots := []string{o.variation.WithDefaults().WorkspaceRoot}
		reports = append(reports, explain(cmd.Context(), st, sideOf(name, rec.stored.String(), d, rec.builder), sideOf(name, b.Stored, b.Digest, o.builderID), signer, o.builderID, roots, rebuildTrust(cmd, rec, signer, o.builderID)))
	}
	json := o.output == "json"
	if len(diffs) > 0 {
		if json {
			writeJSON(cmd.OutOrStdout(), map[string]any{"agree": false, "differences": diffs, "divergence": reports, "build": rep})
		} else {
			for _, r := range reports {
				fmt.Fprintln(cmd.OutOrStdout(), "\ndivergence report:")
				r.WriteText(cmd.OutOrStdout())
			}
		}
		return &exitError{code: exitNotVerified, err: fmt.Errorf("no agreement with the recorded build:\n  %s", strings.Join(diffs, "\n  "))}
	}
	if json {
		writeJSON(cmd.OutOrStdout(), map[string]any{"agree": true, "build": rep})
	} else {
		fmt.Fprintf(cmd.OutOrStdout(), "rebuild agrees: %d artifact(s) bit-identical to the recorded build\n", len(rec.want))
	}
	return nil
}

// rebuildTrust is whom a rebuild's divergence report believes: the
// builders it trusted to rebuild from, and this validator's own key.
func rebuildTrust(cmd *cobra.Command, rec *recorded, signer *attest.Signer, id string) *trust {
	tr := &trust{builders: rec.trusted, notes: cmd.ErrOrStderr()}
	if signer != nil {
		if v, err := attest.LoadVerifier(signer.PublicKeyPEM()); err == nil {
			tr.builders = append(append([]trustedBuilder(nil), rec.trusted...), trustedBuilder{id: id, origin: "this validator's key", v: v})
		}
	}
	return tr
}

// asValidator sets this rebuild's identity, key, runtime and variation:
// NAME's entry in the builders file, else the default validator profile.
func (o *runOptions) asValidator(cmd *cobra.Command, name string) error {
	fileGiven := cmd.Flags().Changed("builders-file")
	if _, err := os.Stat(o.buildersFile); err == nil || fileGiven {
		set, err := builders.Load(o.buildersFile)
		if err != nil {
			return err
		}
		if b, ok := set.Get(name); ok {
			key, rt := o.key, o.runtime
			*o = *o.forBuilder(b)
			if key != "" {
				o.key = key
			}
			if rt != "" {
				o.runtime = rt
			}
			return nil
		}
		if fileGiven {
			return fmt.Errorf("--builder %q is not in %s\n  fix: use one of its builders' names, or leave out --builders-file", name, o.buildersFile)
		}
	}
	if o.key == "" {
		return fmt.Errorf("--key is required for a builder that is not in a builders file")
	}
	o.builderID = name
	if !strings.Contains(name, "://") {
		o.builderID = "https://accord.dev/builders/" + name
	}
	if o.runtime == "" {
		o.runtime = "runc"
		if _, err := exec.LookPath("crun"); err == nil {
			o.runtime = "crun"
		}
	}
	o.variation = builders.Validator(1, o.runtime, os.Geteuid() == 0).Variation
	return nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
