package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/accord-build/accord/internal/trigger"
)

// change applies fn to the run id in one committed transaction and
// returns the run as stored.
func (q *Queue) change(ctx context.Context, id, doing string, fn func(j *Job, now time.Time) error) (*Job, error) {
	if err := q.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s run %s: %w", doing, id, err)
	}
	seq, ok := jobSeq(id)
	if !ok {
		return nil, fmt.Errorf("%s run %q: %w", doing, id, ErrNotFound)
	}
	var out *Job
	err := q.update(func(tx *bolt.Tx) error {
		j, err := jobTx(tx, seq)
		if err != nil {
			return err
		}
		old := j.State
		if err := fn(j, q.clock()); err != nil {
			return err
		}
		out = j
		return writeJob(tx, seq, old, j)
	})
	if err != nil {
		return nil, fmt.Errorf("%s run %s: %w", doing, id, err)
	}
	return out, nil
}

// Finish ends a run in a final state (Succeeded, Failed, Cancelled or
// Errored) with what it did; rec may be nil. The run must be running, or
// queued (ended before it started). Succeeded and Failed clear the Error
// of an earlier attempt; Cancelled and Errored keep it.
func (q *Queue) Finish(ctx context.Context, id string, state JobState, rec *Record) error {
	switch state {
	case Succeeded, Failed, Cancelled, Errored:
	default:
		return fmt.Errorf("finishing run %s: state %q is not final: use succeeded, failed, cancelled or errored", id, state)
	}
	_, err := q.change(ctx, id, "finishing", func(j *Job, now time.Time) error {
		if j.State.Final() {
			return fmt.Errorf("it is already %s: %w", j.State, ErrState)
		}
		j.State, j.Record, j.Finished = state, rec, now
		if state == Succeeded || state == Failed {
			j.Error = "" // the last attempt ran to its end
		}
		return nil
	})
	return err
}

// Retry puts a running run back in the queue after an infrastructure
// failure, to be started again no sooner than after (the caller's
// backoff); cause is kept as its Error. The attempt counts.
func (q *Queue) Retry(ctx context.Context, id string, cause error, after time.Duration) error {
	_, err := q.change(ctx, id, "retrying", func(j *Job, now time.Time) error {
		if j.State != Running {
			return fmt.Errorf("it is %s, not running: %w", j.State, ErrState)
		}
		j.State, j.Started, j.NotBefore = Queued, time.Time{}, time.Time{}
		if after > 0 {
			j.NotBefore = now.Add(after)
		}
		if cause != nil {
			j.Error = cause.Error()
		}
		return nil
	})
	if err == nil {
		q.notify()
	}
	return err
}

// Requeue puts a running run back in the queue at once, the attempt not
// counted: for a graceful shutdown that stops a run it cannot finish.
func (q *Queue) Requeue(ctx context.Context, id string) error {
	_, err := q.change(ctx, id, "requeueing", func(j *Job, _ time.Time) error {
		if j.State != Running {
			return fmt.Errorf("it is %s, not running: %w", j.State, ErrState)
		}
		j.State, j.Started, j.NotBefore = Queued, time.Time{}, time.Time{}
		if j.Attempt > 0 {
			j.Attempt--
		}
		return nil
	})
	if err == nil {
		q.notify()
	}
	return err
}

// SetCheckRun records the GitHub check run reporting run id.
func (q *Queue) SetCheckRun(ctx context.Context, id string, checkRunID int64) error {
	_, err := q.change(ctx, id, "setting the check run of", func(j *Job, _ time.Time) error {
		j.CheckRunID = checkRunID
		return nil
	})
	return err
}

// Recover, at start, puts every run left Running by a process that
// stopped (crash, kill -9) back in the queue, to be run again from the
// start: nothing of the interrupted attempt is kept but its count and a
// note in Error. It returns how many runs it put back.
func (q *Queue) Recover(ctx context.Context) (int, error) {
	if err := q.begin(ctx); err != nil {
		return 0, fmt.Errorf("recovering interrupted runs: %w", err)
	}
	var n int
	err := q.update(func(tx *bolt.Tx) error {
		n = 0
		var seqs []uint64
		err := tx.Bucket(bucketRunning).ForEach(func(k, _ []byte) error {
			seqs = append(seqs, binary.BigEndian.Uint64(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			j, err := jobTx(tx, seq)
			if err != nil {
				return err
			}
			j.Error = fmt.Sprintf("attempt %d was interrupted (the server stopped): run again from the start", j.Attempt)
			j.State, j.Started, j.NotBefore, j.Record = Queued, time.Time{}, time.Time{}, nil
			if err := writeJob(tx, seq, Running, j); err != nil {
				return err
			}
		}
		n = len(seqs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recovering interrupted runs: %w", err)
	}
	if n > 0 {
		q.notify()
	}
	return n, nil
}

// Job returns the run with this id; found is false when there is none.
func (q *Queue) Job(ctx context.Context, id string) (*Job, bool, error) {
	if err := q.begin(ctx); err != nil {
		return nil, false, fmt.Errorf("reading run %s: %w", id, err)
	}
	seq, ok := jobSeq(id)
	if !ok {
		return nil, false, nil
	}
	var j Job
	var found bool
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx.Bucket(bucketJobs), seqKey(seq), &j)
		return err
	})
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("reading run %s: %w", id, err)
		}
		return nil, false, err
	}
	return &j, true, nil
}

// Jobs returns the most recent runs, newest first, at most limit of them
// (all when limit <= 0).
func (q *Queue) Jobs(ctx context.Context, limit int) ([]Job, error) {
	if err := q.begin(ctx); err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	var jobs []Job
	err := q.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		c := b.Cursor()
		for k, _ := c.Last(); k != nil && (limit <= 0 || len(jobs) < limit); k, _ = c.Prev() {
			var j Job
			if _, err := getJSON(b, k, &j); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	return jobs, nil
}

// JobsOf returns the runs a delivery started, in the order they were
// made; none when it started none or is unknown.
func (q *Queue) JobsOf(ctx context.Context, deliveryID string) ([]Job, error) {
	sd, found, err := q.Delivery(ctx, deliveryID)
	if err != nil || !found {
		return nil, err
	}
	var jobs []Job
	err = q.db.View(func(tx *bolt.Tx) error {
		var err error
		jobs, err = jobsByID(tx, sd.Runs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs of delivery %q: %w", deliveryID, err)
	}
	return jobs, nil
}

// Depth returns how many runs are queued (delayed retries included) and
// how many are running.
func (q *Queue) Depth(ctx context.Context) (queued, running int, err error) {
	if err := q.begin(ctx); err != nil {
		return 0, 0, fmt.Errorf("measuring the queue: %w", err)
	}
	err = q.db.View(func(tx *bolt.Tx) error {
		queued = tx.Bucket(bucketQueued).Stats().KeyN
		running = tx.Bucket(bucketRunning).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measuring the queue: %w", err)
	}
	return queued, running, nil
}

// RequestOf returns the request run runID built, for a rerun; found is
// false when there is no such run. It implements the policy's Runs.
func (q *Queue) RequestOf(ctx context.Context, runID string) (*trigger.Request, bool, error) {
	j, found, err := q.Job(ctx, runID)
	if err != nil || !found {
		return nil, false, err
	}
	return &j.Request, true, nil
}
