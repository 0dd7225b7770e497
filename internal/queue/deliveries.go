package queue

import (
	"context"
	"crypto/sha256"
	"encoding/json"
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
	// What can be done before the committer is done here, by each
	// caller at once: the committer is the one writer.
	form, err := formOf(sd)
	if err != nil {
		return false, fmt.Errorf("accepting delivery %q: %w", d.ID, err)
	}
	res := q.submit(&acceptReq{sd: sd, digest: bodyDigest(d.Event, d.Body), stored: form, done: make(chan acceptRes, 1)})
	// Answered: the commit is over, nothing holds the encoded body.
	putBodyBuf(form.body)
	if res.err != nil {
		return false, fmt.Errorf("accepting delivery %q: %w", d.ID, res.err)
	}
	stored := res.stored
	return !stored, nil
}

// bodyDigest identifies a delivery's signed content.
func bodyDigest(event string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(event))
	h.Write([]byte{0})
	h.Write(body)
	return [32]byte(h.Sum(nil))
}

// storedForm is what acceptTx writes for a delivery, made before it is
// handed to the committer.
type storedForm struct {
	record  []byte // the record's JSON, without its arrival number (its key)
	body    []byte // encodeBody, in a buffer of bodyBufs
	pending []byte // pendingValue, for a delivery that waits for the dispatcher
}

// formOf makes sd's stored form.
func formOf(sd StoredDelivery) (storedForm, error) {
	body := sd.Body
	sd.Body, sd.Arrival = nil, 0
	rec, err := json.Marshal(sd)
	if err != nil {
		return storedForm{}, fmt.Errorf("encoding its record: %w", err)
	}
	form := storedForm{record: rec, body: appendBody(getBodyBuf(), body)}
	if sd.State == DeliveryAccepted {
		form.pending = pendingValue(sd.Delivery)
	}
	return form, nil
}

// acceptTx stores sd, a delivery the index does not know (by id or by
// digest), in its stored form under the next arrival number, and returns
// its keys for the index. Everything it writes is appended in arrival
// order: the record, the body, the keys and, while accepted, the pending
// mark.
func acceptTx(tx *bolt.Tx, sd StoredDelivery, digest [32]byte, form storedForm) (indexEntry, error) {
	records := tx.Bucket(bucketDeliveries)
	n, err := records.NextSequence()
	if err != nil {
		return indexEntry{}, err
	}
	e := indexEntry{arrival: n, digest: digest, id: sd.ID}
	type put struct{ bucket, value []byte }
	puts := []put{{bucketDeliveries, form.record}, {bucketBodies, form.body}, {bucketKeys, keysValue(e)}}
	if sd.State == DeliveryAccepted {
		puts = append(puts, put{bucketPending, form.pending})
	}
	key := seqKey(n)
	for _, put := range puts {
		b := tx.Bucket(put.bucket)
		b.FillPercent = 1
		if err := b.Put(key, put.value); err != nil {
			return indexEntry{}, err
		}
	}
	return e, nil
}

// putDeliveryTx stores sd's record under its arrival number (its body is
// stored once, by acceptTx).
func putDeliveryTx(tx *bolt.Tx, sd StoredDelivery) error {
	sd.Body = nil
	b := tx.Bucket(bucketDeliveries)
	b.FillPercent = 1
	return putJSON(b, seqKey(sd.Arrival), sd)
}

// outcome is what the dispatcher made of an accepted delivery: stored
// apart from its record, which is then never rewritten (the dispatcher
// of a burst writes a few bytes a delivery and decodes nothing).
type outcome struct {
	State DeliveryState `json:"state"`
	Note  string        `json:"note,omitempty"`
	Runs  []string      `json:"runs,omitempty"`
}

// outcomeTx reads the outcome of the delivery that arrived n-th.
func outcomeTx(tx *bolt.Tx, n uint64) (outcome, bool, error) {
	var o outcome
	found, err := getJSON(tx.Bucket(bucketOutcomes), seqKey(n), &o)
	return o, found, err
}

// recordTx reads the delivery that arrived n-th, without its body: its
// record as accepted, and what the dispatcher made of it, if it did.
func recordTx(tx *bolt.Tx, n uint64) (StoredDelivery, bool, error) {
	var sd StoredDelivery
	found, err := getJSON(tx.Bucket(bucketDeliveries), seqKey(n), &sd)
	sd.Arrival = n
	if err != nil || !found {
		return sd, found, err
	}
	o, dispatched, err := outcomeTx(tx, n)
	if dispatched {
		sd.State, sd.Note, sd.Runs = o.State, o.Note, o.Runs
	}
	return sd, true, err
}

