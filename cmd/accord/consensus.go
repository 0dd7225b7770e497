package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/store"
)

// consensusReport is the JSON output of 'accord run --builders N'.
type consensusReport struct {
	Consensus  bool                 `json:"consensus"`
	Reason     string               `json:"reason,omitempty"`
	Threshold  int                  `json:"threshold"`
	Agreeing   []string             `json:"agreeing"`
	Artifacts  []artifactVotes      `json:"artifacts"`
	Builders   []*runReport         `json:"builders"`
	Divergence []*divergence.Report `json:"divergence,omitempty"`
	Released   []string             `json:"released,omitempty"`
	ExitCode   int                  `json:"exitCode"`
	Failed     map[string]string    `json:"failed,omitempty"`
	Variations map[string][]string  `json:"differsFromPrimary,omitempty"`
}

// artifactVotes is one artifact and the digest each builder produced.
type artifactVotes struct {
	Name    string            `json:"name"`
	Digests map[string]string `json:"digests"`
}

// buildersConcurrently says whether n builders run at once: when every one
// of them can have two CPUs; otherwise one after another (they would only
// slow each other down). A variable for tests.
var buildersConcurrently = func(n int) bool { return runtime.NumCPU() >= 2*n }

// forBuilder returns run options for builder b of set s.
func (o *runOptions) forBuilder(b builders.Builder) *runOptions {
	c := *o
	c.builderName, c.builderID, c.key, c.runtime, c.variation = b.Name, b.ID, b.Key, b.Runtime, b.Variation
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
	chosen := set.Builders[:n]
	if err := checkBuilderKeys(cmd.Context(), set, n, true); err != nil {
		return usageErr(err)
	}
	opts := make([]*runOptions, n)
	for i, b := range chosen {
		opts[i] = o.forBuilder(b)
		opts[i].validator = i > 0
	}
	reports := make([]*runReport, n)
	errs := make([]error, n)
	var st store.Store
	text := o.output != "json"
	concurrent := buildersConcurrently(n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range chosen {
		run := func() {
			bo := opts[i]
			if concurrent {
				bo.output = "json" // no interleaved progress
			}
			if text && !concurrent {
				fmt.Fprintf(cmd.ErrOrStderr(), "\n== builder %s (%s, runtime %s) ==\n", bo.builderName, bo.builderID, bo.runtime)
			}
			rep, s, err := build(cmd, bo)
			mu.Lock()
			defer mu.Unlock()
			reports[i], errs[i] = rep, err
			if s != nil && st == nil {
				st = s
			}
		}
		if concurrent {
			wg.Add(1)
			go func() { defer wg.Done(); run() }()
		} else {
			run()
		}
	}
	wg.Wait()
	cr := &consensusReport{Threshold: k, Agreeing: []string{}, Failed: map[string]string{}, Variations: map[string][]string{}}
	for i, b := range chosen {
		if i > 0 {
			cr.Variations[b.Name] = set.Differences(b)
		}
		switch {
		case errs[i] != nil:
			cr.Failed[b.Name] = errs[i].Error()
		case !reports[i].Succeeded:
			cr.Failed[b.Name] = reports[i].Reason
		}
		if reports[i] != nil {
			cr.Builders = append(cr.Builders, reports[i])
		}
	}
	if reports[0] == nil || !reports[0].Succeeded {
		if errs[0] != nil {
			return errs[0]
		}
		cr.Reason, cr.ExitCode = "the primary's build failed: "+reports[0].Reason, exitBuildFailed
		return finishConsensus(cmd, o, cr)
	}
	primary := reports[0]
	cr.Agreeing = append(cr.Agreeing, chosen[0].Name)
	for _, a := range primary.Artifacts {
		cr.Artifacts = append(cr.Artifacts, artifactVotes{Name: a.Name, Digests: map[string]string{chosen[0].Name: a.Digest}})
	}
	var dissent []int
	for i := 1; i < n; i++ {
		r := reports[i]
		if r == nil || !r.Succeeded {
			continue
		}
		agree := len(r.Artifacts) == len(primary.Artifacts)
		for j, a := range primary.Artifacts {
			d := digestOf(r, a.Name)
			cr.Artifacts[j].Digests[chosen[i].Name] = d
			if d != a.Digest {
				agree = false
			}
		}
		if agree {
			cr.Agreeing = append(cr.Agreeing, chosen[i].Name)
		} else {
			dissent = append(dissent, i)
		}
	}
	switch {
	case len(dissent) > 0:
		cr.Reason = fmt.Sprintf("builders disagree: %s produced other digests than the primary", names(chosen, dissent))
		cr.ExitCode = exitNotVerified
		signer, err := loadSigner(cmd.Context(), chosen[0].Key)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "divergence reports will not be signed: %v\n", err)
			signer = nil
		}
		tr := loadTrust(cmd, trustSources{buildersFile: o.buildersFile, buildersGiven: true})
		for _, i := range dissent {
			for _, a := range primary.Artifacts {
				b := artifactNamed(reports[i], a.Name)
				if b == nil || b.Digest == a.Digest {
					continue
				}
				roots := []string{chosen[0].Variation.WithDefaults().WorkspaceRoot, chosen[i].Variation.WithDefaults().WorkspaceRoot}
				cr.Divergence = append(cr.Divergence, explain(cmd.Context(), st, sideOf(a.Name, a.Stored, a.Digest, chosen[0].ID), sideOf(b.Name, b.Stored, b.Digest, chosen[i].ID), signer, chosen[0].ID, roots, tr))
			}
		}
	case len(cr.Agreeing) < k:
		cr.Reason = fmt.Sprintf("only %d of %d builders produced the artifacts (threshold %d)", len(cr.Agreeing), n, k)
		cr.ExitCode = exitNotVerified
	default:
		cr.Consensus = true
		for _, a := range primary.Artifacts {
			if err := markReleased(cmd.Context(), st, a.Name, a.Stored, cr.Agreeing); err != nil {
				return err
			}
			cr.Released = append(cr.Released, a.Name+"@"+a.Digest)
		}
	}
	return finishConsensus(cmd, o, cr)
}

