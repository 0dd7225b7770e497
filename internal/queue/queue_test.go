package queue

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/trigger"
)

// acceptor, runs and webRuns are the seams the intake, the policy and the
// status page define; the queue must keep fitting them.
type acceptor interface {
	Accept(ctx context.Context, d trigger.Delivery, ignored string) (duplicate bool, err error)
}

type runs interface {
	RequestOf(ctx context.Context, runID string) (*trigger.Request, bool, error)
}

// webRuns is what the status page reads.
type webRuns interface {
	Jobs(ctx context.Context, limit int) ([]Job, error)
	Job(ctx context.Context, id string) (*Job, bool, error)
}

var (
	_ acceptor = (*Queue)(nil)
	_ runs     = (*Queue)(nil)
	_ webRuns  = (*Queue)(nil)
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// openTest opens a queue in a temporary directory with a fake clock.
func openTest(t testing.TB) (*Queue, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: epoch}
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, clk
}

func delivery(id string) trigger.Delivery {
	// Bodies differ, as GitHub's do: the same body under two ids is a replay.
	return trigger.Delivery{ID: id, Event: "push", HookID: "42", Body: []byte(`{"ref":"refs/heads/main","delivery":"` + id + `"}`)}
}

func request(repo, ref string) trigger.Request {
	return trigger.Request{Repo: repo, Kind: trigger.KindPush, Ref: ref, Commit: strings.Repeat("a", 40),
		CloneURL: "https://example.test/" + repo + ".git", Supersede: repo + " " + ref}
}

// mustAccept accepts a delivery and fails the test on error.
func mustAccept(t testing.TB, q *Queue, id, ignored string) bool {
	t.Helper()
	dup, err := q.Accept(context.Background(), delivery(id), ignored)
	if err != nil {
		t.Fatal(err)
	}
	return dup
}

