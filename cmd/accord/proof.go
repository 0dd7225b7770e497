package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/export"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/pipelines"
)

func newSBOMCmd() *cobra.Command {
	var format, out string
	var so storeOptions
	var trust trustFlags
	cmd := &cobra.Command{
		Use:   "sbom ARTIFACT",
		Short: "Print or write the SPDX SBOM accord attested for an artifact",
		Long: `Read the SPDX 2.3 SBOM that 'accord run --key' attested for ARTIFACT (a stored
name, or NAME@sha256:<digest>) and write it as SPDX JSON (spdx-json) or
tag-value (spdx-tv). The SBOM is deterministic: created is SOURCE_DATE_EPOCH
and the namespace derives from the artifact's digest.

Only an SBOM attestation signed by a trusted key (--key BUILDER.pub, or the
builders of --policy FILE) and about the artifact's digest (computed from
its bytes in the store) is output; anything else stored beside it is
skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := export.Format(format)
			if f != export.SPDXJSON && f != export.SPDXTagValue {
				return usageErr(fmt.Errorf("--format %q: use spdx-json or spdx-tv", format))
			}
			pol, err := trust.load("accord sbom")
			if err != nil {
				return usageErr(err)
			}
			st, err := so.open()
			if err != nil {
				return usageErr(err)
			}
			doc, err := evidence.SBOM(cmd.Context(), st, args[0], pol, cmd.ErrOrStderr())
			if err != nil {
				return usageErr(err)
			}
			b, err := export.EncodeSBOM(doc, f)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	so.AddFlags(cmd, "store holding ARTIFACT and its evidence")
	cmd.Flags().StringVar(&format, "format", "spdx-json", "spdx-json or spdx-tv")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	trust.AddFlags(cmd)
	return cmd
}

func newLayoutCmd() *cobra.Command {
	var pipeline, key, out string
	var functionaries []string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "layout",
		Short: "Write the signed in-toto layout of a catalog pipeline",
		Long: `Generate the in-toto layout of a pipeline: one step per pipeline step, in
Tekton's DAG order; each step's materials must be the products of the step
before it that used the same workspace; a read-only workspace must come out
of a step unchanged (a step that rewrites source it may only read fails);
nothing else may appear. The builders' public keys (--functionary) may sign
links; the layout is signed with the catalog owner's key (--key). The layout
names the pipeline digest it is for (a signed readme line
"accord.dev/pipeline-digest: sha256:..."); accord verify checks it against
the pipeline the trusted provenance records, so regenerate the layout when
the pipeline changes.

Verify with the upstream tool:
  in-toto-golang verify -l root.layout -k owner.pub -d LINKDIR`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if key == "" || len(functionaries) == 0 {
				return usageErr(fmt.Errorf("--key (catalog owner) and at least one --functionary (builder public key) are required"))
			}
			cat, err := pipelines.Builtin(ctx)
			if err != nil {
				return err
			}
			r, err := cat.Resolve(ctx, pipeline)
			if err != nil {
				return usageErr(err)
			}
			owner, err := loadSigner(ctx, key)
			if err != nil {
				return usageErr(err)
			}
			var pems [][]byte
			for _, f := range functionaries {
				b, err := os.ReadFile(f)
				if err != nil {
					return usageErr(err)
				}
				pems = append(pems, b)
			}
			steps, err := proof.LayoutSteps(r, local.Commands{})
			if err != nil {
				return err
			}
			mb, err := attest.Layout(ctx, owner, steps, attest.LayoutOptions{
				Functionaries:  pems,
				Expires:        time.Now().Add(expires),
				Readme:         fmt.Sprintf("accord layout for pipeline %s %s", r.Pipeline.Name, r.Digest),
				PipelineDigest: r.Digest,
			})
			if err != nil {
				return err
			}
			if err := attest.WriteMetablock(mb, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "layout for %s (%d steps) written to %s\n", r.Pipeline.Name, len(steps), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&pipeline, "pipeline", "go-image", "catalog pipeline name or file")
	cmd.Flags().StringVar(&key, "key", "", "catalog owner's signing key (cosign key file or KMS URI)")
	cmd.Flags().StringArrayVar(&functionaries, "functionary", nil, "builder public key allowed to sign links (repeatable)")
	cmd.Flags().DurationVar(&expires, "expires", 365*24*time.Hour, "how long the layout stays valid")
	cmd.Flags().StringVar(&out, "out", "root.layout", "layout file to write")
	return cmd
}

func newExportCmd() *cobra.Command {
	var dir, pub, layoutFile string
	var so storeOptions
	var trust trustFlags
	cmd := &cobra.Command{
		Use:   "export ARTIFACT --dir DIR (--key PUB | --policy FILE)",
		Short: "Write a release bundle: artifact, provenance, SBOM, signatures, links, key, layout",
		Long: `Write a release bundle of ARTIFACT into DIR. Only evidence signed by a
trusted key (--key BUILDER.pub, or the builders of --policy FILE) goes in:
provenance and SBOM attestations about the artifact's digest, image
signatures naming it, and link bundles whose every link verifies. Anything
else stored beside it is skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageErr(fmt.Errorf("--dir is required"))
			}
			pol, err := trust.load("accord export")
			if err != nil {
				return usageErr(err)
			}
			st, err := so.open()
			if err != nil {
				return usageErr(err)
			}
			files, err := export.Bundle(cmd.Context(), st, args[0], export.Options{Dir: dir, Policy: pol, Pub: pub, Layout: layoutFile, Warn: cmd.ErrOrStderr()})
			if evidence.IsInput(err) {
				return usageErr(err)
			}
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, f))
			}
			return nil
		},
	}
	so.AddFlags(cmd, "store holding ARTIFACT and its evidence")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the bundle into (created)")
	cmd.Flags().StringVar(&pub, "pub", "", "builder public key to include")
	cmd.Flags().StringVar(&layoutFile, "layout", "", "signed in-toto layout to include (accord layout)")
	trust.AddFlags(cmd)
	return cmd
}
