package queue

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/accord-build/accord/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestJSONStable pins the stored encoding of deliveries and runs: a
// database written by this accord must stay readable by the next.
func TestJSONStable(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]any{
		"delivery.json": StoredDelivery{
			Delivery: trigger.Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Event: "push", HookID: "12345678",
				Received: at, Body: []byte(`{"ref":"refs/heads/main"}`)},
			State: DeliveryDispatched, Note: "push to refs/heads/main", Runs: []string{"r1"}, Arrival: 1,
		},
		"job.json": Job{
			ID: "r1", State: Succeeded, Attempt: 2, Error: "git fetch: connection refused",
			Request: trigger.Request{DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Repo: "octo/app", Kind: trigger.KindPullRequest,
				CloneURL: "https://github.com/fork/app.git", Ref: "refs/pull/7/head", Commit: strings.Repeat("b", 40), PullRequest: 7,
				Untrusted: true, Sender: "maintainer", Title: "<script>alert(1)</script>", Supersede: "octo/app refs/pull/7/head", Rerun: "r0"},
			Created: at, Started: at.Add(time.Second), Finished: at.Add(time.Minute), CheckRunID: 4242,
			Record: &Record{Pipeline: "go-build", PipelineDigest: "sha256:" + strings.Repeat("c", 64), Builders: []string{"primary", "validator"},
				Verdict: "built (untrusted, not released)", Consensus: true, Reason: "untrusted",
				Artifacts: []RecordArtifact{{Name: "app", Digest: "sha256:" + strings.Repeat("d", 64)}},
				Tasks: []RecordTask{{Builder: "primary", Name: "build", Status: "succeeded", Seconds: 1.5,
					Steps: []RecordStep{{Name: "compile", Status: "succeeded", Seconds: 1.25, Log: "ok\n"}}}},
				Evidence: []RecordEvidence{{Kind: "provenance", Artifact: "app", Ref: "sha256:" + strings.Repeat("e", 64)}},
				Seconds:  61},
		},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if diff := cmp.Diff(strings.TrimSpace(string(want)), string(got)); diff != "" {
				t.Errorf("encoding of %T changed (-golden +now):\n%s", v, diff)
			}
			// And the golden file decodes back to the same value.
			back := newLike(v)
			if err := json.Unmarshal(want, back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(v, deref(back)); diff != "" {
				t.Errorf("decoding the golden file (-want +got):\n%s", diff)
			}
		})
	}
}

func newLike(v any) any {
	if _, ok := v.(Job); ok {
		return &Job{}
	}
	return &StoredDelivery{}
}

func deref(v any) any {
	if j, ok := v.(*Job); ok {
		return *j
	}
	return *v.(*StoredDelivery)
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustDispatch(t, q, "d1", request("o/a", "refs/heads/main"))
	mustAccept(t, q, "d2", "")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := q.Accept(ctx, delivery("d3"), ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close = %v, want ErrClosed", err)
	}
	q, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if dup := mustAccept(t, q, "d1", ""); !dup {
		t.Error("d1 not a duplicate after reopening")
	}
	if und, _ := q.Undispatched(ctx); len(und) != 1 || und[0].ID != "d2" {
		t.Errorf("Undispatched after reopening = %v", und)
	}
	if j := mustDispatch(t, q, "d4", request("o/a", "refs/heads/dev")); j[0].ID != "r2" {
		t.Errorf("new run after reopening is %s, want r2 (ids never reused)", j[0].ID)
	}
}

