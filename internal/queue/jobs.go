package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/accord-build/accord/internal/trigger"
)

// newJobTx stores a new queued run for req and cancels the older queued
// runs it supersedes.
func newJobTx(tx *bolt.Tx, req trigger.Request, now time.Time) (Job, error) {
	seq, err := tx.Bucket(bucketJobs).NextSequence()
	if err != nil {
		return Job{}, err
	}
	j := Job{ID: jobID(seq), Request: req, State: Queued, Created: now}
	if req.Supersede != "" {
		if err := supersedeTx(tx, req.Supersede, j.ID, now); err != nil {
			return Job{}, err
		}
	}
	return j, writeJob(tx, seq, "", &j)
}

// supersedeTx cancels every queued run with key, in favour of newer.
func supersedeTx(tx *bolt.Tx, key, newer string, now time.Time) error {
	prefix := supersedePrefix(key)
	var older []uint64
	c := tx.Bucket(bucketSupersede).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+8 {
			older = append(older, binary.BigEndian.Uint64(k[len(prefix):]))
		}
	}
	for _, seq := range older {
		j, err := jobTx(tx, seq)
		if err != nil {
			return err
		}
		old := j.State
		j.State, j.SupersededBy, j.Finished = Cancelled, newer, now
		j.Error = "superseded by " + newer + " (a newer " + key + ")"
		if err := writeJob(tx, seq, old, j); err != nil {
			return err
		}
	}
	return nil
}

// supersedePrefix is the index prefix of a Supersede key: its length,
// then the key, so no key is a prefix of another.
func supersedePrefix(key string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(key))), key...)
}

// writeJob stores j, moving it from the indexes of state old ("" for a
// new run) to those of its state now.
func writeJob(tx *bolt.Tx, seq uint64, old JobState, j *Job) error {
	key := seqKey(seq)
	sup := append(supersedePrefix(j.Request.Supersede), key...)
	switch old {
	case Queued:
		if err := tx.Bucket(bucketQueued).Delete(key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSupersede).Delete(sup); err != nil {
			return err
		}
	case Running:
		if err := tx.Bucket(bucketRunning).Delete(key); err != nil {
			return err
		}
	}
	switch j.State {
	case Queued:
		var nb int64
		if !j.NotBefore.IsZero() {
			nb = j.NotBefore.UnixNano()
		}
		if err := tx.Bucket(bucketQueued).Put(key, binary.BigEndian.AppendUint64(nil, uint64(nb))); err != nil {
			return err
		}
		if j.Request.Supersede != "" {
			if err := tx.Bucket(bucketSupersede).Put(sup, nil); err != nil {
				return err
			}
		}
	case Running:
		if err := tx.Bucket(bucketRunning).Put(key, nil); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bucketJobs), key, j)
}

// jobTx reads the run with sequence number seq.
func jobTx(tx *bolt.Tx, seq uint64) (*Job, error) {
	var j Job
	found, err := getJSON(tx.Bucket(bucketJobs), seqKey(seq), &j)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("run %s: %w", jobID(seq), ErrNotFound)
	}
	return &j, nil
}

// jobsByID reads the runs with these ids, in that order.
func jobsByID(tx *bolt.Tx, ids []string) ([]Job, error) {
	jobs := make([]Job, 0, len(ids))
	for _, id := range ids {
		seq, ok := jobSeq(id)
		if !ok {
			return nil, fmt.Errorf("run id %q: %w", id, ErrNotFound)
		}
		j, err := jobTx(tx, seq)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, *j)
	}
	return jobs, nil
}

// Next blocks until a queued run is ready (its NotBefore passed), marks
// the oldest such run Running (Attempt+1, Started set) durably and returns
// it. It waits without polling: a dispatch, retry or requeue wakes it, and
// a timer the earliest NotBefore. Several workers may call it at once; no
// run goes to two of them. It returns ctx.Err() when ctx ends and
// ErrClosed when the queue is closed.
func (q *Queue) Next(ctx context.Context) (*Job, error) {
	for {
		wake := q.waiter() // before looking, so no notify is missed
		if err := q.begin(ctx); err != nil {
			return nil, fmt.Errorf("waiting for a run: %w", err)
		}
		j, wait, err := q.claim()
		if err != nil {
			if q.begin(ctx) == ErrClosed {
				err = ErrClosed // closed while looking
			}
			return nil, fmt.Errorf("taking the next run: %w", err)
		}
		if j != nil {
			return j, nil
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-q.closed:
		case <-wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// claim marks the oldest ready run Running. Without one, it returns how
// long until the earliest delayed run is ready (0: none is delayed).
func (q *Queue) claim() (*Job, time.Duration, error) {
	q.scans.Add(1)
	now := q.clock()
	var ready bool
	var wait time.Duration
	err := q.db.View(func(tx *bolt.Tx) error {
		_, ready, wait = readyTx(tx, now)
		return nil
	})
	if err != nil || !ready {
		return nil, wait, err
	}
	var j *Job
	err = q.update(func(tx *bolt.Tx) error {
		j = nil
		seq, ok, _ := readyTx(tx, now)
		if !ok {
			return nil // another worker took it
		}
		var err error
		if j, err = jobTx(tx, seq); err != nil {
			return err
		}
		j.State, j.Attempt, j.Started, j.NotBefore = Running, j.Attempt+1, now, time.Time{}
		return writeJob(tx, seq, Queued, j)
	})
	if err != nil {
		return nil, 0, err
	}
	return j, 0, nil
}

// readyTx finds the oldest queued run whose NotBefore has passed, or how
// long until the earliest one will be ready.
func readyTx(tx *bolt.Tx, now time.Time) (seq uint64, ok bool, wait time.Duration) {
	c := tx.Bucket(bucketQueued).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		nb := int64(binary.BigEndian.Uint64(v))
		if nb <= now.UnixNano() {
			return binary.BigEndian.Uint64(k), true, 0
		}
		if d := time.Duration(nb - now.UnixNano()); wait == 0 || d < wait {
			wait = d
		}
	}
	return 0, false, wait
}
