package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
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
	var builder, from, sourceDir string
	cmd := &cobra.Command{
		Use:   "rebuild ARTIFACT --builder NAME --key FILE",
		Short: "Rebuild an artifact from its stored provenance alone, as an independent validator",
		Long: `Re-execute the build that produced ARTIFACT from what its SLSA provenance
records, nothing else: the source (repository URI and exact commit), the
pipeline (found in this builder's catalog by name and checked against the
recorded digest) and the params. The rebuild is signed with this builder's
own key and identity and stored beside the artifact, so 'accord verify' can
count it toward the policy's threshold. The rebuilt digests are compared with
the recorded ones: exit 0 when they agree, 1 when they do not, 3 when the
build failed.

A provenance of a directory build records the tree's hash, not a location:
give the tree with --source, and accord checks its hash first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if builder == "" || o.key == "" {
				return usageErr(fmt.Errorf("--builder and --key are required: a rebuild is signed by the validator that ran it"))
			}
			o.builderID = builder
			if !strings.Contains(builder, "://") {
				o.builderID = "https://accord.dev/builders/" + builder
			}
			st, err := store.Open(o.storeRef)
			if err != nil {
				return usageErr(err)
			}
			want, sum, err := recordedBuild(cmd, st, args[0], from)
			if err != nil {
				return usageErr(err)
			}
			if err := o.fromProvenance(cmd, sum, sourceDir); err != nil {
				return usageErr(err)
			}
			rep, err := runAndReport(cmd, o)
			if err != nil {
				return err
			}
			return compareRebuild(cmd, want, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&builder, "builder", "", "this validator's identity: a name (https://accord.dev/builders/NAME) or a URI")
	f.StringVar(&o.key, "key", "", "this validator's signing key (cosign key file or KMS URI)")
	f.StringVar(&o.storeRef, "store", "", "store holding ARTIFACT and its provenance; the rebuild is recorded there")
	f.StringVar(&from, "from", "", "use the provenance of this builder id (default: the first one stored)")
	f.StringVar(&sourceDir, "source", "", "the source tree, for a provenance of a directory build (its hash is checked)")
	f.StringVar(&o.runtime, "runtime", "runc", "OCI runtime: runc or crun")
	f.StringVar(&o.workDir, "workdir", "", "where the run keeps its temporary state")
	f.DurationVar(&o.timeout, "timeout", time.Hour, "limit for the whole run")
	f.Int64Var(&o.stepMemory, "step-memory", 4<<30, "memory limit in bytes for steps that set none")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

// recordedBuild reads the provenance stored for ARTIFACT: the artifacts it
// names (all subjects' digests) and what it says about the build.
func recordedBuild(cmd *cobra.Command, st store.Store, arg, from string) (map[string]string, *attest.Summary, error) {
	name, h, err := resolveArtifact(cmd.Context(), st, arg)
	if err != nil {
		return nil, nil, err
	}
	envs, err := attestations(cmd.Context(), st, name, h, attest.SLSAProvenanceV1)
	if err != nil || len(envs) == 0 {
		return nil, nil, fmt.Errorf("no provenance stored for %s (%v)\n  fix: rebuild needs an artifact built with 'accord run --key'", arg, err)
	}
	for _, raw := range envs {
		env, err := attest.ParseEnvelope(raw)
		if err != nil {
			continue
		}
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		stmt, err := attest.ParseStatement(payload)
		if err != nil {
			continue
		}
		sum, err := attest.ParseProvenance(stmt.Predicate)
		if err != nil || (from != "" && sum.BuilderID != from) {
			continue
		}
		if sum.BuildType != attest.BuildType {
			return nil, nil, fmt.Errorf("provenance of %s has build type %q; accord rebuilds %s", arg, sum.BuildType, attest.BuildType)
		}
		want := map[string]string{}
		for _, s := range stmt.Subject {
			want[s.Name] = "sha256:" + s.Digest["sha256"]
		}
		return want, sum, nil
	}
	return nil, nil, fmt.Errorf("no readable provenance for %s from builder %q", arg, from)
}

// fromProvenance fills the run options from the recorded build.
func (o *runOptions) fromProvenance(cmd *cobra.Command, s *attest.Summary, sourceDir string) error {
	cat, err := pipelines.Builtin(cmd.Context())
	if err != nil {
		return err
	}
	r, err := cat.Resolve(cmd.Context(), s.Pipeline)
	if err != nil {
		return fmt.Errorf("pipeline %q of the provenance: %w", s.Pipeline, err)
	}
	if r.Digest != s.PipelineDigest {
		return fmt.Errorf("this builder's catalog has pipeline %s at %s, the provenance records %s\n  fix: rebuild with the catalog the artifact was built from", s.Pipeline, r.Digest, s.PipelineDigest)
	}
	o.pipeline = s.Pipeline
	switch {
	case s.SourceCommit != "":
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
// same digest.
func compareRebuild(cmd *cobra.Command, want map[string]string, rep *runReport) error {
	got := map[string]string{}
	for _, a := range rep.Artifacts {
		got[a.Name] = a.Digest
	}
	var diffs []string
	for name, d := range want {
		if got[name] != d {
			diffs = append(diffs, fmt.Sprintf("%s: recorded %s, rebuilt %s", name, d, orNone(got[name])))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		return &exitError{code: exitNotVerified, err: fmt.Errorf("no agreement with the recorded build:\n  %s", strings.Join(diffs, "\n  "))}
	}
	if o := cmd.Flags().Lookup("output"); o == nil || o.Value.String() != "json" {
		fmt.Fprintf(cmd.OutOrStdout(), "rebuild agrees: %d artifact(s) bit-identical to the recorded build\n", len(want))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
