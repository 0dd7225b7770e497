package queue

import (
	"encoding/binary"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// index finds a delivery's arrival number by its id, and tells whether a
// body was stored before (by its digest). It lives in memory and is
// rebuilt from the keys bucket when the queue opens: the durable truth is
// in bbolt, where every delivery's keys are appended in arrival order. A
// B-tree keyed by random ids (GUIDs, digests) costs a page rewritten and
// fsynced per delivery at every commit; appended keys cost a few bytes.
// It takes about 150 bytes a delivery (150 MB a million).
//
// Only the committer changes it (after the commit that stored the
// deliveries is durable, before their senders are answered); everyone
// may read it.
type index struct {
	mu      sync.RWMutex
	ids     map[string]uint64
	digests map[[32]byte]uint64
}

// indexEntry is one delivery's keys, as the keys bucket holds them.
type indexEntry struct {
	arrival uint64
	digest  [32]byte
	id      string
}

func newIndex() *index {
	return &index{ids: map[string]uint64{}, digests: map[[32]byte]uint64{}}
}

// has says whether id or digest is known.
func (x *index) has(id string, digest [32]byte) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, byID := x.ids[id]
	_, byDigest := x.digests[digest]
	return byID || byDigest
}

// arrival is the arrival number of delivery id.
func (x *index) arrival(id string) (uint64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n, ok := x.ids[id]
	return n, ok
}

// add learns committed deliveries.
func (x *index) add(es []indexEntry) {
	if len(es) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range es {
		x.ids[e.id] = e.arrival
		x.digests[e.digest] = e.arrival
	}
}

// keysValue is an entry's value in the keys bucket: the digest, then the id.
func keysValue(e indexEntry) []byte {
	v := make([]byte, 0, len(e.digest)+len(e.id))
	v = append(v, e.digest[:]...)
	return append(v, e.id...)
}

// load reads the keys bucket into x.
func (x *index) load(tx *bolt.Tx) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	err := tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) <= 32 {
			return fmt.Errorf("keys of delivery %x: %d bytes: the database is damaged", k, len(v))
		}
		n := binary.BigEndian.Uint64(k)
		x.ids[string(v[32:])] = n
		x.digests[[32]byte(v[:32])] = n
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the delivery index: %w", err)
	}
	return nil
}