// checkBuilderKeys loads the signing keys of the first n builders of set and
// refuses two that are one key (see [builders.Set.CheckKeys]). Unless kms
// is true, KMS keys are left out.
func checkBuilderKeys(ctx context.Context, set *builders.Set, n int, kms bool) error {
	pubs := make([][]byte, n)
	for i, b := range set.Builders[:n] {
		if attest.IsKMS(b.Key) && !kms {
			continue
		}
		s, err := loadSigner(ctx, b.Key)
		if err != nil {
			return fmt.Errorf("builder %s: %w", b.Name, err)
		}
		pubs[i] = s.PublicKeyPEM()
	}
	return set.CheckKeys(pubs)
}

func finishConsensus(cmd *cobra.Command, o *runOptions, cr *consensusReport) error {
	if o.output == "json" {
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

func writeConsensus(w io.Writer, cr *consensusReport) {
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

func digestOf(r *runReport, name string) string {
	if a := artifactNamed(r, name); a != nil {
		return a.Digest
	}
	return ""
}

func artifactNamed(r *runReport, name string) *artifactRef {
	for _, a := range r.Artifacts {
		if a.Name == name {
			return &artifactRef{Name: a.Name, Digest: a.Digest, Stored: a.Stored}
		}
	}
	return nil
}

type artifactRef struct{ Name, Digest, Stored string }

func names(bs []builders.Builder, idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, bs[i].Name)
	}
	return strings.Join(s, ", ")
}

// releasedSuffix names the attachment that marks an artifact released.
const releasedSuffix = "released"

// markReleased records, beside the artifact, the builders that agreed on it.
func markReleased(ctx context.Context, st store.Store, name, stored string, agreeing []string) error {
	h, err := ggcrv1.NewHash(stored)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"builders": agreeing})
	if err != nil {
		return err
	}
	ref := store.AttachmentRef(store.Name(st, name), h, releasedSuffix)
	_, err = store.Attach(ctx, st, ref, []store.Layer{{MediaType: "application/vnd.accord.consensus.v1+json", Blob: body}}, func(map[string]string) bool { return true })
	return err
}

// sideOf names one artifact of a comparison.
func sideOf(name, stored, digest, builder string) divSide {
	return divSide{Side: divergence.Side{Name: name, Digest: digest, Builder: builder}, stored: stored}
}

type divSide struct {
	divergence.Side
	stored string
}

