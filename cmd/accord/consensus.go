package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/evidence"
)

// buildersConcurrently says whether n builders run at once: when every one
// of them can have two CPUs; otherwise one after another (they would only
// slow each other down). A variable for tests.
var buildersConcurrently = func(n int) bool { return runtime.NumCPU() >= 2*n }

// forBuilder returns run options for builder b of set s.
func (o *runOptions) forBuilder(b builders.Builder) *runOptions {
	c := *o
	c.builderName, c.builderID, c.key, c.engine.runtime, c.variation = b.Name, b.ID, b.Key, b.Runtime, b.Variation
	c.params = append([]string(nil), o.params...)
	return &c
}

// runConsensus runs the primary and N-1 validators on the same request and
// compares their artifacts.
func runConsensus(cmd *cobra.Command, o *runOptions) error {
	if cmd.Flags().Changed("key") || cmd.Flags().Changed("builder-id") || cmd.Flags().Changed("runtime") {
		return usageErr(fmt.Errorf("--builders takes each builder's key, identity and runtime from %s\n  fix: drop --key, --builder-id and --runtime, or edit the builders file", o.buildersFile))
	}
	set, err := builders.Load(o.buildersFile)
	if err != nil {
		return usageErr(err)
	}
	n := o.builders
	if n < 1 || n > len(set.Builders) {
		return usageErr(fmt.Errorf("--builders %d: %s declares %d builder(s)\n  fix: use --builders 1 to %d, or add validators to the file", n, o.buildersFile, len(set.Builders), len(set.Builders)))
	}
	k := o.threshold
	if k == 0 {
		k = n
	}
	if k < 1 || k > n {
		return usageErr(fmt.Errorf("--threshold %d: want 1 to --builders (%d)", k, n))
	}
	ctx := cmd.Context()
	signers, err := checkBuilderKeys(ctx, set, n, true)
	if err != nil {
		return usageErr(err)
	}
	req, err := o.request(ctx)
	if err != nil {
		return err
	}
	svc, _, err := o.buildService()
	if err != nil {
		return err
	}
	svc.Trust = &build.LazyTrust{Load: func() build.Trust {
		return evidence.LoadTrust(ctx, evidence.Sources{BuildersFile: o.buildersFile, BuildersGiven: true}, cmd.ErrOrStderr())
	}}
	text, concurrent := !o.out.json(), buildersConcurrently(n)
	bs := make([]build.Builder, n)
	for i, b := range set.Builders[:n] {
		bo := o.forBuilder(b)
		bo.validator = i > 0
		if bs[i], err = bo.builder(ctx, signers[i]); err != nil {
			return err
		}
		// Concurrent builders print no progress lines (they would
		// interleave), but their steps' output still streams.
		bs[i].Progress = newProgress(cmd.ErrOrStderr(), !text || concurrent)
	}
	vote := build.Vote{Threshold: k, Concurrent: concurrent, Differences: func(b build.Builder) []string {
		fb, _ := set.Get(b.Name)
		return set.Differences(fb)
	}}
	if text {
		vote.Announce = func(b build.Builder) {
			fmt.Fprintf(cmd.ErrOrStderr(), "\n== builder %s (%s, runtime %s) ==\n", b.Name, b.ID, b.Runtime)
		}
	}
	cr, err := svc.Run(ctx, req, bs, vote)
	if err != nil {
		return buildErr(err)
	}
	return finishConsensus(cmd, o, cr)
}

// checkBuilderKeys loads the signing keys of the first n builders of set and
// refuses two that are one key (see [builders.Set.CheckKeys]). Unless kms
// is true, KMS keys are left out (their signers are nil).
func checkBuilderKeys(ctx context.Context, set *builders.Set, n int, kms bool) ([]*attest.Signer, error) {
	pubs := make([][]byte, n)
	signers := make([]*attest.Signer, n)
	for i, b := range set.Builders[:n] {
		if attest.IsKMS(b.Key) && !kms {
			continue
		}
		s, err := loadSigner(ctx, b.Key)
		if err != nil {
			return nil, fmt.Errorf("builder %s: %w", b.Name, err)
		}
		pubs[i], signers[i] = s.PublicKeyPEM(), s
	}
	return signers, set.CheckKeys(pubs)
}

func finishConsensus(cmd *cobra.Command, o *runOptions, cr *build.ConsensusReport) error {
	if o.out.json() {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(cr); err != nil {
			return err
		}
	} else {
		writeConsensus(cmd.OutOrStdout(), cr)
	}
	if cr.ExitCode != 0 {
		return &exitError{code: cr.ExitCode, err: errSilent}
	}
	return nil
}

func writeConsensus(w io.Writer, cr *build.ConsensusReport) {
	fmt.Fprintln(w)
	for _, b := range cr.Builders {
		fmt.Fprintf(w, "builder %-14s %s", b.Builder, b.BuilderID)
		if d, ok := cr.Variations[b.Builder]; ok {
			fmt.Fprintf(w, "  (differs in %s)", strings.Join(d, ", "))
		}
		fmt.Fprintln(w)
	}
	failed := make([]string, 0, len(cr.Failed))
	for name := range cr.Failed {
		failed = append(failed, name)
	}
	sort.Strings(failed)
	for _, name := range failed {
		fmt.Fprintf(w, "builder %s failed: %s\n", name, cr.Failed[name])
	}
	for _, a := range cr.Artifacts {
		fmt.Fprintf(w, "artifact %s\n", a.Name)
		ks := make([]string, 0, len(a.Digests))
		for k := range a.Digests {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			fmt.Fprintf(w, "  %-14s %s\n", k, a.Digests[k])
		}
		if ref := primaryReference(cr, a.Name); ref != "" {
			fmt.Fprintf(w, "  %-14s %s\n", "at", ref)
		}
	}
	if cr.Consensus {
		fmt.Fprintf(w, "consensus: %d of %d builders (threshold %d) produced bit-identical artifacts: %s; released\n", len(cr.Agreeing), len(cr.Builders), cr.Threshold, strings.Join(cr.Agreeing, ", "))
		return
	}
	fmt.Fprintf(w, "NO CONSENSUS: %s; nothing released\n", cr.Reason)
	for _, r := range cr.Divergence {
		fmt.Fprintln(w, "\ndivergence report:")
		r.WriteText(w)
	}
}

// primaryReference is where the registry store serves the primary's
// artifact name ("" for a layout store).
func primaryReference(cr *build.ConsensusReport, name string) string {
	if len(cr.Builders) == 0 {
		return ""
	}
	for _, a := range cr.Builders[0].Artifacts {
		if a.Name == name {
			return a.Reference
		}
	}
	return ""
}
