package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// op is one step of the state machine test, applied to run r1.
type op struct {
	do          string // next, finish, retry, requeue, recover, checkrun
	state       JobState
	wantErr     error  // errors.Is
	wantErrText string // or a text the error must contain
	want        JobState
	wantAttempt int
}

func apply(ctx context.Context, q *Queue, o op) error {
	switch o.do {
	case "next":
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := q.Next(ctx)
		return err
	case "finish":
		return q.Finish(ctx, "r1", o.state, &Record{Pipeline: "p", Verdict: string(o.state)})
	case "retry":
		return q.Retry(ctx, "r1", errors.New("registry unreachable"), 0)
	case "requeue":
		return q.Requeue(ctx, "r1")
	case "recover":
		_, err := q.Recover(ctx)
		return err
	case "checkrun":
		return q.SetCheckRun(ctx, "r1", 77)
	}
	return fmt.Errorf("unknown op %q", o.do)
}

func TestStateMachine(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
	}{
		{"run and succeed", []op{
			{do: "next", want: Running, wantAttempt: 1},
			{do: "checkrun", want: Running, wantAttempt: 1},
			{do: "finish", state: Succeeded, want: Succeeded, wantAttempt: 1},
			{do: "finish", state: Failed, wantErr: ErrState, want: Succeeded, wantAttempt: 1},
			{do: "retry", wantErr: ErrState, want: Succeeded, wantAttempt: 1},
			{do: "requeue", wantErr: ErrState, want: Succeeded, wantAttempt: 1},
			{do: "recover", want: Succeeded, wantAttempt: 1},
			{do: "next", wantErr: context.DeadlineExceeded, want: Succeeded, wantAttempt: 1},
		}},
		{"retry counts the attempt", []op{
			{do: "next", want: Running, wantAttempt: 1},
			{do: "retry", want: Queued, wantAttempt: 1},
			{do: "next", want: Running, wantAttempt: 2},
			{do: "finish", state: Errored, want: Errored, wantAttempt: 2},
		}},
		{"requeue does not count it", []op{
			{do: "next", want: Running, wantAttempt: 1},
			{do: "requeue", want: Queued, wantAttempt: 0},
			{do: "next", want: Running, wantAttempt: 1},
			{do: "finish", state: Failed, want: Failed, wantAttempt: 1},
		}},
		{"recover puts a running run back", []op{
			{do: "next", want: Running, wantAttempt: 1},
			{do: "recover", want: Queued, wantAttempt: 1},
			{do: "recover", want: Queued, wantAttempt: 1},
			{do: "next", want: Running, wantAttempt: 2},
		}},
		{"a queued run can be ended, not retried", []op{
			{do: "retry", wantErr: ErrState, want: Queued},
			{do: "requeue", wantErr: ErrState, want: Queued},
			{do: "finish", state: Cancelled, want: Cancelled},
			{do: "next", wantErr: context.DeadlineExceeded, want: Cancelled},
		}},
		{"finish needs a final state", []op{
			{do: "next", want: Running, wantAttempt: 1},
			{do: "finish", state: Queued, wantErrText: "not final", want: Running, wantAttempt: 1},
			{do: "finish", state: Running, wantErrText: "not final", want: Running, wantAttempt: 1},
			{do: "finish", state: "done", wantErrText: "not final", want: Running, wantAttempt: 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			q, _ := openTest(t)
			mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
			for i, o := range c.ops {
				err := apply(ctx, q, o)
				switch {
				case o.wantErrText != "":
					if err == nil || !strings.Contains(err.Error(), o.wantErrText) {
						t.Fatalf("op %d %s: %v, want an error saying %q", i, o.do, err, o.wantErrText)
					}
				case !errors.Is(err, o.wantErr):
					t.Fatalf("op %d %s: %v, want %v", i, o.do, err, o.wantErr)
				}
				j := mustJob(t, q, "r1")
				if j.State != o.want || j.Attempt != o.wantAttempt {
					t.Fatalf("op %d %s: %s attempt %d, want %s attempt %d", i, o.do, j.State, j.Attempt, o.want, o.wantAttempt)
				}
				checkIndexes(t, q)
			}
		})
	}
}

// checkIndexes checks that Depth agrees with the runs' states.
func checkIndexes(t *testing.T, q *Queue) {
	t.Helper()
	jobs, err := q.Jobs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var queued, running int
	for _, j := range jobs {
		switch j.State {
		case Queued:
			queued++
		case Running:
			running++
		}
	}
	gq, gr, err := q.Depth(context.Background())
	if err != nil || gq != queued || gr != running {
		t.Fatalf("Depth = %d, %d, %v; the runs say %d queued, %d running", gq, gr, err, queued, running)
	}
}

