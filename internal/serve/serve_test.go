package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/trigger"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTailKeepsTheEnd(t *testing.T) {
	var tl tail
	for i := 0; i < 5000; i++ {
		tl.Write([]byte(strings.Repeat("x", 30) + "\n"))
	}
	tl.Write([]byte("the last line\n"))
	s := tl.String()
	if !strings.HasPrefix(s, "[earlier output cut]\n") || !strings.HasSuffix(s, "the last line\n") || len(s) > maxLog+32 {
		t.Errorf("tail: %d bytes, starts %q, ends %q", len(s), s[:30], s[len(s)-20:])
	}
	if lines := strings.Split(strings.TrimPrefix(s, "[earlier output cut]\n"), "\n"); len(lines[0]) != 30 {
		t.Errorf("the tail starts mid-line: %q", lines[0])
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"token ghp_abcdef in the log", "token *** in the log"},
		{"webhook It's a secret! twice It's a secret!", "webhook *** twice ***"},
		{"abc is too short to mask", "abc is too short to mask"},
	} {
		if got := mask(tc.in, []string{"ghp_abcdef", "It's a secret!", "abc"}); got != tc.want {
			t.Errorf("mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestObserveBoundsLabels: what an unverified request says never becomes
// a label; a verified but unknown event is "other".
func TestObserveBoundsLabels(t *testing.T) {
	m := newMetrics(nil, nil)
	m.observe("push", "accepted", time.Millisecond)
	m.observe("evil-label-from-a-forger", "unauthorized", time.Millisecond)
	m.observe("", "too_large", time.Millisecond)
	m.observe("some_new_event", "ignored", time.Millisecond)
	for _, tc := range []struct {
		event, verdict string
		want           float64
	}{
		{"push", "accepted", 1}, {"unverified", "unauthorized", 1}, {"unverified", "too_large", 1}, {"other", "ignored", 1},
		{"evil-label-from-a-forger", "unauthorized", 0},
	} {
		if got := testutil.ToFloat64(m.deliveries.WithLabelValues(tc.event, tc.verdict)); got != tc.want {
			t.Errorf("deliveries{%s,%s} = %v, want %v", tc.event, tc.verdict, got, tc.want)
		}
	}
}

func TestBackoffFor(t *testing.T) {
	prev := time.Duration(0)
	for _, d := range []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		b := backoffFor(d)
		if b < prev || b < 5*time.Second || b > 5*time.Minute {
			t.Errorf("backoffFor(%s) = %s", d, b)
		}
		prev = b
	}
}

// TestOnceATag: a tag's push, create and release events build it once.
func TestOnceATag(t *testing.T) {
	tag := trigger.Request{Repo: "acme/app", Kind: trigger.KindTag, Ref: "refs/tags/v1", Commit: "c1"}
	rel := tag
	rel.Kind = trigger.KindRelease
	other := tag
	other.Commit = "c2"
	push := trigger.Request{Repo: "acme/app", Kind: trigger.KindPush, Ref: "refs/heads/main", Commit: "c1"}
	rerun := rel
	rerun.Rerun = "r1"
	recent := []queue.Job{
		{ID: "r2", State: queue.Failed, Request: other},
		{ID: "r1", State: queue.Succeeded, Request: tag},
	}
	for _, tc := range []struct {
		name   string
		in     trigger.Request
		recent []queue.Job
		kept   bool
	}{
		{"first event of a tag", tag, nil, true},
		{"release of a built tag", rel, recent, false},
		{"the tag moved to a commit whose build failed", other, recent, true},
		{"a push", push, recent, true},
		{"a rerun", rerun, recent, true},
		{"built tag still running", rel, []queue.Job{{ID: "r1", State: queue.Running, Request: tag}}, false},
		{"its build was cancelled", rel, []queue.Job{{ID: "r1", State: queue.Cancelled, Request: tag}}, true},
	} {
		out, note := onceATag([]trigger.Request{tc.in}, "n", tc.recent)
		if kept := len(out) == 1; kept != tc.kept {
			t.Errorf("%s: kept %v (note %q), want %v", tc.name, kept, note, tc.kept)
		}
		if len(out) == 1 && (out[0].Kind == trigger.KindTag || out[0].Kind == trigger.KindRelease) && out[0].Rerun == "" && out[0].Supersede == "" {
			t.Errorf("%s: no supersede key for a tag", tc.name)
		}
	}
}

// panicky is a decider that panics on every delivery it has to decide.
type panicky struct{}

func (panicky) Decide(context.Context, trigger.Delivery) ([]trigger.Request, string, error) {
	var m map[string]int
	m["boom"]++ // a nil map: as a payload that trips the decider would
	return nil, "", nil
}

func (panicky) SetAside(trigger.Delivery) (string, bool) { return "", false }

// TestDecidePanicIsIgnored: a delivery whose decision panics is recorded
// as ignored, with a note, instead of crashing the server (which would
// read it again, and crash again, at every start).
func TestDecidePanicIsIgnored(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil)), decider: panicky{}, deciding: map[string]failing{}}
	reqs, note, ok := s.decide(context.Background(), queue.StoredDelivery{Delivery: trigger.Delivery{ID: "d1", Event: "push"}})
	if !ok || len(reqs) != 0 || !strings.Contains(note, "deciding it failed") {
		t.Fatalf("decide = %v, %q, %v; want nothing to build, a note, decided", reqs, note, ok)
	}
	if !strings.Contains(logs.String(), "panicked") || !strings.Contains(logs.String(), "delivery=d1") {
		t.Errorf("log: %s", logs.String())
	}
}