// explain builds, signs and stores the divergence report of a and b (both
// in st); signer may be nil for an unsigned report. roots are the builders'
// workspace roots when known from their configuration; more hints come
// from the artifacts' provenance that tr's builders signed. A comparison that
// fails still gives a report (with its error): the builds disagree either
// way.
func explain(ctx context.Context, st store.Store, a, b divSide, signer *attest.Signer, signerID string, roots []string, tr *trust) *divergence.Report {
	incomplete := func(err error) *divergence.Report {
		return &divergence.Report{A: a.Side, B: b.Side, Causes: []divergence.Cause{}, Differences: []divergence.Difference{}, Error: err.Error()}
	}
	ta, sa, err := unpackStored(ctx, st, a, tr)
	if err != nil {
		return incomplete(err)
	}
	tb, sb, err := unpackStored(ctx, st, b, tr)
	if err != nil {
		return incomplete(err)
	}
	h := hintsFrom(sa, sb)
	h.BuildPaths = append(h.BuildPaths, roots...)
	r := divergence.New(a.Side, b.Side, ta, tb, h)
	if os.Getenv("ACCORD_NO_DIFFOSCOPE") == "" {
		d, err := divergence.RunDiffoscope(ctx, ta, tb)
		if err != nil {
			r.Error = "diffoscope: " + err.Error()
		}
		r.Diffoscope = d
	}
	if signer != nil {
		if err := storeDivergence(ctx, st, a, b, r, signer, signerID); err != nil {
			r.Error = strings.TrimPrefix(r.Error+"; ", "; ") + "storing the signed report: " + err.Error()
		}
	}
	return r
}

// unpackStored unpacks a stored artifact and reads its provenance summary
// (nil when none that tr trusts).
func unpackStored(ctx context.Context, st store.Store, s divSide, tr *trust) (*divergence.Tree, *attest.Summary, error) {
	h, err := ggcrv1.NewHash(s.stored)
	if err != nil {
		return nil, nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, nil, fmt.Errorf("%s@%s: %w", s.Name, s.stored, err)
	}
	t, err := divergence.FromImage(ctx, s.Name, img)
	if err != nil {
		return nil, nil, err
	}
	return t, tr.provenanceSummary(ctx, st, s.Name, h, img, s.Builder), nil
}

// hintsFrom takes the builders' workspace roots and dependencies from
// their provenance: only provenance whose signature verified
// ([trust.provenanceSummary]), as a root or a dependency could make a
// real change look benign.
func hintsFrom(sums ...*attest.Summary) divergence.Hints {
	var h divergence.Hints
	for i, s := range sums {
		if s == nil {
			continue
		}
		if v, ok := s.Internal["variation"].(map[string]any); ok {
			// Only a clean absolute path other than / can name a build
			// path: anything else could make real changes look benign.
			if root, ok := v["workspaceRoot"].(string); ok && path.IsAbs(root) && path.Clean(root) == root && root != "/" {
				h.BuildPaths = append(h.BuildPaths, root)
			}
		}
		for _, t := range []time.Time{s.Started, s.Finished} {
			if !t.IsZero() {
				h.Times = append(h.Times, t.Unix())
			}
		}
		if s.SourceDateEpoch > 0 {
			h.Times = append(h.Times, s.SourceDateEpoch)
		}
		if i == 0 {
			h.DependenciesA = s.Dependencies
		} else {
			h.DependenciesB = s.Dependencies
		}
	}
	if len(h.BuildPaths) == 0 {
		h.BuildPaths = []string{"/workspace"}
	}
	return h
}

// storeDivergence signs the report as an in-toto statement about both
// artifacts and attaches it to both.
func storeDivergence(ctx context.Context, st store.Store, a, b divSide, r *divergence.Report, signer *attest.Signer, signerID string) error {
	subjects := []attest.Subject{
		{Name: a.Name, SHA256: strings.TrimPrefix(a.Digest, "sha256:")},
		{Name: b.Name + " (" + b.Builder + ")", SHA256: strings.TrimPrefix(b.Digest, "sha256:")},
	}
	stmt, err := attest.Statement(divergence.PredicateType, subjects, r)
	if err != nil {
		return err
	}
	env, err := attest.SignEnvelope(ctx, signer, attest.PayloadType, stmt)
	if err != nil {
		return err
	}
	blob, err := json.Marshal(env)
	if err != nil {
		return err
	}
	for _, s := range []divSide{a, b} {
		h, err := ggcrv1.NewHash(s.stored)
		if err != nil {
			return err
		}
		other := b.Digest
		if s.Digest == b.Digest {
			other = a.Digest
		}
		layer := store.Layer{MediaType: store.DSSEMediaType, Blob: blob, Annotations: map[string]string{
			store.SignatureAnnotation: "", store.PredicateTypeAnnotation: divergence.PredicateType, divergenceWith: other, "accord.dev/reported-by": signerID,
		}}
		ref := store.AttachmentRef(store.Name(st, s.Name), h, store.AttSuffix)
		if _, err := store.Attach(ctx, st, ref, []store.Layer{layer}, func(old map[string]string) bool { return old[divergenceWith] == other }); err != nil {
			return err
		}
	}
	return nil
}

// divergenceWith annotates a divergence report with the other digest.
const divergenceWith = "accord.dev/divergence-with"