func mustDispatch(t testing.TB, q *Queue, id string, reqs ...trigger.Request) []Job {
	t.Helper()
	mustAccept(t, q, id, "")
	jobs, err := q.Dispatch(context.Background(), id, reqs, "dispatched")
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func mustJob(t testing.TB, q *Queue, id string) *Job {
	t.Helper()
	j, found, err := q.Job(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("Job(%s) = %v, %v", id, found, err)
	}
	return j
}

func TestAccept(t *testing.T) {
	ctx := context.Background()
	q, _ := openTest(t)
	type step struct {
		id, ignored string
		wantDup     bool
		wantState   DeliveryState
	}
	steps := []step{
		{id: "d1", wantState: DeliveryAccepted},
		{id: "d1", wantDup: true, wantState: DeliveryAccepted},
		{id: "d1", ignored: "changed my mind", wantDup: true, wantState: DeliveryAccepted},
		{id: "d2", ignored: "event watch is not built", wantState: DeliveryIgnored},
		{id: "d2", wantDup: true, wantState: DeliveryIgnored},
		{id: "d3", wantState: DeliveryAccepted},
	}
	for i, s := range steps {
		d := delivery(s.id)
		d.Body = []byte(`{"n":` + string(rune('0'+i)) + `}`)
		dup, err := q.Accept(ctx, d, s.ignored)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if dup != s.wantDup {
			t.Errorf("step %d: Accept(%s) duplicate = %v, want %v", i, s.id, dup, s.wantDup)
		}
		sd, found, err := q.Delivery(ctx, s.id)
		if err != nil || !found {
			t.Fatalf("step %d: Delivery(%s) = %v, %v", i, s.id, found, err)
		}
		if sd.State != s.wantState {
			t.Errorf("step %d: state %s, want %s", i, sd.State, s.wantState)
		}
	}
	// A duplicate changes nothing: the first body stays.
	sd, _, _ := q.Delivery(ctx, "d1")
	want := StoredDelivery{Delivery: delivery("d1"), State: DeliveryAccepted, Arrival: 1}
	want.Body, want.Received = []byte(`{"n":0}`), epoch
	if diff := cmp.Diff(want, *sd); diff != "" {
		t.Errorf("d1 after redeliveries (-want +got):\n%s", diff)
	}
	if st := q.Stats(); st.Accepted != 3 {
		t.Errorf("Stats().Accepted = %d, want 3", st.Accepted)
	}
	und, err := q.Undispatched(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range und {
		ids = append(ids, d.ID)
	}
	if diff := cmp.Diff([]string{"d1", "d3"}, ids); diff != "" {
		t.Errorf("Undispatched (-want +got):\n%s", diff)
	}
	for id, want := range map[string]bool{"d1": true, "d2": true, "d3": true, "d4": false, "": false} {
		if got, err := q.Seen(ctx, id); err != nil || got != want {
			t.Errorf("Seen(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}

func TestAcceptRefused(t *testing.T) {
	q, _ := openTest(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		id   string
		want string
	}{
		{"empty id", context.Background(), "", "X-GitHub-Delivery"},
		{"huge id", context.Background(), strings.Repeat("x", 40000), "X-GitHub-Delivery"},
		{"cancelled", cancelled, "d1", "context canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := q.Accept(c.ctx, delivery(c.id), "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Accept: %v, want an error saying %q", err, c.want)
			}
			if seen, _ := q.Seen(context.Background(), c.id); seen {
				t.Errorf("a refused delivery was stored")
			}
		})
	}
}

func TestDispatch(t *testing.T) {
	ctx := context.Background()
	q, _ := openTest(t)
	mustAccept(t, q, "ignored-at-intake", "event watch is not built")
	for _, id := range []string{"none", "two"} {
		mustAccept(t, q, id, "")
	}
	cases := []struct {
		name      string
		id        string
		reqs      []trigger.Request
		wantIDs   []string
		wantState DeliveryState
		wantErr   error
	}{
		{name: "no requests", id: "none", wantState: DeliveryIgnored},
		{name: "two requests", id: "two", reqs: []trigger.Request{request("o/a", "refs/heads/main"), request("o/b", "refs/heads/main")},
			wantIDs: []string{"r1", "r2"}, wantState: DeliveryDispatched},
		{name: "again: same runs, nothing new", id: "two", reqs: []trigger.Request{request("o/c", "refs/heads/main")},
			wantIDs: []string{"r1", "r2"}, wantState: DeliveryDispatched},
		{name: "again with no requests", id: "none", reqs: []trigger.Request{request("o/c", "refs/heads/main")}, wantState: DeliveryIgnored},
		{name: "ignored at intake", id: "ignored-at-intake", reqs: []trigger.Request{request("o/c", "refs/heads/main")}, wantState: DeliveryIgnored},
		{name: "unknown delivery", id: "nope", wantErr: ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			jobs, err := q.Dispatch(ctx, c.id, c.reqs, "why")
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Dispatch: %v, want %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			var ids []string
			for _, j := range jobs {
				ids = append(ids, j.ID)
				if j.Request.DeliveryID != c.id || j.State != Queued || !j.Created.Equal(epoch) {
					t.Errorf("run %s: delivery %q state %s created %v", j.ID, j.Request.DeliveryID, j.State, j.Created)
				}
			}
			if diff := cmp.Diff(c.wantIDs, ids); diff != "" {
				t.Errorf("runs (-want +got):\n%s", diff)
			}
			sd, _, _ := q.Delivery(ctx, c.id)
			if sd.State != c.wantState {
				t.Errorf("delivery state %s, want %s", sd.State, c.wantState)
			}
			of, err := q.JobsOf(ctx, c.id)
			if err != nil || len(of) != len(c.wantIDs) {
				t.Errorf("JobsOf = %d runs, %v; want %d", len(of), err, len(c.wantIDs))
			}
		})
	}
	if und, _ := q.Undispatched(ctx); len(und) != 0 {
		t.Errorf("Undispatched after dispatching all: %d left", len(und))
	}
	if all, _ := q.Jobs(ctx, 0); len(all) != 2 {
		t.Errorf("Jobs: %d runs, want 2 (a second dispatch must create nothing)", len(all))
	}
}

// TestAcceptReplayNewID: the signed body sent again under a new delivery
// id (headers are not signed) is a duplicate; another body, or the same
// body of another event, is not.
func TestAcceptReplayNewID(t *testing.T) {
	q, err := Open(filepath.Join(t.TempDir(), "q.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	body := []byte(`{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}`)
	for _, tc := range []struct {
		id, event string
		body      []byte
		dup       bool
	}{
		{"a", "push", body, false},
		{"b", "push", body, true},
		{"c", "push", append([]byte(`{"x":1,`), body[1:]...), false},
		{"d", "create", body, false},
		{"a", "push", []byte(`{}`), true},
	} {
		dup, err := q.Accept(ctx, trigger.Delivery{ID: tc.id, Event: tc.event, Body: tc.body}, "")
		if err != nil || dup != tc.dup {
			t.Errorf("Accept(%s, %s) = %v, %v; want duplicate %v", tc.id, tc.event, dup, err, tc.dup)
		}
	}
	if seen, _ := q.Seen(ctx, "b"); seen {
		t.Error("the replay under a new id was stored")
	}
}