// failingDecider fails every decision, as a decider whose git or API is
// down does, and counts how often the dispatcher looked at a delivery.
type failingDecider struct{ looked atomic.Int64 }

func (*failingDecider) Decide(context.Context, trigger.Delivery) ([]trigger.Request, string, error) {
	return nil, "", errors.New("the API is down")
}

func (f *failingDecider) SetAside(trigger.Delivery) (string, bool) {
	f.looked.Add(1)
	return "", false
}

// TestDispatcherDoesNotSpin: a full batch of deliveries all waiting on a
// failing decider is read once, then waits for the next wake or tick,
// instead of being read again and again in a tight loop.
func TestDispatcherDoesNotSpin(t *testing.T) {
	q, err := queue.Open(filepath.Join(t.TempDir(), "queue.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range dispatchBatch {
		d := trigger.Delivery{ID: fmt.Sprintf("d%d", i), Event: "push", Body: fmt.Appendf(nil, `{"n":%d}`, i)}
		if _, err := q.Accept(context.Background(), d, ""); err != nil {
			t.Fatal(err)
		}
	}
	fd := &failingDecider{}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), q: q, decider: fd, wake: make(chan struct{}, 1), deciding: map[string]failing{}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s.dispatch(ctx) // until ctx ends
	if n := fd.looked.Load(); n != dispatchBatch {
		t.Errorf("the dispatcher looked at deliveries %d times in 0.5 s, want %d (one read of the batch)", n, dispatchBatch)
	}
}

// asideDecider sets aside deliveries for one repository, and remembers
// what it was given to decide.
type asideDecider struct {
	mu  sync.Mutex
	got map[string]trigger.Delivery
}

func (a *asideDecider) Decide(_ context.Context, d trigger.Delivery) ([]trigger.Request, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got[d.ID] = d
	if note, ok := a.SetAside(d); ok {
		return nil, note, nil
	}
	return nil, "decided from its body", nil
}

func (*asideDecider) SetAside(d trigger.Delivery) (string, bool) {
	return "not built here", d.Repo == "o/elsewhere"
}

// TestDispatcherSetsAsideFromTheEntry: a delivery the decider sets aside
// by its repository is decided and stored as ignored without its record
// or body being read; the others are decided from their whole record.
func TestDispatcherSetsAsideFromTheEntry(t *testing.T) {
	q, err := queue.Open(filepath.Join(t.TempDir(), "queue.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i, repo := range []string{"o/elsewhere", "o/built", ""} {
		d := trigger.Delivery{ID: fmt.Sprintf("d%d", i), Event: "push", HookID: "7", Repo: repo, Body: fmt.Appendf(nil, `{"n":%d}`, i)}
		if _, err := q.Accept(context.Background(), d, ""); err != nil {
			t.Fatal(err)
		}
	}
	ad := &asideDecider{got: map[string]trigger.Delivery{}}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), q: q, decider: ad, wake: make(chan struct{}, 1), deciding: map[string]failing{}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.dispatch(ctx); close(stopped) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		left, err := q.Undispatched(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	cancel()
	<-stopped
	ad.mu.Lock()
	defer ad.mu.Unlock()
	for id, whole := range map[string]bool{"d0": false, "d1": true, "d2": true} {
		got := ad.got[id]
		if (len(got.Body) > 0 && got.HookID == "7") != whole {
			t.Errorf("%s was decided from %+v; want its whole record: %v", id, got, whole)
		}
		sd, _, err := q.Delivery(context.Background(), id)
		if err != nil || sd.State != queue.DeliveryIgnored {
			t.Errorf("%s after dispatch: %+v, %v", id, sd, err)
		}
	}
	if sd, _, _ := q.Delivery(context.Background(), "d0"); sd == nil || sd.Note != "not built here" {
		t.Errorf("the delivery set aside has note %q", sd.Note)
	}
}

// The queue's commits and stored deliveries are metrics: what a group
// commit batches is their ratio.
func TestQueueMetrics(t *testing.T) {
	q, err := queue.Open(filepath.Join(t.TempDir(), "queue.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range 3 {
		if _, err := q.Accept(context.Background(), trigger.Delivery{ID: fmt.Sprintf("d%d", i), Event: "push", Body: fmt.Appendf(nil, `{"n":%d}`, i)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	m := newMetrics(q.Depth, q.Stats)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			if c := mt.GetCounter(); c != nil {
				got[f.GetName()] = c.GetValue()
			}
		}
	}
	if got["accord_queue_deliveries_stored_total"] != 3 || got["accord_queue_commits_total"] < 1 || got["accord_queue_commits_total"] > float64(q.Stats().Commits) {
		t.Errorf("queue metrics: stored %v, commits %v (queue: %+v)", got["accord_queue_deliveries_stored_total"], got["accord_queue_commits_total"], q.Stats())
	}
}
