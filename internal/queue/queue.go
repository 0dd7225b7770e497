package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	boltErrors "go.etcd.io/bbolt/errors"
)

// Default group-commit settings: a commit takes every accept waiting, up
// to DefaultMaxBatchSize, without waiting for more (DefaultMaxBatchDelay
// 0): accepts that arrive while a commit runs go into the next one, so
// the batch grows with the load by itself. A delay only adds latency
// here: measured with BenchmarkAccept and hack/bench/serve.sh on a 2-core
// machine, 0 gave the most accepts per second and the lowest p99 at 64
// concurrent callers.
const (
	DefaultMaxBatchDelay = 0
	DefaultMaxBatchSize  = 512
)

// schemaVersion is the layout of the buckets below; Open refuses another.
const schemaVersion = "4"

// Bucket names. Every key holding a sequence number is 8 bytes,
// big-endian, so cursors walk them in order; a delivery's are its arrival
// number (1, 2, ...), so that accepting one only appends.
var (
	bucketMeta       = []byte("meta")       // "version" -> schemaVersion
	bucketDeliveries = []byte("deliveries") // arrival -> StoredDelivery (JSON) as accepted, without its body
	bucketBodies     = []byte("bodies")     // arrival -> the body as signed, encoded (body.go)
	bucketKeys       = []byte("keys")       // arrival -> sha256(event, body) then id: the index's source
	bucketPending    = []byte("pending")    // arrival -> Pending (pending.go), while accepted
	bucketOutcomes   = []byte("outcomes")   // arrival -> outcome (JSON), once dispatched
	bucketJobs       = []byte("jobs")       // seq -> Job (JSON); id "r<seq>"
	bucketQueued     = []byte("queued")     // seq -> NotBefore (unix ns), while queued
	bucketRunning    = []byte("running")    // seq -> "", while running
	bucketSupersede  = []byte("supersede")  // len(key) key seq -> "", while queued
	allBuckets       = [][]byte{bucketMeta, bucketDeliveries, bucketBodies, bucketKeys, bucketPending, bucketOutcomes, bucketJobs, bucketQueued, bucketRunning, bucketSupersede}
)

// Errors for expected conditions; the methods wrap them with what they
// were doing, so test them with errors.Is.
var (
	// ErrNotFound: no delivery or run with that id.
	ErrNotFound = errors.New("not found")
	// ErrState: the run is not in a state that allows the change (for
	// example finishing a run that has already finished).
	ErrState = errors.New("not allowed in this state")
	// ErrClosed: the queue has been closed.
	ErrClosed = errors.New("queue closed")
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// Now is the server's clock (default time.Now). Its values are stored
	// in UTC.
	Now func() time.Time
	// MaxBatchDelay is how long the first accept of a group commit waits
	// for others to join it (default DefaultMaxBatchDelay: not at all;
	// negative is taken as 0).
	MaxBatchDelay time.Duration
	// MaxBatchSize is how many accepts one commit takes at most; a full
	// batch commits at once (default DefaultMaxBatchSize).
	MaxBatchSize int
	// LockTimeout is how long Open waits for another process holding the
	// database to let go (default 1s).
	LockTimeout time.Duration
}

// Queue is the durable state of the server in one bbolt database file:
// deliveries, runs and their indexes. Every method that changes state
// returns only after the change is committed with fsync. All methods are
// safe for concurrent use; one process at a time holds the file.
type Queue struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	idx  *index // delivery ids and digests (index.go)

	mu     sync.Mutex
	wake   chan struct{} // closed and replaced when a run may have become ready
	closed chan struct{}
	once   sync.Once

	statsMu sync.Mutex
	commits uint64         // committed write transactions
	counted map[int64]bool // ids of the recent ones, counted once each
	accepts atomic.Uint64  // deliveries stored (not duplicates)
	scans   atomic.Uint64  // looks for a ready run (tests check Next does not poll)
	runs    atomic.Uint64  // accepts tried in a transaction (tests check re-runs)

	// The group committer (commit.go).
	acceptCh      chan *acceptReq
	committerDone chan struct{}
	maxBatch      int
	batchDelay    time.Duration
	failAccept    func(id string) error // tests: fail a transaction
}

// Stats are counters since Open, for metrics and benchmarks.
type Stats struct {
	// Commits is the number of committed write transactions; bbolt
	// fsyncs (fdatasync) twice per commit, data pages then meta page.
	Commits uint64
	// Accepted is the number of deliveries stored by Accept (duplicates
	// not counted).
	Accepted uint64
}