func TestOpenRefused(t *testing.T) {
	dir := t.TempDir()
	held := filepath.Join(dir, "held.db")
	q, err := Open(held, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	newer := filepath.Join(dir, "newer.db")
	for file, version := range map[string]string{newer: "5"} {
		db, err := bolt.Open(file, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put([]byte("version"), []byte(version))
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		want       []string
	}{
		{"held by another", held, []string{held, "locked by another process"}},
		{"newer schema", newer, []string{newer, `schema version "5"`, "move the file away"}},
		{"not a database", notDB, []string{notDB}},
		{"no directory", filepath.Join(dir, "missing", "queue.db"), []string{"missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := Open(c.path, Options{LockTimeout: 100 * time.Millisecond})
			if err == nil {
				q.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestAcceptBatchRerun makes a group commit fail after accepts ran in it:
// bbolt rolls the transaction back, the committer tries each accept again
// on its own, and each must still be stored once, reported once, with
// arrivals 1..n.
func TestAcceptBatchRerun(t *testing.T) {
	ctx := context.Background()
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{MaxBatchDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 20
	var failed atomic.Bool
	q.failAccept = func(id string) error {
		if id == "d7" && failed.CompareAndSwap(false, true) {
			return errors.New("boom")
		}
		return nil
	}
	var wg sync.WaitGroup
	dups := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dups[i], errs[i] = q.Accept(ctx, delivery(fmt.Sprintf("d%d", i)), "")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("d%d: %v", i, err)
		}
	}
	if !failed.Load() {
		t.Fatal("the failing accept never ran")
	}
	if runs := q.runs.Load(); runs <= n {
		t.Fatalf("accepts ran %d times: the failure did not make the committer try them again", runs)
	}
	for i, dup := range dups {
		if dup {
			t.Errorf("d%d reported as a duplicate after a re-run", i)
		}
	}
	und, err := q.Undispatched(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, d := range und {
		if d.Arrival < 1 || d.Arrival > n || seen[d.Arrival] {
			t.Errorf("delivery %s has arrival %d", d.ID, d.Arrival)
		}
		seen[d.Arrival] = true
	}
	if len(und) != n || q.Stats().Accepted != n {
		t.Errorf("%d undispatched, %d accepted; want %d", len(und), q.Stats().Accepted, n)
	}
}

// TestWritesShareCommits: the dispatcher's and workers' changes go
// through the group committer with the accepts: writes waiting while a
// commit runs share the next one, and an update that fails there fails
// alone (the rest are committed together again, and stored once).
func TestWritesShareCommits(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	if _, err := q.Accept(ctx, delivery("first"), ""); err != nil {
		t.Fatal(err)
	}
	// Hold the committer in a transaction while the others queue up.
	entered, release := make(chan struct{}), make(chan struct{})
	holdErr := make(chan error, 1)
	go func() {
		holdErr <- q.update(func(*bolt.Tx) error {
			select {
			case <-entered:
			default:
				close(entered)
			}
			<-release
			return nil
		})
	}()
	<-entered
	before := q.Stats().Commits
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n+2)
	for i := range n {
		wg.Go(func() { _, errs[i] = q.Accept(ctx, delivery(fmt.Sprintf("d%d", i)), "") })
	}
	boom := errors.New("boom")
	wg.Go(func() { errs[n] = q.update(func(*bolt.Tx) error { return boom }) })
	wg.Go(func() { errs[n+1] = q.Ignore(ctx, []Ignored{{ID: "first", Note: "nothing to build"}}) })
	for len(q.acceptCh) < n+2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := <-holdErr; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs[:n] {
		if err != nil {
			t.Errorf("d%d: %v", i, err)
		}
	}
	if !errors.Is(errs[n], boom) {
		t.Errorf("the failing write returned %v, want its own error", errs[n])
	}
	if errs[n+1] != nil {
		t.Errorf("Ignore: %v", errs[n+1])
	}
	// The shared transaction failed on the one update; the others were
	// committed together again: the held commit, then one.
	if c := q.Stats().Commits - before; c != 2 {
		t.Errorf("%d commits after the hold, want 2 (the held one, then the other %d together)", c, n+1)
	}
	und, err := q.Undispatched(ctx)
	if err != nil || len(und) != n || q.Stats().Accepted != n+1 {
		t.Errorf("%d undispatched (%v), %d accepted; want %d and %d", len(und), err, q.Stats().Accepted, n, n+1)
	}
	if sd, _, _ := q.Delivery(ctx, "first"); sd == nil || sd.State != DeliveryIgnored {
		t.Errorf("first after Ignore: %+v", sd)
	}
}

// TestWritesShareOneCommit: waiting writes of every kind go into one commit.
func TestWritesShareOneCommit(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	entered, release := make(chan struct{}), make(chan struct{})
	go q.update(func(*bolt.Tx) error { close(entered); <-release; return nil })
	<-entered
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() { q.Accept(ctx, delivery(fmt.Sprintf("d%d", i)), "") })
	}
	wg.Go(func() { q.update(func(*bolt.Tx) error { return nil }) })
	for len(q.acceptCh) < 6 {
		time.Sleep(time.Millisecond)
	}
	before := q.Stats().Commits
	close(release)
	wg.Wait()
	if c := q.Stats().Commits - before; c != 2 { // the held one, then the six together
		t.Errorf("%d commits, want 2: the held one, then the six waiting together", c)
	}
}
