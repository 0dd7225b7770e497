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
//
// It is kept small, since it holds every delivery ever received (replay
// protection has no horizon: a signed body stays signed): an id in
// GitHub's form (a lowercase GUID) is kept as its 16 bytes, and a digest
// as the first 16 bytes of its SHA-256, a set without values: 60-95 bytes
// a delivery (95 MB at a million, against 200 MB with strings and whole
// digests; BenchmarkIndexMemory). Only signed bodies reach the index
// (the intake checks the signature first), so two alike in their first
// half would take about 2^64 bodies GitHub signed, and would only make
// the second a duplicate, never let a replay through; the keys bucket
// keeps the whole digest.
//
// Only the committer changes it (after the commit that stored the
// deliveries is durable, before their senders are answered); everyone
// may read it.
type index struct {
	mu      sync.RWMutex
	guids   map[guid]uint64   // ids in GitHub's form
	others  map[string]uint64 // any other id
	digests map[halfDigest]struct{}
}

// guid is a delivery id in GitHub's form, as its 16 bytes.
type guid [16]byte

// halfDigest is the first half of a body's digest.
type halfDigest [16]byte

// parseGUID reads id when it is a GUID exactly as GitHub writes one: 36
// bytes, lowercase hex in groups of 8-4-4-4-12. Any other spelling (an
// uppercase one included) is not GitHub's form, and stays a string, so
// that two ids that differ as strings never share a key.
func parseGUID[S ~string | ~[]byte](id S) (guid, bool) {
	var g guid
	if len(id) != 36 {
		return g, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if id[i] != '-' {
				return g, false
			}
			i++
			continue
		}
		hi, ok1 := lowerHex(id[i])
		lo, ok2 := lowerHex(id[i+1])
		if !ok1 || !ok2 {
			return g, false
		}
		g[j] = hi<<4 | lo
		i, j = i+2, j+1
	}
	return g, true
}

// lowerHex is the value of a lowercase hex digit.
func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// indexEntry is one delivery's keys, as the keys bucket holds them.
type indexEntry struct {
	arrival uint64
	digest  [32]byte
	id      string
}

func newIndex() *index {
	return &index{guids: map[guid]uint64{}, others: map[string]uint64{}, digests: map[halfDigest]struct{}{}}
}

// has says whether id or digest is known.
func (x *index) has(id string, digest [32]byte) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, byID := x.lookup(id)
	_, byDigest := x.digests[halfDigest(digest[:16])]
	return byID || byDigest
}

// arrival is the arrival number of delivery id.
func (x *index) arrival(id string) (uint64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.lookup(id)
}

// lookup is arrival, x.mu held.
func (x *index) lookup(id string) (uint64, bool) {
	if g, ok := parseGUID(id); ok {
		n, ok := x.guids[g]
		return n, ok
	}
	n, ok := x.others[id]
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
		learn(x, e.id, e.digest, e.arrival)
	}
}

// learn adds one delivery, x.mu held (id as a string, or as the keys
// bucket's bytes: a GUID's are not copied into a string).
func learn[S ~string | ~[]byte](x *index, id S, digest [32]byte, n uint64) {
	if g, ok := parseGUID(id); ok {
		x.guids[g] = n
	} else {
		x.others[string(id)] = n
	}
	x.digests[halfDigest(digest[:16])] = struct{}{}
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
		learn(x, v[32:], [32]byte(v[:32]), binary.BigEndian.Uint64(k))
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the delivery index: %w", err)
	}
	return nil
}