// Open opens (creating if need be) the queue database at path.
func Open(path string, opts Options) (*Queue, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// As etcd does: the freelist is not written at each commit (less
		// to write and fsync per batch) but rebuilt when the file is
		// opened; what a commit makes durable is unchanged.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, boltErrors.ErrTimeout) {
		return nil, fmt.Errorf("opening queue %s: the file is locked by another process (another 'accord serve' using the same state directory?); stop it or use another directory", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening queue %s: %w", path, err)
	}
	q := &Queue{db: db, path: path, now: opts.Now, idx: newIndex(), wake: make(chan struct{}), closed: make(chan struct{}), counted: map[int64]bool{},
		committerDone: make(chan struct{}), maxBatch: opts.MaxBatchSize, batchDelay: max(opts.MaxBatchDelay, 0)}
	if q.maxBatch <= 0 {
		q.maxBatch = DefaultMaxBatchSize
	}
	q.acceptCh = make(chan *acceptReq, q.maxBatch)
	if err := q.commitTx(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening queue %s: %w", path, err)
	}
	if err := db.View(q.idx.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening queue %s: %w", path, err)
	}
	go q.commitLoop()
	return q, nil
}

// initBuckets creates the buckets and checks the schema version (a
// version 1, 2 or 3 file is migrated).
func initBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get([]byte("version")); {
	case v == nil:
		return meta.Put([]byte("version"), []byte(schemaVersion))
	case len(v) == 1 && v[0] >= '1' && int(v[0]-'0') <= len(migrations):
		return migrate(tx, int(v[0]-'0'))
	case string(v) != schemaVersion:
		return fmt.Errorf("schema version %q, this accord reads %q: use the accord that wrote it, or move the file away to start empty", v, schemaVersion)
	}
	return nil
}

// Close wakes every waiting Next (it returns ErrClosed) and closes the
// database. Close is idempotent.
func (q *Queue) Close() error {
	var err error
	q.once.Do(func() {
		close(q.closed)
		<-q.committerDone
		if cerr := q.db.Close(); cerr != nil {
			err = fmt.Errorf("closing queue %s: %w", q.path, cerr)
		}
	})
	return err
}

// Path is the database file.
func (q *Queue) Path() string { return q.path }

// Stats returns the counters since Open.
func (q *Queue) Stats() Stats {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	return Stats{Commits: q.commits, Accepted: q.accepts.Load()}
}

// update has the committer run fn in a write transaction, with whatever
// else is waiting to be written (one commit, fsynced), and returns once it
// is committed. fn may run more than once (again alone if the shared
// transaction failed) and must only change the database.
func (q *Queue) update(fn func(*bolt.Tx) error) error {
	return q.submit(&acceptReq{fn: fn, done: make(chan acceptRes, 1)}).err
}

// commitTx runs fn in a write transaction of its own: the committer's,
// and Open's before the committer starts.
func (q *Queue) commitTx(fn func(*bolt.Tx) error) error {
	return q.db.Update(func(tx *bolt.Tx) error {
		q.countCommit(tx)
		return fn(tx)
	})
}

// countCommit counts tx's commit once, however many batched calls share
// it. bbolt runs commit handlers after releasing the writer lock, so the
// handlers of consecutive commits may interleave: the ids of the last few
// are remembered.
func (q *Queue) countCommit(tx *bolt.Tx) {
	id := int64(tx.ID())
	tx.OnCommit(func() {
		q.statsMu.Lock()
		defer q.statsMu.Unlock()
		if q.counted[id] {
			return
		}
		q.counted[id] = true
		q.commits++
		if len(q.counted) > 64 {
			for old := range q.counted {
				if old < id-32 {
					delete(q.counted, old)
				}
			}
		}
	})
}

// begin refuses work on a cancelled context or a closed queue.
func (q *Queue) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-q.closed:
		return ErrClosed
	default:
		return nil
	}
}

// waiter returns a channel closed at the next notify.
func (q *Queue) waiter() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake
}

// notify wakes every Next waiting for a run.
func (q *Queue) notify() {
	q.mu.Lock()
	defer q.mu.Unlock()
	close(q.wake)
	q.wake = make(chan struct{})
}

// clock returns the clock in UTC, without a monotonic reading.
func (q *Queue) clock() time.Time { return q.now().UTC().Round(0) }

// seqKey is a sequence number as a key.
func seqKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// jobID is the run id of a job sequence number.
func jobID(seq uint64) string { return "r" + strconv.FormatUint(seq, 10) }

// jobSeq parses a run id; ok is false when it is not one.
func jobSeq(id string) (uint64, bool) {
	if len(id) < 2 || id[0] != 'r' || id[1] == '0' || id[1] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(id[1:], 10, 64)
	return n, err == nil
}

// getJSON decodes the value at key into v; found is false when absent.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decoding record %q: %w", key, err)
	}
	return true, nil
}

// putJSON encodes v at key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", key, err)
	}
	return b.Put(key, raw)
}
