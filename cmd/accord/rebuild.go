package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/builders"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
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
			ctx := cmd.Context()
			svc, st, err := o.buildService()
			if err != nil {
				return err
			}
			b, err := o.builder(ctx, nil)
			if err != nil {
				return err
			}
			b.Progress = newProgress(cmd.ErrOrStderr(), o.out.json())
			ts := trustSources{buildersFile: o.buildersFile, buildersGiven: cmd.Flags().Changed("builders-file"), policy: policyFile}
			rr := build.RebuildRequest{Artifact: args[0], From: from, Pipeline: o.pipeline, SourceDir: sourceDir, Timeout: o.engine.timeout,
				Provenance: &trustedRecord{cmd: cmd, ts: ts, signer: b.Signer, id: b.ID}}
			rb, err := svc.Rebuild(ctx, rr, b)
			if err != nil {
				return buildErr(err)
			}
			return reportRebuild(cmd, o.out.format, st, rb)
		},
	}
	f := cmd.Flags()
	f.StringVar(&builder, "builder", "", "this validator's identity: a name (https://accord.dev/builders/NAME) or a URI")
	f.StringVar(&o.key, "key", "", "this validator's signing key (cosign key file or KMS URI); default: NAME's key in the builders file")
	f.StringVar(&o.buildersFile, "builders-file", defaultBuildersFile(), "builders file with NAME's identity, key, runtime and variation (used when it exists)")
	o.store.AddFlags(cmd, "store holding ARTIFACT and its provenance; the rebuild is recorded there")
	f.StringVar(&from, "from", "", "rebuild from the provenance of this builder (an id, or a name in the builders file); default: the first stored provenance of any trusted builder")
	f.StringVar(&policyFile, "policy", "", "a verify policy whose builders (ids and public keys) are trusted to sign the provenance rebuilt from")
	f.StringVar(&o.pipeline, "pipeline", "", "a pipeline file, for a provenance of a pipeline outside the catalog (its digest is checked)")
	f.StringVar(&sourceDir, "source", "", "the source tree, for a provenance of a directory build (its hash is checked)")
	o.engine.AddFlags(cmd, "", "OCI runtime: runc or crun (default: NAME's, else crun when installed)")
	o.out.AddFlags(cmd)
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
		if !sha256HexRE.MatchString(d) {
			return nil, nil, fmt.Errorf("provenance of %s: subject %q has sha256 %q, not 64 hex digits", arg, s.Name, d)
		}
		want[s.Name] = "sha256:" + d
	}
	return &recorded{name: name, stored: h, builder: sum.BuilderID, want: want, trusted: tb}, sum, nil
}

// trustedRecord reads a rebuild's recorded build from the provenance the
// trusted builders signed.
type trustedRecord struct {
	cmd    *cobra.Command
	ts     trustSources
	signer *attest.Signer
	id     string
}

func (p *trustedRecord) Recorded(ctx context.Context, st store.Store, arg, from string) (*build.Recorded, error) {
	rec, sum, err := recordedBuild(p.cmd, st, arg, from, p.ts)
	if err != nil {
		return nil, err
	}
	return &build.Recorded{Name: rec.name, Stored: rec.stored, Builder: rec.builder, Want: rec.want, Summary: sum,
		Trust: rebuildTrust(p.cmd, rec, p.signer, p.id)}, nil
}

// reportRebuild prints the rebuild and maps it to the exit code: 0 agree, 1
// not, 3 the rebuild failed.
func reportRebuild(cmd *cobra.Command, format string, st store.Store, rb *build.RebuildReport) error {
	rep, json, w := rb.Build, format == "json", cmd.OutOrStdout()
	if !json {
		if err := report(cmd, format, rep, st); err != nil {
			return err
		}
	}
	switch {
	case !rep.Succeeded:
		if json {
			writeJSON(w, map[string]any{"agree": false, "build": rep})
		}
		return &exitError{code: exitBuildFailed, err: errSilent}
	case !rb.Agree:
		if json {
			writeJSON(w, map[string]any{"agree": false, "differences": rb.Differences, "divergence": rb.Divergence, "build": rep})
		} else {
			for _, r := range rb.Divergence {
				fmt.Fprintln(w, "\ndivergence report:")
				r.WriteText(w)
			}
		}
		return &exitError{code: exitNotVerified, err: fmt.Errorf("no agreement with the recorded build:\n  %s", strings.Join(rb.Differences, "\n  "))}
	}
	if json {
		writeJSON(w, map[string]any{"agree": true, "build": rep})
	} else {
		fmt.Fprintf(w, "rebuild agrees: %d artifact(s) bit-identical to the recorded build\n", rb.Wanted)
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
			key, rt := o.key, o.engine.runtime
			*o = *o.forBuilder(b)
			if key != "" {
				o.key = key
			}
			if rt != "" {
				o.engine.runtime = rt
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
	if o.engine.runtime == "" {
		o.engine.runtime = "runc"
		if _, err := exec.LookPath("crun"); err == nil {
			o.engine.runtime = "crun"
		}
	}
	o.variation = builders.Validator(1, o.engine.runtime, os.Geteuid() == 0).Variation
	return nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

var sha256HexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
