package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/trigger"
)

func TestSupersede(t *testing.T) {
	ctx := context.Background()
	q, _ := openTest(t)
	main := request("o/a", "refs/heads/main")
	running := mustDispatch(t, q, "d-running", main)[0] // r1, taken by a worker below
	if j, err := q.Next(ctx); err != nil || j.ID != running.ID {
		t.Fatalf("Next = %v, %v", j, err)
	}
	retried := mustDispatch(t, q, "d-retried", main)[0] // r2, queued again after a retry
	if _, err := q.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, retried.ID, errors.New("flaky"), time.Hour); err != nil {
		t.Fatal(err)
	}
	queued := mustDispatch(t, q, "d-queued", main)[0]                                     // r3
	otherRef := mustDispatch(t, q, "d-other-ref", request("o/a", "refs/heads/mai"))[0]    // r4: key is a prefix of main's
	longerRef := mustDispatch(t, q, "d-longer", request("o/a", "refs/heads/main2"))[0]    // r5: main's key is a prefix of it
	otherRepo := mustDispatch(t, q, "d-other-repo", request("o/b", "refs/heads/main"))[0] // r6
	tag := request("o/a", "refs/heads/main")
	tag.Kind, tag.Supersede = trigger.KindTag, ""         // never superseded
	tagJob := mustDispatch(t, q, "d-tag", tag)[0]         // r7
	finished := mustDispatch(t, q, "d-finished", main)[0] // r8, supersedes r2, r3
	if err := q.Finish(ctx, finished.ID, Cancelled, nil); err != nil {
		t.Fatal(err)
	}
	// Two requests with one key in one delivery: the second wins.
	pair := mustDispatch(t, q, "d-pair", main, main) // r9 (cancelled by r10), r10

	want := map[string]struct {
		state JobState
		by    string
	}{
		running.ID:   {Running, ""},
		retried.ID:   {Cancelled, queued.ID},
		queued.ID:    {Cancelled, finished.ID},
		otherRef.ID:  {Queued, ""},
		longerRef.ID: {Queued, ""},
		otherRepo.ID: {Queued, ""},
		tagJob.ID:    {Queued, ""},
		finished.ID:  {Cancelled, ""},
		pair[0].ID:   {Cancelled, pair[1].ID},
		pair[1].ID:   {Queued, ""},
	}
	for id, w := range want {
		j := mustJob(t, q, id)
		if j.State != w.state || j.SupersededBy != w.by {
			t.Errorf("%s: %s superseded by %q, want %s by %q", id, j.State, j.SupersededBy, w.state, w.by)
		}
		if w.by != "" && j.Finished.IsZero() {
			t.Errorf("%s: superseded without a Finished time", id)
		}
	}
	checkIndexes(t, q)
}

// nextAsync calls Next in a goroutine.
func nextAsync(ctx context.Context, q *Queue) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := q.Next(ctx)
		done <- err
	}()
	return done
}

func TestNextWaitsWithoutPolling(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	done := nextAsync(ctx, q)
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Next returned %v with nothing queued", err)
	default:
	}
	if n := q.scans.Load(); n > 2 {
		t.Errorf("Next looked %d times in 300ms with nothing queued: it polls", n)
	}
	start := time.Now()
	mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Next took %v to see a dispatched run", d)
	}
}

func TestNextNotBefore(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
	if _, err := q.Next(ctx); err != nil {
		t.Fatal(err)
	}
	const backoff = 400 * time.Millisecond
	start := time.Now()
	if err := q.Retry(ctx, "r1", errors.New("flaky"), backoff); err != nil {
		t.Fatal(err)
	}
	j, err := q.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if j.ID != "r1" || d < backoff || d > backoff+time.Second {
		t.Errorf("Next = %s after %v, want r1 after about %v", j.ID, d, backoff)
	}
	if n := q.scans.Load(); n > 6 {
		t.Errorf("Next looked %d times while waiting out a backoff: it polls", n)
	}
}

