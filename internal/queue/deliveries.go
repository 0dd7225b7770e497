package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/accord-build/accord/internal/trigger"
)

// Accept stores d durably: it returns only once d is committed with
// fsync, so the caller may then reply 2xx. Concurrent accepts share one
// commit (group commit, see commitLoop). A delivery id is
// stored once, forever: a redelivery or a replay returns duplicate=true
// and changes nothing. ignored != "" stores d as ignored, with that note;
// otherwise d waits in [Queue.Undispatched] for the dispatcher. A zero
// d.Received is set to the queue's clock; it is stored in UTC. Accept
// implements the intake's Acceptor.
func (q *Queue) Accept(ctx context.Context, d trigger.Delivery, ignored string) (duplicate bool, err error) {
	if err := q.begin(ctx); err != nil {
		return false, fmt.Errorf("accepting delivery %q: %w", d.ID, err)
	}
	if d.ID == "" || len(d.ID) > bolt.MaxKeySize {
		return false, fmt.Errorf("accepting delivery: id of %d bytes: it must be 1 to %d bytes (X-GitHub-Delivery)", len(d.ID), bolt.MaxKeySize)
	}
	if d.Received.IsZero() {
		d.Received = q.clock()
	}
	d.Received = d.Received.UTC().Round(0)
	sd := StoredDelivery{Delivery: d, State: DeliveryAccepted}
	if ignored != "" {
		sd.State, sd.Note = DeliveryIgnored, ignored
	}
	// GitHub signs the body, not the headers: the same signed body sent
	// again under a new X-GitHub-Delivery is a replay too.
	res := q.submit(&acceptReq{sd: sd, digest: bodyDigest(d.Event, d.Body), done: make(chan acceptRes, 1)})
	if res.err != nil {
		return false, fmt.Errorf("accepting delivery %q: %w", d.ID, res.err)
	}
	stored := res.stored
	return !stored, nil
}

// bodyDigest identifies a delivery's signed content.
func bodyDigest(event string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(event))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}

// acceptTx stores sd unless its id, or its event and body, are already
// there.
func acceptTx(tx *bolt.Tx, sd StoredDelivery, digest []byte) (stored bool, err error) {
	key := []byte(sd.ID)
	if tx.Bucket(bucketDeliveries).Get(key) != nil || tx.Bucket(bucketDigests).Get(digest) != nil {
		return false, nil
	}
	if err := tx.Bucket(bucketDigests).Put(digest, key); err != nil {
		return false, err
	}
	if sd.Arrival, err = tx.Bucket(bucketDeliveries).NextSequence(); err != nil {
		return false, err
	}
	// The body goes in a bucket of its own, raw (a third smaller than in
	// the record's JSON, base64), never rewritten, under its arrival
	// number: appended in order, a commit writes only new pages for
	// bodies, filled to the brim, where keys in random order (ids) would
	// rewrite half-full pages of earlier bodies at every commit.
	bodies := tx.Bucket(bucketBodies)
	bodies.FillPercent = 1
	if err := bodies.Put(seqKey(sd.Arrival), sd.Body); err != nil {
		return false, err
	}
	if err := putDeliveryTx(tx, sd); err != nil {
		return false, err
	}
	if sd.State == DeliveryAccepted {
		if err := tx.Bucket(bucketPending).Put(seqKey(sd.Arrival), key); err != nil {
			return false, err
		}
	}
	return true, nil
}

// putDeliveryTx stores sd's record (its body is stored once, by acceptTx).
func putDeliveryTx(tx *bolt.Tx, sd StoredDelivery) error {
	sd.Body = nil
	return putJSON(tx.Bucket(bucketDeliveries), []byte(sd.ID), sd)
}

// deliveryTx reads the delivery id with its body.
func deliveryTx(tx *bolt.Tx, id []byte) (*StoredDelivery, bool, error) {
	var sd StoredDelivery
	found, err := getJSON(tx.Bucket(bucketDeliveries), id, &sd)
	if err != nil || !found {
		return nil, false, err
	}
	body := tx.Bucket(bucketBodies).Get(seqKey(sd.Arrival))
	if body == nil {
		return nil, true, fmt.Errorf("delivery %q has no body: the database is damaged", id)
	}
	sd.Body = bytes.Clone(body)
	return &sd, true, nil
}

// Seen says whether a delivery with this id was ever accepted (in any
// state).
func (q *Queue) Seen(ctx context.Context, id string) (bool, error) {
	if err := q.begin(ctx); err != nil {
		return false, fmt.Errorf("looking up delivery %q: %w", id, err)
	}
	var seen bool
	err := q.db.View(func(tx *bolt.Tx) error {
		seen = id != "" && tx.Bucket(bucketDeliveries).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("looking up delivery %q: %w", id, err)
	}
	return seen, nil
}

// Delivery returns the stored delivery with this id; found is false when
// there is none.
func (q *Queue) Delivery(ctx context.Context, id string) (*StoredDelivery, bool, error) {
	if err := q.begin(ctx); err != nil {
		return nil, false, fmt.Errorf("reading delivery %q: %w", id, err)
	}
	var sd *StoredDelivery
	var found bool
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		sd, found, err = deliveryTx(tx, []byte(id))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("reading delivery %q: %w", id, err)
	}
	return sd, found, nil
}

