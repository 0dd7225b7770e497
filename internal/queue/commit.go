package queue

import (
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// acceptReq is one write waiting for the committer: an Accept (sd and
// digest), or, when fn is set, any other change (Queue.update).
type acceptReq struct {
	sd     StoredDelivery
	digest [32]byte
	stored storedForm
	fn     func(*bolt.Tx) error
	done   chan acceptRes // buffered: the committer never blocks on it
}

type acceptRes struct {
	stored bool
	err    error
}

// commitLoop is the group committer: one goroutine takes every write
// that is waiting (accepts, and the dispatcher's and workers' changes),
// applies them all, in the order they came, in one write transaction (one
// commit, two fdatasyncs) and answers each. Being the only writer, it
// also keeps the in-memory index of delivery ids and digests (index.go)
// in step with what is committed. While a commit runs, the next accepts
// queue up and go together into the next one, so under load a batch is as
// large as the load makes it and nobody waits for a timer; alone, an
// accept commits at once. (bbolt's own DB.Batch starts a new batch, with
// its own timer, for every caller arriving while a batch commits: under
// load that makes many small commits queued behind each other.)
func (q *Queue) commitLoop() {
	defer close(q.committerDone)
	batch := make([]*acceptReq, 0, q.maxBatch)
	for {
		select {
		case r := <-q.acceptCh:
			batch = append(batch[:0], r)
		case <-q.closed:
			q.refuseWaiting()
			return
		}
		batch = q.gather(batch)
		q.commitAccepts(batch)
	}
}

// gather adds the accepts already waiting (and, with a batch delay, those
// that arrive within it) up to the batch size.
func (q *Queue) gather(batch []*acceptReq) []*acceptReq {
	var deadline <-chan time.Time
	if q.batchDelay > 0 {
		t := time.NewTimer(q.batchDelay)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < q.maxBatch {
		if deadline == nil {
			select {
			case r := <-q.acceptCh:
				batch = append(batch, r)
				continue
			default:
				return batch
			}
		}
		select {
		case r := <-q.acceptCh:
			batch = append(batch, r)
		case <-deadline:
			deadline = nil
		}
	}
	return batch
}

// commitAccepts applies batch in one transaction. If it fails, nothing
// of it was stored (bbolt rolls back). A write of Queue.update that
// failed (often an expected error, such as ErrState) gets its error, as
// it would have alone after the writes before it, and the rest are
// committed together again; any other failure has each write tried in a
// transaction of its own, so one bad write fails alone. The index learns
// the stored deliveries once the commit is durable, before anyone is
// answered.
func (q *Queue) commitAccepts(batch []*acceptReq) {
	stored := make([]bool, len(batch))
	var added []indexEntry
	failed := -1 // the update whose closure failed
	err := q.commitTx(func(tx *bolt.Tx) error {
		added = added[:0]
		batchIdx := map[string]bool{}
		batchDigests := map[[32]byte]bool{}
		for i, r := range batch {
			if r.fn != nil {
				if err := r.fn(tx); err != nil {
					failed = i
					return err
				}
				continue
			}
			q.runs.Add(1)
			if q.failAccept != nil {
				if err := q.failAccept(r.sd.ID); err != nil {
					return fmt.Errorf("accepting delivery %q: %w", r.sd.ID, err)
				}
			}
			if batchIdx[r.sd.ID] || batchDigests[r.digest] || q.idx.has(r.sd.ID, r.digest) {
				continue
			}
			e, err := acceptTx(tx, r.sd, r.digest, r.stored)
			if err != nil {
				return fmt.Errorf("accepting delivery %q: %w", r.sd.ID, err)
			}
			stored[i] = true
			batchIdx[r.sd.ID], batchDigests[r.digest] = true, true
			added = append(added, e)
		}
		return nil
	})
	if err != nil && failed >= 0 && len(batch) > 1 {
		batch[failed].done <- acceptRes{err: err}
		q.commitAccepts(slices.Delete(slices.Clone(batch), failed, failed+1))
		return
	}
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			q.commitAccepts([]*acceptReq{r})
		}
		return
	}
	if err == nil {
		q.idx.add(added)
	}
	for i, r := range batch {
		if err == nil && stored[i] {
			q.accepts.Add(1)
		}
		r.done <- acceptRes{stored: err == nil && stored[i], err: err}
	}
}

// refuseWaiting answers the accepts still waiting when the queue closes.
func (q *Queue) refuseWaiting() {
	for {
		select {
		case r := <-q.acceptCh:
			r.done <- acceptRes{err: ErrClosed}
		default:
			return
		}
	}
}

// submit hands r to the committer and waits for its answer.
func (q *Queue) submit(r *acceptReq) acceptRes {
	select {
	case q.acceptCh <- r:
	case <-q.closed:
		return acceptRes{err: ErrClosed}
	}
	select {
	case res := <-r.done:
		return res
	case <-q.committerDone:
		// The committer answers everything it took before it stops; a
		// request sent as it stopped is refused here.
		select {
		case res := <-r.done:
			return res
		default:
			return acceptRes{err: ErrClosed}
		}
	}
}
