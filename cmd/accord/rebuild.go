package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/evidence"

	"github.com/spf13/cobra"

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
			ts := evidence.Sources{BuildersFile: o.buildersFile, BuildersGiven: cmd.Flags().Changed("builders-file"), Policy: policyFile}
			rr := build.RebuildRequest{Artifact: args[0], From: from, Pipeline: o.pipeline, SourceDir: sourceDir, Timeout: o.engine.timeout,
				Provenance: &build.SignedProvenance{Sources: ts, Own: b.Signer, OwnID: b.ID, Notes: cmd.ErrOrStderr()}}
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
	o.engine.AddFlags(cmd, "", "OCI runtime: runc, crun or runsc (default: NAME's, else crun when installed)")
	o.out.AddFlags(cmd)
	return cmd
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
