package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/verify"
)

func newVerifyCmd() *cobra.Command {
	var policyFile string
	var so storeOptions
	var out outputOptions
	var vsa vsaOptions
	cmd := &cobra.Command{
		Use:   "verify ARTIFACT --policy FILE",
		Short: "Verify an artifact's signatures, provenance, builders' agreement, SBOM and in-toto layout",
		Long: `Verify ARTIFACT (a stored name, or NAME@sha256:<digest>) against a policy:

  apiVersion: accord.dev/v1alpha1
  kind: Policy
  builders:                     # trusted builders: identity + public key
    - id: https://accord.dev/builders/local
      key: builder.pub          # paths are relative to the policy file
  threshold: 1                  # k distinct trusted builders must agree
  sources:                      # optional: allowed repositories and refs
    - uri: https://example.com/org/app.git
      refs: [main, "refs/tags/v*"]  # globs over full refs; a bare name is a branch
  pipelines: [sha256:...]       # optional: allowed pipeline digests, as 'accord catalog' prints them
  sbom: required                # or optional
  layout:                       # optional: in-toto layout and its owner key
    file: root.layout
    ownerKey: owner.pub

A pipeline digest is the one provenance records
(buildDefinition.externalParameters.pipeline.digest): it covers the pipeline
and every Task it runs, their steps, labels and annotations. 'accord catalog'
prints it for each catalog pipeline; 'accord run -o json' prints it for the
pipeline it ran (pipeline.digest), a --pipeline FILE included. A policy
written by 'accord builders init' pins the catalog's.

Checks, each reported by name: artifact-bytes, provenance-signature,
provenance-subject, source-allowed, pipeline-allowed, builders-threshold,
sbom-signature, sbom-subject, in-toto-layout. The artifact's digest is
computed from its bytes in the store, never read from the evidence, and
every blob of its manifest (config, layers) must match its digest and size.
The in-toto layout is checked against the links bundle that the trusted
provenance about the artifact names by digest, of the pipeline the layout
was generated for; the artifact must be among the links' final products.
Evidence that is unreadable, malformed, untrusted or not bound to the
artifact is skipped and reported as a note (NOTE lines, "notes" in JSON).

With --vsa-key KEY --verifier-id URI, a verified artifact also gets a
signed SLSA verification summary (https://slsa.dev/verification_summary/v1),
stored beside it with its attestations: the verifier, the policy file by
SHA-256, every provenance, SBOM and links bundle the verdict used by digest,
verifiedLevels SLSA_BUILD_LEVEL_2 and the agreement (threshold, builders,
source commit, pipeline digest) under https://accord.dev/vsa/agreement/v1.
timeVerified is SOURCE_DATE_EPOCH when set, else the clock. A failed
verification signs nothing.

Exit codes: 0 verified, 1 not verified, 2 bad usage or input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if policyFile == "" {
				return usageErr(fmt.Errorf("--policy is required"))
			}
			pol, err := verify.LoadPolicy(policyFile)
			if err != nil {
				return usageErr(err)
			}
			st, err := so.open()
			if err != nil {
				return err
			}
			ev, err := evidence.ReadFor(cmd.Context(), st, args[0], pol)
			if err != nil {
				return usageErr(err)
			}
			res, err := verify.Artifact(*ev, *pol)
			if err != nil {
				return usageErr(err)
			}
			summary, err := vsa.sign(cmd.Context(), st, args[0], ev, res, pol)
			if err != nil {
				return err
			}
			if out.json() {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(verifyJSON(res, summary)); err != nil {
					return err
				}
			} else {
				for _, c := range res.Checks {
					mark := "PASS"
					if !c.OK {
						mark = "FAIL"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s %-22s %s\n", mark, c.Name, c.Reason)
				}
				for _, n := range res.Notes {
					fmt.Fprintf(cmd.OutOrStdout(), "NOTE %s\n", n)
				}
				if res.Verified {
					fmt.Fprintf(cmd.OutOrStdout(), "verified: %s (sha256:%s)\n", args[0], ev.ArtifactSHA256)
				}
				if summary != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "verification summary: %s (%s)\n", summary.Ref, summary.Digest)
				}
			}
			if !res.Verified {
				return &exitError{code: exitNotVerified, err: &verify.Error{Result: res}}
			}
			return nil
		},
	}
	so.AddFlags(cmd, "store holding ARTIFACT and its evidence")
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file (YAML, see above)")
	out.AddFlags(cmd)
	vsa.addFlags(cmd)
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if err := out.check(); err != nil {
			return err
		}
		return vsa.validate()
	}
	return cmd
}
