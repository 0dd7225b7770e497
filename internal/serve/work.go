package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/trigger"
)

// decideFor is how long a delivery whose decision keeps failing (git or
// the API unreachable) is retried before it is recorded as ignored.
const decideFor = time.Hour

// dispatch turns accepted deliveries into queued runs, when woken by the
// intake and every few seconds (for deliveries whose decision failed, and
// those accepted before a crash).
func (s *Server) dispatch(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		ds, err := s.q.UndispatchedN(ctx, dispatchBatch, s.needWhole)
		if err != nil && ctx.Err() == nil {
			s.log.Error("reading accepted deliveries", "err", err)
		}
		done := s.dispatchAll(ctx, ds)
		if len(ds) == dispatchBatch && err == nil && done > 0 {
			continue // more are waiting (a batch of only deliveries waiting for a failing decider waits like the rest)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// decider turns deliveries into build requests ([trigger.Decider]).
// Decide must set aside, with the same note, every delivery SetAside sets
// aside, deciding from its ID, Event and Repo alone: the dispatcher hands
// such a delivery to Decide without its body or the rest of its record
// (needWhole).
type decider interface {
	Decide(ctx context.Context, del trigger.Delivery) ([]trigger.Request, string, error)
	SetAside(del trigger.Delivery) (note string, ok bool)
}

// decideSafely is the decider's Decide, with a panic on a payload turned
// into a note: that delivery is recorded as ignored instead of crashing
// the server, which would read it again at every start.
func (s *Server) decideSafely(ctx context.Context, del trigger.Delivery) (reqs []trigger.Request, note string, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("deciding a delivery panicked; it is recorded as ignored", "delivery", del.ID, "event", del.Event, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			reqs, note, err = nil, fmt.Sprintf("not decided: deciding it failed (%v); see the server's log", r), nil
		}
	}()
	return s.decider.Decide(ctx, del)
}

// needWhole says whether deciding a waiting delivery needs its record and
// body: not when the decider can set it aside from its event and
// repository alone (the decider's config does not change while the
// server runs, so deciding it later sets it aside the same way).
func (s *Server) needWhole(p queue.Pending) bool {
	_, aside := s.decider.SetAside(trigger.Delivery{ID: p.ID, Event: p.Event, Repo: p.Repo})
	return !aside
}

// dispatchBatch is how many accepted deliveries the dispatcher reads at a
// time.
const dispatchBatch = 256

// dispatchAll decides ds in the order they arrived. Those that build
// nothing are stored as ignored together, in one commit, before the next
// delivery that builds something is dispatched (so runs are still queued
// in arrival order). It returns how many it decided.
func (s *Server) dispatchAll(ctx context.Context, ds []queue.StoredDelivery) (done int) {
	var ignored []queue.Ignored
	flush := func() {
		if len(ignored) == 0 {
			return
		}
		if err := s.q.Ignore(ctx, ignored); err != nil {
			if ctx.Err() == nil {
				s.log.Error("storing ignored deliveries", "err", err, "deliveries", len(ignored))
			}
			done -= len(ignored) // still waiting: no reason to read them again at once
		}
		ignored = ignored[:0]
	}
	defer flush()
	for _, d := range ds {
		if ctx.Err() != nil {
			return
		}
		reqs, note, ok := s.decide(ctx, d)
		if !ok {
			continue
		}
		done++
		if len(reqs) == 0 {
			s.log.LogAttrs(ctx, slog.LevelInfo, "delivery builds nothing", slog.String("delivery", d.ID), slog.String("event", d.Event), slog.String("note", note))
			ignored = append(ignored, queue.Ignored{ID: d.ID, Note: note})
			continue
		}
		flush()
		s.dispatchOne(ctx, d, reqs, note)
	}
	return done
}

// decide turns d into requests with the server's policy; ok is false when
// that has to wait (the decider failed; it is tried again with backoff).
func (s *Server) decide(ctx context.Context, d queue.StoredDelivery) (reqs []trigger.Request, note string, ok bool) {
	log := func() *slog.Logger { return s.log.With("delivery", d.ID, "event", d.Event) } // made only when used
	s.mu.Lock()
	f, failing := s.deciding[d.ID]
	s.mu.Unlock()
	if failing && time.Now().Before(f.next) {
		return nil, "", false
	}
	reqs, note, err := s.decideSafely(ctx, d.Delivery)
	if err != nil {
		if !failing {
			f.first = time.Now()
		}
		if time.Since(f.first) < decideFor {
			f.next = time.Now().Add(backoffFor(time.Since(f.first)))
			s.mu.Lock()
			s.deciding[d.ID] = f
			s.mu.Unlock()
			log().Warn("cannot decide yet; will try again", "err", err)
			return nil, "", false
		}
		reqs, note = nil, "gave up deciding after "+decideFor.String()+": "+err.Error()
	}
	s.mu.Lock()
	delete(s.deciding, d.ID)
	s.mu.Unlock()
	if len(reqs) == 0 {
		return nil, note, true
	}
	recent, err := s.q.Jobs(ctx, recentRuns)
	if err != nil {
		log().Warn("reading recent runs", "err", err)
	}
	reqs, note = onceATag(reqs, note, recent)
	return reqs, note, true
}

// dispatchOne queues the runs of d and reports them.
func (s *Server) dispatchOne(ctx context.Context, d queue.StoredDelivery, reqs []trigger.Request, note string) {
	log := s.log.With("delivery", d.ID, "event", d.Event)
	jobs, err := s.q.Dispatch(ctx, d.ID, reqs, note)
	if err != nil {
		log.Error("queueing runs", "err", err)
		return
	}
	if len(jobs) == 0 {
		log.Info("delivery builds nothing", "note", note)
	}
	for i := range jobs {
		log.Info("run queued", "run", jobs[i].ID, "repo", jobs[i].Request.Repo, "ref", jobs[i].Request.Ref, "commit", jobs[i].Request.Commit, "untrusted", jobs[i].Request.Untrusted)
		s.report(ctx, &jobs[i])
		if jobs[i].Request.Supersede != "" {
			s.reportSuperseded(ctx, jobs[i].ID)
		}
	}
}

// recentRuns is how many of the newest runs the dispatcher looks through
// for a tag already built and for runs a new one superseded.
const recentRuns = 200

// onceATag drops the requests for a tag (or release) that a recent run
// already builds or built: one new tag arrives up to three times (its
// push, create and release events). A later one replaces a queued earlier
// one, as a newer push does.
func onceATag(reqs []trigger.Request, note string, recent []queue.Job) ([]trigger.Request, string) {
	var out []trigger.Request
	for _, r := range reqs {
		if r.Kind != trigger.KindTag && r.Kind != trigger.KindRelease || r.Rerun != "" {
			out = append(out, r)
			continue
		}
		if by := builtBy(r, recent); by != "" {
			note = fmt.Sprintf("%s %s at %s is already built by %s", r.Kind, r.Ref, r.Commit, by)
			continue
		}
		if r.Supersede == "" {
			r.Supersede = r.Repo + " " + r.Ref + " " + r.Commit
		}
		out = append(out, r)
	}
	return out, note
}

// builtBy is the recent run, running or done well, of r's tag at r's
// commit; "" if none.
func builtBy(r trigger.Request, recent []queue.Job) string {
	for _, j := range recent {
		q := j.Request
		if (q.Kind == trigger.KindTag || q.Kind == trigger.KindRelease) && q.Repo == r.Repo && q.Ref == r.Ref && q.Commit == r.Commit &&
			(j.State == queue.Running || j.State == queue.Succeeded) {
			return j.ID
		}
	}
	return ""
}

// reportSuperseded tells GitHub about the queued runs newer cancelled.
func (s *Server) reportSuperseded(ctx context.Context, newer string) {
	recent, err := s.q.Jobs(ctx, recentRuns)
	if err != nil {
		return
	}
	for i := range recent {
		if recent[i].SupersededBy == newer {
			s.report(ctx, &recent[i])
		}
	}
}

// failing is a delivery whose decision failed: since when, and when to
// try again.
type failing struct{ first, next time.Time }

// backoffFor is the pause between decisions of a failing delivery.
func backoffFor(failingFor time.Duration) time.Duration {
	return min(5*time.Second+failingFor/4, 5*time.Minute)
}

// work runs queued runs one at a time until claimCtx is done. runCtx
// stops a running build (after the shutdown grace): it then goes back to
// the queue, to run again from the start.
func (s *Server) work(claimCtx, runCtx context.Context) {
	for {
		job, err := s.q.Next(claimCtx)
		if err != nil {
			if claimCtx.Err() == nil {
				s.log.Error("taking the next run", "err", err)
				time.Sleep(time.Second)
				continue
			}
			return
		}
		s.runOne(runCtx, job)
	}
}

func (s *Server) runOne(ctx context.Context, job *queue.Job) {
	log := s.log.With("run", job.ID, "delivery", job.Request.DeliveryID, "repo", job.Request.Repo, "commit", job.Request.Commit, "attempt", job.Attempt)
	bg := context.WithoutCancel(ctx)
	if job.Attempt > s.cfg.Retry.Attempts {
		// Started that often and never finished: it took the server down
		// with it each time.
		rec := &queue.Record{Verdict: "errored", Reason: fmt.Sprintf("started %d times without finishing (the server stopped during each attempt)", job.Attempt-1)}
		if err := s.q.Finish(bg, job.ID, queue.Errored, rec); err != nil {
			log.Error("recording the run's end", "err", err)
		}
		s.metrics.runs.WithLabelValues(string(queue.Errored)).Inc()
		if j, ok, err := s.q.Job(bg, job.ID); err == nil && ok {
			s.report(bg, j)
		}
		return
	}
	log.Info("run started")
	s.report(ctx, job)
	started := time.Now()
	out := s.execute(ctx, job)
	if ctx.Err() != nil && out.state != queue.Succeeded {
		// Shut down mid-run: whatever it stored is left to the next
		// attempt, which runs from the start.
		if err := s.q.Requeue(bg, job.ID); err != nil {
			log.Error("queueing the interrupted run again", "err", err)
		}
		log.Info("run interrupted by shutdown; queued again")
		return
	}
	if out.infra != nil {
		if job.Attempt < s.cfg.Retry.Attempts {
			wait := queue.Backoff(job.Attempt, s.cfg.Retry.Backoff.Duration, 30*time.Minute)
			log.Warn("run failed for an infrastructure reason; retrying", "err", out.infra, "in", wait.String())
			s.metrics.retries.Inc()
			if err := s.q.Retry(bg, job.ID, errors.New(s.mask(out.infra.Error())), wait); err != nil {
				log.Error("scheduling the retry", "err", err)
			}
			return
		}
		out = final(queue.Errored, &queue.Record{Verdict: "errored", Reason: s.mask(fmt.Sprintf("gave up after %d attempts: %v", job.Attempt, out.infra))})
	}
	if err := s.q.Finish(bg, job.ID, out.state, out.rec); err != nil {
		log.Error("recording the run's end", "err", err)
		return
	}
	s.metrics.runs.WithLabelValues(string(out.state)).Inc()
	s.metrics.runSeconds.WithLabelValues(string(out.state)).Observe(time.Since(started).Seconds())
	log.Info("run finished", "state", out.state, "verdict", out.rec.Verdict)
	if j, ok, err := s.q.Job(bg, job.ID); err == nil && ok {
		s.report(bg, j)
	}
}

// report tells GitHub where job is; a failure to report is logged, never
// fatal to the run. Reports of one run take turns, and each reads the
// check run id the one before stored, so a run has one check run however
// its queued and started reports race.
func (s *Server) report(ctx context.Context, job *queue.Job) {
	mu, _ := s.reporting.LoadOrStore(job.ID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	// The freshest state: a queued report that lost the race to the
	// worker must not move the check run back.
	if j, ok, err := s.q.Job(ctx, job.ID); err == nil && ok {
		job = j
	}
	id, err := s.gh.Report(ctx, job, s.runURL(job.ID))
	if job.State.Final() {
		s.reporting.Delete(job.ID)
	}
	if err != nil {
		s.log.Warn("reporting to GitHub", "run", job.ID, "err", err)
		return
	}
	if id != 0 && id != job.CheckRunID {
		job.CheckRunID = id
		if err := s.q.SetCheckRun(ctx, job.ID, id); err != nil {
			s.log.Warn("recording the check run", "run", job.ID, "err", err)
		}
	}
}

func (s *Server) runURL(id string) string { return s.cfg.ExternalURL + "/runs/" + id }

// redeliverLoop asks GitHub, on start and every interval, to redeliver
// the deliveries that failed while the server could not take them.
func (s *Server) redeliverLoop(ctx context.Context) {
	r := s.cfg.GitHub.Redeliver
	if r.Disabled || len(r.Hooks) == 0 {
		return
	}
	for {
		asked, err := s.gh.Redeliver(ctx, r.Hooks, r.Window.Duration, time.Now(), func(guid string) (bool, error) { return s.q.Seen(ctx, guid) })
		if err != nil && ctx.Err() == nil {
			s.log.Warn("asking GitHub to redeliver failed deliveries", "err", err)
		}
		if len(asked) > 0 {
			s.metrics.redelivered.Add(float64(len(asked)))
			s.log.Info("asked GitHub to redeliver failed deliveries", "deliveries", strings.Join(asked, ","))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Interval.Duration):
		}
	}
}

// evidenceFetcher reads a run's evidence from the store for the status
// page: the signed envelopes of one kind about one artifact.
type evidenceFetcher struct{ s *Server }

var predicateOf = map[string]string{
	"provenance": attest.SLSAProvenanceV1, "sbom": attest.SPDXDocument,
	"vsa": attest.VerificationSummaryV1, "divergence": divergence.PredicateType,
}

// Fetch returns the envelopes of ev as a JSON array.
func (f *evidenceFetcher) Fetch(ctx context.Context, job *queue.Job, ev queue.RecordEvidence) ([]byte, error) {
	pt, ok := predicateOf[ev.Kind]
	if !ok {
		return nil, fmt.Errorf("no evidence of kind %q", ev.Kind)
	}
	name, dg, ok := strings.Cut(ev.Ref, "@")
	h, err := ggcrv1.NewHash(dg)
	if !ok || err != nil {
		return nil, fmt.Errorf("evidence reference %q has no digest", ev.Ref)
	}
	envs, err := evidence.Attestations(ctx, f.s.store, name, h, pt, nil)
	if err != nil {
		return nil, err
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("no %s stored about %s: %w", ev.Kind, ev.Ref, fs.ErrNotExist)
	}
	return joinJSON(envs), nil
}

func joinJSON(envs [][]byte) []byte {
	out := []byte{'['}
	for i, e := range envs {
		if i > 0 {
			out = append(out, ',', '\n')
		}
		out = append(out, e...)
	}
	return append(out, ']', '\n')
}