func TestRunFields(t *testing.T) {
	ctx := context.Background()
	q, clk := openTest(t)
	mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
	clk.Advance(time.Minute)
	if _, err := q.Next(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := q.Retry(ctx, "r1", errors.New("git fetch: connection refused"), time.Second); err != nil {
		t.Fatal(err)
	}
	j := mustJob(t, q, "r1")
	if !j.NotBefore.Equal(epoch.Add(2*time.Minute+time.Second)) || j.Error != "git fetch: connection refused" || !j.Started.IsZero() {
		t.Errorf("after Retry: NotBefore %v Error %q Started %v", j.NotBefore, j.Error, j.Started)
	}
	clk.Advance(time.Second)
	if _, err := q.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.SetCheckRun(ctx, "r1", 99); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	rec := &Record{Pipeline: "go-build", Builders: []string{"a", "b"}, Verdict: "released", Consensus: true, Verified: true}
	if err := q.Finish(ctx, "r1", Succeeded, rec); err != nil {
		t.Fatal(err)
	}
	j = mustJob(t, q, "r1")
	want := Job{ID: "r1", Request: request("o/a", "refs/heads/main"), State: Succeeded, Attempt: 2,
		Created: epoch, Started: epoch.Add(2*time.Minute + time.Second),
		Finished: epoch.Add(3*time.Minute + time.Second), Record: rec, CheckRunID: 99}
	want.Request.DeliveryID = "d1"
	if diff := cmp.Diff(want, *j); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	req, found, err := q.RequestOf(ctx, "r1")
	if err != nil || !found || *req != want.Request {
		t.Errorf("RequestOf(r1) = %+v, %v, %v", req, found, err)
	}
}

func TestUnknownRuns(t *testing.T) {
	ctx := context.Background()
	q, _ := openTest(t)
	mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
	for _, id := range []string{"", "r", "r0", "r01", "r+1", "r-1", "x1", "r2", "r18446744073709551616", "1", "R1"} {
		if j, found, err := q.Job(ctx, id); found || err != nil || j != nil {
			t.Errorf("Job(%q) = %v, %v, %v; want not found", id, j, found, err)
		}
		if _, found, err := q.RequestOf(ctx, id); found || err != nil {
			t.Errorf("RequestOf(%q) = %v, %v; want not found", id, found, err)
		}
		if err := q.Finish(ctx, id, Failed, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Finish(%q) = %v, want ErrNotFound", id, err)
		}
		if err := q.SetCheckRun(ctx, id, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetCheckRun(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if jobs, err := q.JobsOf(ctx, "unknown"); err != nil || len(jobs) != 0 {
		t.Errorf("JobsOf(unknown) = %v, %v", jobs, err)
	}
}

func TestJobsNewestFirst(t *testing.T) {
	ctx := context.Background()
	q, _ := openTest(t)
	for i := range 12 {
		mustDispatch(t, q, fmt.Sprintf("d%d", i), request("o/a", fmt.Sprintf("refs/heads/b%d", i)))
	}
	cases := []struct {
		limit int
		want  []string
	}{
		{3, []string{"r12", "r11", "r10"}},
		{1, []string{"r12"}},
		{0, []string{"r12", "r11", "r10", "r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"}},
		{-1, []string{"r12", "r11", "r10", "r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"}},
		{100, []string{"r12", "r11", "r10", "r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"}},
	}
	for _, c := range cases {
		jobs, err := q.Jobs(ctx, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if diff := cmp.Diff(c.want, ids); diff != "" {
			t.Errorf("Jobs(%d) (-want +got):\n%s", c.limit, diff)
		}
	}
}

func TestFinishKeepsError(t *testing.T) {
	ctx := context.Background()
	for state, keep := range map[JobState]bool{Succeeded: false, Failed: false, Cancelled: true, Errored: true} {
		t.Run(string(state), func(t *testing.T) {
			q, _ := openTest(t)
			mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
			for _, o := range []op{{do: "next"}, {do: "retry"}, {do: "next"}, {do: "finish", state: state}} {
				if err := apply(ctx, q, o); err != nil {
					t.Fatalf("%s: %v", o.do, err)
				}
			}
			if got := mustJob(t, q, "r1").Error; (got != "") != keep {
				t.Errorf("Error after finishing %s = %q, want kept: %v", state, got, keep)
			}
		})
	}
}