func TestNextReadyBeforeDelayed(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	mustDispatch(t, q, "d1", request("o/a", "refs/heads/a"))
	if _, err := q.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, "r1", errors.New("flaky"), time.Hour); err != nil {
		t.Fatal(err)
	}
	mustDispatch(t, q, "d2", request("o/a", "refs/heads/b"))
	mustDispatch(t, q, "d3", request("o/a", "refs/heads/c"))
	for _, want := range []string{"r2", "r3"} {
		j, err := q.Next(ctx)
		if err != nil || j.ID != want {
			t.Fatalf("Next = %v, %v; want %s (oldest ready; r1 waits an hour)", j, err, want)
		}
	}
}

func TestNextEnds(t *testing.T) {
	cases := []struct {
		name string
		end  func(q *Queue, cancel context.CancelFunc)
		want error
	}{
		{"context cancelled", func(_ *Queue, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"queue closed", func(q *Queue, _ context.CancelFunc) { q.Close() }, ErrClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := openReal(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var dones []<-chan error
			for range 3 {
				dones = append(dones, nextAsync(ctx, q))
			}
			time.Sleep(50 * time.Millisecond)
			c.end(q, cancel)
			for _, done := range dones {
				select {
				case err := <-done:
					if !errors.Is(err, c.want) {
						t.Errorf("Next = %v, want %v", err, c.want)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("Next still waiting")
				}
			}
		})
	}
}

func TestNextWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := openReal(t)
	const runs, workers = 60, 6
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	finished := make(chan struct{}, runs)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := q.Next(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				got[j.ID]++
				mu.Unlock()
				if err := q.Finish(ctx, j.ID, Succeeded, nil); err != nil {
					t.Errorf("Finish(%s): %v", j.ID, err)
				}
				finished <- struct{}{}
			}
		}()
	}
	for i := range runs {
		mustDispatch(t, q, fmt.Sprintf("d%d", i), request("o/a", fmt.Sprintf("refs/heads/b%d", i)))
	}
	for range runs {
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Fatal("runs not finished")
		}
	}
	cancel()
	wg.Wait()
	for i := 1; i <= runs; i++ {
		if n := got[jobID(uint64(i))]; n != 1 {
			t.Errorf("%s handed out %d times", jobID(uint64(i)), n)
		}
	}
	if qd, rd, err := q.Depth(context.Background()); qd != 0 || rd != 0 || err != nil {
		t.Errorf("Depth = %d, %d, %v after all finished", qd, rd, err)
	}
}

// openReal opens a queue on the real clock (for Next's timers).
func openReal(t testing.TB) *Queue {
	t.Helper()
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func TestConcurrentAccept(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	const ids, goroutines = 200, 16
	var mu sync.Mutex
	stored := map[string]int{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				id := fmt.Sprintf("d%d", (i*7+g*13)%ids) // every goroutine, every id, different orders
				dup, err := q.Accept(ctx, delivery(id), "")
				if err != nil {
					t.Error(err)
					return
				}
				if !dup {
					mu.Lock()
					stored[id]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range ids {
		if n := stored[fmt.Sprintf("d%d", i)]; n != 1 {
			t.Errorf("d%d stored %d times", i, n)
		}
	}
	und, err := q.Undispatched(ctx)
	if err != nil || len(und) != ids {
		t.Fatalf("Undispatched: %d, %v; want %d", len(und), err, ids)
	}
	var arrivals []uint64
	for _, d := range und {
		arrivals = append(arrivals, d.Arrival)
	}
	want := make([]uint64, ids)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if diff := cmp.Diff(want, arrivals); diff != "" {
		t.Errorf("arrivals (-want +got):\n%s", diff)
	}
	st := q.Stats()
	if st.Accepted != ids || st.Commits >= ids*goroutines/4 {
		t.Errorf("Stats = %+v for %d accepts: want %d stored in far fewer commits", st, ids*goroutines, ids)
	}
	t.Logf("%d accepts in %d commits", ids*goroutines, st.Commits)
}