// Undispatched returns the accepted deliveries not yet dispatched, in
// the order they arrived: the dispatcher's work, also after a restart.
func (q *Queue) Undispatched(ctx context.Context) ([]StoredDelivery, error) {
	return q.UndispatchedN(ctx, 0)
}

// UndispatchedN is [Queue.Undispatched] for the first limit deliveries
// only (all when limit <= 0): a dispatcher behind a burst reads a batch at
// a time, not the whole backlog at every turn.
func (q *Queue) UndispatchedN(ctx context.Context, limit int) ([]StoredDelivery, error) {
	if err := q.begin(ctx); err != nil {
		return nil, fmt.Errorf("listing undispatched deliveries: %w", err)
	}
	var out []StoredDelivery
	err := q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, id := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, id = c.Next() {
			sd, found, err := deliveryTx(tx, id)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("pending delivery %q has no record: the database is damaged", id)
			}
			out = append(out, *sd)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing undispatched deliveries: %w", err)
	}
	return out, nil
}

// Ignored is an accepted delivery that builds nothing, and why.
type Ignored struct {
	ID   string
	Note string
}

// Ignore dispatches deliveries that build nothing, all in one transaction
// (what [Queue.Dispatch] with no requests does to each): the dispatcher
// of a burst of deliveries that match no repository takes one commit for
// them, not one each, and leaves the writer to the intake. A delivery no
// longer accepted is left as it is.
func (q *Queue) Ignore(ctx context.Context, ds []Ignored) error {
	if err := q.begin(ctx); err != nil {
		return fmt.Errorf("dispatching %d ignored deliveries: %w", len(ds), err)
	}
	err := q.update(func(tx *bolt.Tx) error {
		for _, d := range ds {
			if _, _, err := q.dispatchTx(tx, d.ID, nil, d.Note); err != nil {
				return fmt.Errorf("delivery %q: %w", d.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dispatching %d ignored deliveries: %w", len(ds), err)
	}
	return nil
}

// Dispatch turns an accepted delivery into runs, in one transaction: each
// request becomes a queued [Job] with a new id ("r<seq>"; its DeliveryID
// set to deliveryID), the delivery becomes dispatched with note (ignored,
// when reqs is empty), and for each new run with a Supersede key the
// older queued runs with that key are cancelled (SupersededBy set;
// running ones are left alone). Dispatching a delivery that is no longer
// accepted creates nothing and returns the runs it already has, so a
// dispatcher that crashed after the commit may simply do it again.
func (q *Queue) Dispatch(ctx context.Context, deliveryID string, reqs []trigger.Request, note string) ([]Job, error) {
	if err := q.begin(ctx); err != nil {
		return nil, fmt.Errorf("dispatching delivery %q: %w", deliveryID, err)
	}
	var jobs []Job
	var created bool
	err := q.update(func(tx *bolt.Tx) error {
		var err error
		jobs, created, err = q.dispatchTx(tx, deliveryID, reqs, note)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dispatching delivery %q: %w", deliveryID, err)
	}
	if created {
		q.notify()
	}
	return jobs, nil
}

// dispatchTx is Dispatch's transaction.
func (q *Queue) dispatchTx(tx *bolt.Tx, deliveryID string, reqs []trigger.Request, note string) ([]Job, bool, error) {
	var sd StoredDelivery
	found, err := getJSON(tx.Bucket(bucketDeliveries), []byte(deliveryID), &sd)
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, ErrNotFound
	}
	if sd.State != DeliveryAccepted {
		jobs, err := jobsByID(tx, sd.Runs)
		return jobs, false, err
	}
	now := q.clock()
	jobs := make([]Job, 0, len(reqs))
	for _, req := range reqs {
		req.DeliveryID = deliveryID
		j, err := newJobTx(tx, req, now)
		if err != nil {
			return nil, false, err
		}
		jobs = append(jobs, j)
		sd.Runs = append(sd.Runs, j.ID)
	}
	sd.State, sd.Note = DeliveryDispatched, note
	if len(reqs) == 0 {
		sd.State = DeliveryIgnored
	}
	if err := tx.Bucket(bucketPending).Delete(seqKey(sd.Arrival)); err != nil {
		return nil, false, err
	}
	if err := putDeliveryTx(tx, sd); err != nil {
		return nil, false, err
	}
	return jobs, len(jobs) > 0, nil
}
