package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/trigger"
	"github.com/accord-build/accord/verify"
)

// outcome is what one attempt of a run came to: a final state and its
// record, or an infrastructure error worth another attempt.
type outcome struct {
	state queue.JobState
	rec   *queue.Record
	infra error
}

// execute runs job once: every builder of its repository builds it, the
// vote decides, the released artifacts are verified against the
// repository's policy and, when verified, get a signed verification
// summary. A build that fails, builders that disagree and an artifact that
// does not verify are final; only trouble of the machinery is retried.
func (s *Server) execute(ctx context.Context, job *queue.Job) outcome {
	req := job.Request
	r, ok := s.repos[strings.ToLower(req.Repo)]
	if !ok {
		return final(queue.Failed, &queue.Record{Verdict: "not configured", Reason: req.Repo + " is no longer in the server's config"})
	}
	set, st, svc := r.trusted, s.store, s.service(s.store)
	if req.Untrusted {
		if r.untrusted == nil {
			return final(queue.Failed, &queue.Record{Pipeline: r.cfg.Pipeline, Verdict: "not built", Reason: "fork pull requests have no untrusted builders in the config"})
		}
		set = r.untrusted
	}
	svc.Trust = set.trust
	// Pull requests, even from the repository itself, are built and
	// compared but never released: only what the config's branches and
	// tags name is.
	noRelease := req.Untrusted || req.Kind == trigger.KindPullRequest
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout.Duration+time.Minute)
	defer cancel()
	lg := newLogs()
	breq := build.Request{
		Source:   build.Source{URI: req.CloneURL, Revision: req.Commit},
		Pipeline: r.cfg.Pipeline, Params: r.params, Timeout: r.cfg.Timeout.Duration,
	}
	started := time.Now()
	// Builds that are not released store their artifacts by digest only:
	// they never take a release's name in the store.
	cr, err := svc.Run(ctx, breq, set.builders(lg.progress, noRelease), build.Vote{
		Threshold: set.k, NoRelease: noRelease,
		Differences: func(b build.Builder) []string { fb, _ := set.set.Get(b.Name); return set.set.Differences(fb) },
	})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return final(queue.Failed, &queue.Record{Pipeline: r.cfg.Pipeline, Verdict: "timed out", Reason: s.mask(err.Error())})
		}
		// The request comes from a verified delivery and the config was
		// checked at start: a build that could not start (the source
		// could not be fetched, the store could not be written) is worth
		// another attempt. A build that ran and failed is a report.
		return outcome{infra: err}
	}
	rec := s.record(cr, lg, r.cfg.Pipeline, set)
	rec.Seconds = time.Since(started).Seconds()
	switch {
	case len(cr.Builders) == 0 || !cr.Builders[0].Succeeded:
		rec.Verdict = "build failed"
		return final(queue.Failed, rec)
	case !cr.Consensus:
		rec.Verdict = "builders disagree"
		return final(queue.Failed, rec)
	case req.Untrusted:
		rec.Verdict = "built (untrusted, not released)"
		return final(queue.Succeeded, rec)
	case noRelease:
		rec.Verdict = "built (pull request, not released)"
		return final(queue.Succeeded, rec)
	}
	if err := s.verifyReleased(ctx, st, r, cr, rec); err != nil {
		if errors.Is(err, errNotVerified) {
			return final(queue.Failed, rec)
		}
		return outcome{infra: err}
	}
	rec.Verdict = "released"
	return final(queue.Succeeded, rec)
}

func final(state queue.JobState, rec *queue.Record) outcome { return outcome{state: state, rec: rec} }

var errNotVerified = errors.New("not verified")