// deliveryTx reads the delivery that arrived n-th, with its body.
func deliveryTx(tx *bolt.Tx, n uint64) (*StoredDelivery, bool, error) {
	sd, found, err := recordTx(tx, n)
	if err != nil || !found {
		return nil, found, err
	}
	if err := bodyTx(tx, &sd); err != nil {
		return nil, true, err
	}
	return &sd, true, nil
}

// bodyTx reads sd's body into it.
func bodyTx(tx *bolt.Tx, sd *StoredDelivery) error {
	body, err := decodeBody(tx.Bucket(bucketBodies).Get(seqKey(sd.Arrival)))
	if err != nil {
		return fmt.Errorf("delivery %q: %w", sd.ID, err)
	}
	sd.Body = body
	return nil
}

// Seen says whether a delivery with this id was ever accepted (in any
// state).
func (q *Queue) Seen(ctx context.Context, id string) (bool, error) {
	if err := q.begin(ctx); err != nil {
		return false, fmt.Errorf("looking up delivery %q: %w", id, err)
	}
	var seen bool
	err := q.db.View(func(tx *bolt.Tx) error {
		n, ok := q.idx.arrival(id)
		seen = ok && tx.Bucket(bucketDeliveries).Get(seqKey(n)) != nil
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
	n, ok := q.idx.arrival(id)
	if !ok {
		return nil, false, nil
	}
	var sd *StoredDelivery
	var found bool
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		sd, found, err = deliveryTx(tx, n)
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
	return q.UndispatchedN(ctx, 0, nil)
}

// UndispatchedN is [Queue.Undispatched] for the first limit deliveries
// only (all when limit <= 0): a dispatcher behind a burst reads a batch at
// a time, not the whole backlog at every turn. A delivery is read whole
// (its record and body) only when whole (nil: always) says so of its
// [Pending] entry; otherwise it comes as that entry alone (ID, Event,
// Repo, Arrival and State set): one that the dispatcher can set aside
// from its entry costs neither a record nor a body.
func (q *Queue) UndispatchedN(ctx context.Context, limit int, whole func(Pending) bool) ([]StoredDelivery, error) {
	if err := q.begin(ctx); err != nil {
		return nil, fmt.Errorf("listing undispatched deliveries: %w", err)
	}
	var out []StoredDelivery
	err := q.db.View(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketDeliveries)
		c := tx.Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			p, err := decodePending(k, v)
			if err != nil {
				return err
			}
			sd := p.delivery()
			if whole != nil && !whole(p) {
				out = append(out, sd)
				continue
			}
			// Waiting, so not dispatched: no outcome to read.
			found, err := getJSON(records, k, &sd)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("pending delivery %q has no record: the database is damaged", p.ID)
			}
			sd.Arrival = p.Arrival
			if err := bodyTx(tx, &sd); err != nil {
				return err
			}
			out = append(out, sd)
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
	// Only the committer runs this: the index knows every delivery
	// committed before this transaction (not one accepted earlier in it;
	// the dispatcher learns of deliveries from committed reads).
	n, ok := q.idx.arrival(deliveryID)
	if !ok {
		return nil, false, ErrNotFound
	}
	key := seqKey(n)
	if tx.Bucket(bucketPending).Get(key) == nil {
		// No longer accepted: what it started before (in its outcome, or
		// in its record when it was dispatched before version 3).
		sd, _, err := recordTx(tx, n)
		if err != nil {
			return nil, false, err
		}
		jobs, err := jobsByID(tx, sd.Runs)
		return jobs, false, err
	}
	now := q.clock()
	o := outcome{State: DeliveryDispatched, Note: note}
	jobs := make([]Job, 0, len(reqs))
	for _, req := range reqs {
		req.DeliveryID = deliveryID
		j, err := newJobTx(tx, req, now)
		if err != nil {
			return nil, false, err
		}
		jobs = append(jobs, j)
		o.Runs = append(o.Runs, j.ID)
	}
	if len(reqs) == 0 {
		o.State = DeliveryIgnored
	}
	if err := tx.Bucket(bucketPending).Delete(key); err != nil {
		return nil, false, err
	}
	outcomes := tx.Bucket(bucketOutcomes)
	outcomes.FillPercent = 1 // dispatched in about the order they arrived
	if err := putJSON(outcomes, key, o); err != nil {
		return nil, false, err
	}
	return jobs, len(jobs) > 0, nil
}
