package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/evidence"
)

func newDiffCmd() *cobra.Command {
	var key, signerID, policyFile, buildersFile string
	var st storeOptions
	var out outputOptions
	cmd := &cobra.Command{
		Use:   "diff ARTIFACT_A ARTIFACT_B",
		Short: "Explain why two builds of an artifact differ",
		Long: `Unpack both artifacts (OCI images layer by layer, tar, gzip and zip archives,
nested), list every path that differs, and classify each difference:

  timestamp    a date, time or Unix time in the content or an archive header
  build-path   the build's working path embedded in the output
  file-order   an archive lists the same members in another order
  ordering     the same lines in another order (map or hash iteration)
  mode-owner   permission bits, uid/gid or owner names
  toolchain    a compiler or tool version, or different build inputs
  content      anything else
  derived      digests and sizes that differ because what they name differs

Each difference comes with evidence: the differing bytes in context. The
builders' workspace roots, times and inputs are taken from the artifacts'
stored provenance, only where its signature verifies with the key of a
builder that --policy or --builders-file trusts; without either, no
provenance is used (a note says so). When diffoscope is installed (Debian:
diffoscope-minimal) its text diff is added.

An ARTIFACT is a stored name, NAME@sha256:<digest>, or a file. With --key,
the report is signed (predicate type ` + divergence.PredicateType + `)
and stored beside both artifacts.

Exit codes: 0 identical, 1 different, 2 bad input.`,
		Example: `  accord diff app@sha256:1111... app@sha256:2222...
  accord diff out-a.tar.gz out-b.tar.gz -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			req := build.DiffRequest{A: args[0], B: args[1], Store: st.open, SignerID: signerID, Notes: cmd.ErrOrStderr()}
			if cmd.Flags().Changed("builders-file") || policyFile != "" || fileExists(buildersFile) {
				req.Trust = evidence.LoadTrust(ctx, evidence.Sources{BuildersFile: buildersFile, BuildersGiven: cmd.Flags().Changed("builders-file"), Policy: policyFile}, cmd.ErrOrStderr())
			}
			if key != "" {
				req.Signer = func() (*attest.Signer, error) { return loadSigner(ctx, key) }
			}
			r, err := build.Diff(ctx, req)
			if err != nil {
				return buildErr(err)
			}
			if out.json() {
				writeJSON(cmd.OutOrStdout(), r)
			} else {
				r.WriteText(cmd.OutOrStdout())
			}
			if !r.Identical {
				return &exitError{code: exitNotVerified, err: errSilent}
			}
			return nil
		},
	}
	f := cmd.Flags()
	st.AddFlags(cmd, "store holding the artifacts")
	out.AddFlags(cmd)
	f.StringVar(&key, "key", "", "sign the report with this key and store it beside both artifacts")
	f.StringVar(&signerID, "builder-id", "https://accord.dev/builders/local", "who reports the divergence (with --key)")
	f.StringVar(&policyFile, "policy", "", "a verify policy: the provenance its builders signed gives the hints")
	f.StringVar(&buildersFile, "builders-file", defaultBuildersFile(), "a builders file: the provenance its builders signed (NAME.pub beside each key) gives the hints (used when it exists)")
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