// verifyReleased verifies each artifact the builders agreed on against
// the repository's policy and signs its verification summary.
func (s *Server) verifyReleased(ctx context.Context, st store.Store, r *repo, cr *build.ConsensusReport, rec *queue.Record) error {
	type verified struct {
		arg string
		ev  *verify.Evidence
		res *verify.Result
	}
	var all []verified
	for _, a := range cr.Builders[0].Artifacts {
		arg := a.Name + "@" + a.Stored
		ev, err := evidence.Read(ctx, st, arg)
		if err != nil {
			return fmt.Errorf("reading the evidence of %s: %w", arg, err)
		}
		res, err := verify.Artifact(*ev, *r.policy)
		if err != nil {
			return fmt.Errorf("verifying %s: %w", arg, err)
		}
		if !res.Verified {
			rec.Verdict = "not verified"
			rec.Reason = fmt.Sprintf("%s: %s", a.Name, failedChecks(res))
			return errNotVerified
		}
		all = append(all, verified{arg, ev, res})
	}
	// Every artifact verified: only now is a summary signed.
	rec.Verified = true
	if s.verifier == nil {
		return nil
	}
	when, err := proof.VerificationTime()
	if err != nil {
		return err
	}
	for _, v := range all {
		_, ref, err := proof.Summarize(ctx, st, v.arg, v.ev, v.res, r.policy, proof.Summary{Signer: s.verifier, VerifierID: s.cfg.Verifier.ID, Version: map[string]string{"accord": s.version}, Time: when})
		if err != nil {
			return fmt.Errorf("signing the verification summary of %s: %w", v.arg, err)
		}
		name, _, _ := strings.Cut(v.arg, "@")
		rec.Evidence = append(rec.Evidence, queue.RecordEvidence{Kind: "vsa", Artifact: name, Ref: ref})
	}
	return nil
}

// failedChecks names the checks a result failed, with their reasons.
func failedChecks(res *verify.Result) string {
	var out []string
	for _, c := range res.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Reason)
		}
	}
	return strings.Join(out, "; ")
}

// record is the status page's and the check run's view of a run.
func (s *Server) record(cr *build.ConsensusReport, lg *logs, pipeline string, set *builderSet) *queue.Record {
	rec := &queue.Record{Pipeline: pipeline, Consensus: cr.Consensus, Reason: s.mask(cr.Reason)}
	for _, b := range set.set.Builders[:set.n] {
		rec.Builders = append(rec.Builders, b.Name)
	}
	// cr.Released names each released artifact as NAME@DIGEST.
	released, stored := map[string]bool{}, map[string]string{}
	for _, n := range cr.Released {
		released[n] = true
	}
	for i, b := range cr.Builders {
		if i == 0 {
			rec.PipelineDigest = b.Pipeline.Digest
			if !b.Succeeded && rec.Reason == "" {
				rec.Reason = s.mask(b.Reason)
			}
			for _, a := range b.Artifacts {
				rec.Artifacts = append(rec.Artifacts, queue.RecordArtifact{Name: a.Name, Digest: a.Digest, Released: released[a.Name+"@"+a.Digest]})
				stored[a.Name] = a.Stored
				ref := a.Name + "@" + a.Stored
				rec.Evidence = append(rec.Evidence, queue.RecordEvidence{Kind: "provenance", Artifact: a.Name, Ref: ref}, queue.RecordEvidence{Kind: "sbom", Artifact: a.Name, Ref: ref})
			}
		}
		for _, t := range b.Tasks {
			rt := queue.RecordTask{Builder: b.Builder, Name: t.Name, Status: string(t.Status), Seconds: t.Seconds}
			for _, st := range t.Steps {
				step := queue.RecordStep{Name: st.Name, Status: string(st.Status), ExitCode: st.ExitCode, Seconds: st.Seconds}
				step.Log = s.mask(lg.text(b.Builder, t.Name, st.Name))
				rt.Steps = append(rt.Steps, step)
			}
			rec.Tasks = append(rec.Tasks, rt)
		}
	}
	for _, d := range cr.Divergence {
		ref := d.A.Name + "@" + d.A.Digest
		for _, a := range rec.Artifacts {
			if a.Name == d.A.Name {
				ref = a.Name + "@" + stored[a.Name]
			}
		}
		rec.Evidence = append(rec.Evidence, queue.RecordEvidence{Kind: "divergence", Artifact: d.A.Name, Ref: ref})
	}
	return rec
}
