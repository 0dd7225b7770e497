package build

import (
	"context"
	"strings"
	"sync"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/consensus"
	"github.com/accord-build/accord/internal/divergence"
)

// Vote says how [Service.Run] compares its builders.
type Vote struct {
	// Threshold is how many distinct builders must agree; 0 is all.
	Threshold int
	// Concurrent runs the builders at once (else one after another).
	Concurrent bool
	// Announce, when set, is called before each builder's build when they
	// run one after another.
	Announce func(Builder)
	// Differences says how each validator differs from the primary (for
	// the report); may be nil.
	Differences func(Builder) []string
	// NoRelease compares the builders but releases nothing, even when they
	// agree (builds of untrusted code: a fork's pull request).
	NoRelease bool
}

// Run builds req on the primary (bs[0]) and its validators, compares what
// they produced ([consensus.Decide]), marks what they agree on released
// and explains, in signed divergence reports, what they do not. The
// report's ExitCode says the outcome: 0 consensus, 1 none, 3 the
// primary's build failed. An error is for a primary that could not build.
func (s *Service) Run(ctx context.Context, req Request, bs []Builder, v Vote) (*ConsensusReport, error) {
	reports, errs := s.buildAll(ctx, req, bs, v)
	if errs[0] != nil {
		return nil, errs[0]
	}
	outs := make([]consensus.Outcome, len(bs))
	cr := &ConsensusReport{Variations: map[string][]string{}}
	for i, b := range bs {
		if i > 0 && v.Differences != nil {
			cr.Variations[b.Name] = v.Differences(b)
		}
		outs[i] = outcome(b, reports[i], errs[i])
		if reports[i] != nil {
			cr.Builders = append(cr.Builders, reports[i])
		}
	}
	d := consensus.Decide(v.Threshold, outs)
	cr.Threshold, cr.Agreeing, cr.Failed, cr.Reason = d.Threshold, d.Agreeing, d.Failed, d.Reason
	for _, vs := range d.Votes {
		cr.Artifacts = append(cr.Artifacts, ArtifactVotes{Name: vs.Name, Digests: vs.Digests})
	}
	switch d.Verdict {
	case consensus.PrimaryFailed:
		cr.ExitCode = ExitBuildFailed
	case consensus.Disagreed:
		cr.ExitCode = ExitNotVerified
		cr.Divergence = s.explainAll(ctx, d.Explain, bs, reports, bs[0].Signer)
	case consensus.NotEnough:
		cr.ExitCode = ExitNotVerified
	case consensus.Agreed:
		cr.Consensus = true
		if v.NoRelease {
			break
		}
		for _, a := range reports[0].Artifacts {
			if err := markReleased(ctx, s.Store, a.Name, a.Stored, cr.Agreeing); err != nil {
				return nil, err
			}
		}
		cr.Released = d.Released
	}
	return cr, nil
}

// buildAll runs every builder's build, at once or one after another.
func (s *Service) buildAll(ctx context.Context, req Request, bs []Builder, v Vote) ([]*Report, []error) {
	reports := make([]*Report, len(bs))
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		if !v.Concurrent {
			if v.Announce != nil {
				v.Announce(b)
			}
			reports[i], errs[i] = s.Build(ctx, req, b)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = s.Build(ctx, req, b)
		}()
	}
	wg.Wait()
	return reports, errs
}

// outcome is what builder b did, for the vote.
func outcome(b Builder, r *Report, err error) consensus.Outcome {
	o := consensus.Outcome{Builder: b.Name, ID: b.ID, Roots: []string{b.Variation.WithDefaults().WorkspaceRoot}}
	if b.Signer != nil {
		o.Key, _ = attest.Fingerprint(b.Signer.PublicKeyPEM())
	}
	switch {
	case err != nil:
		o.Err = err.Error()
		return o
	case !r.Succeeded:
		o.Err = r.Reason
		return o
	}
	sboms := map[string]string{}
	for _, p := range r.Proof {
		sboms[p.Artifact] = p.SBOMDigest
		if o.Inputs == nil && p.Inputs != nil {
			o.Inputs = comparableInputs(p.Inputs)
		}
	}
	for _, a := range r.Artifacts {
		o.Artifacts = append(o.Artifacts, consensus.Artifact{Name: a.Name, Digest: a.Digest, SBOM: sboms[a.Name]})
	}
	return o
}

// explainAll explains each difference the vote found: artifacts whose
// bytes differ are unpacked and compared; SBOMs and inputs that differ
// are reported as such.
func (s *Service) explainAll(ctx context.Context, pairs []consensus.Pair, bs []Builder, reports []*Report, signer *attest.Signer) []*divergence.Report {
	var out []*divergence.Report
	for _, p := range pairs {
		ra, rb := reports[p.A], reports[p.B]
		switch p.Cause {
		case consensus.CauseArtifact:
			a, b := ra.artifactNamed(p.Artifact), rb.artifactNamed(p.Artifact)
			out = append(out, Explain(ctx, s.Store, SideOf(a.Name, a.Stored, a.Digest, bs[p.A].ID), SideOf(b.Name, b.Stored, b.Digest, bs[p.B].ID),
				signer, bs[p.A].ID, p.Roots, s.Trust))
		case consensus.CauseSBOM:
			a, b := ra.artifactNamed(p.Artifact), rb.artifactNamed(p.Artifact)
			out = append(out, divergence.Of(divergence.Side{Name: a.Name, Digest: a.Digest, Builder: bs[p.A].ID},
				divergence.Side{Name: b.Name, Digest: b.Digest, Builder: bs[p.B].ID}, divergence.SBOM, []string{a.Name + " (SBOM)"}, p.Detail))
		case consensus.CauseInputs:
			out = append(out, divergence.Of(divergence.Side{Name: "inputs", Builder: bs[p.A].ID},
				divergence.Side{Name: "inputs", Builder: bs[p.B].ID}, divergence.Inputs, splitList(p.Detail), "resolved to other digests"))
		}
	}
	return out
}

// splitList splits a comma-separated detail back into its items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// comparableInputs are a build's resolved inputs keyed so that builders
// compare like with like: a pipeline given as a file is recorded under the
// path it was given by (FILE#Kind/Name), which differs from builder to
// builder; its digest, not its path, says whether it is the same.
func comparableInputs(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if file, def, ok := strings.Cut(k, "#"); ok && !strings.HasPrefix(file, "pipelines/catalog/") {
			k = "pipeline file#" + def
		}
		out[k] = v
	}
	return out
}
