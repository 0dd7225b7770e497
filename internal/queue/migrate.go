package queue

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Migrations run in the transaction that opens the queue: a server
// upgraded with deliveries still waiting keeps them all, and a failure
// changes nothing.

// migrations[i] migrates a file of version i+1 to version i+2.
var migrations = []func(*bolt.Tx) error{migrateV1, migrateV2, migrateV3}

// migrate brings a file of version from (1, 2 or 3) up to schemaVersion,
// one version at a time.
func migrate(tx *bolt.Tx, from int) error {
	for _, step := range migrations[from-1:] {
		if err := step(tx); err != nil {
			return err
		}
	}
	return nil
}

// migrateV1 moves a version 1 file's bodies, stored under their delivery
// id, to their arrival number (version 2).
func migrateV1(tx *bolt.Tx) error {
	type moved struct {
		arrival uint64
		body    []byte
	}
	var all []moved
	err := tx.Bucket(bucketDeliveries).ForEach(func(id, _ []byte) error {
		var sd StoredDelivery
		if _, err := getJSON(tx.Bucket(bucketDeliveries), id, &sd); err != nil {
			return fmt.Errorf("delivery %q: %w", id, err)
		}
		body := tx.Bucket(bucketBodies).Get(id)
		if body == nil {
			return fmt.Errorf("delivery %q has no body: the database is damaged", id)
		}
		all = append(all, moved{sd.Arrival, bytes.Clone(body)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrating schema version 1 to 2: %w", err)
	}
	if err := tx.DeleteBucket(bucketBodies); err != nil {
		return fmt.Errorf("migrating schema version 1 to 2: %w", err)
	}
	bodies, err := tx.CreateBucket(bucketBodies)
	if err != nil {
		return fmt.Errorf("migrating schema version 1 to 2: %w", err)
	}
	bodies.FillPercent = 1
	for _, m := range all {
		if err := bodies.Put(seqKey(m.arrival), m.body); err != nil {
			return fmt.Errorf("migrating schema version 1 to 2: %w", err)
		}
	}
	return nil
}

// migrateV3 replaces a version 3 file's pending entries, the id alone, by
// [Pending] entries (id, event and repository, read from each record), so
// the dispatcher can set a delivery aside from its entry (version 4).
func migrateV3(tx *bolt.Tx) error {
	wrap := func(err error) error { return fmt.Errorf("migrating schema version 3 to 4: %w", err) }
	type entry struct{ key, value []byte }
	var all []entry
	records := tx.Bucket(bucketDeliveries)
	err := tx.Bucket(bucketPending).ForEach(func(k, id []byte) error {
		var sd StoredDelivery
		found, err := getJSON(records, k, &sd)
		if err != nil {
			return fmt.Errorf("delivery %q: %w", id, err)
		}
		if !found {
			return fmt.Errorf("pending delivery %q has no record: the database is damaged", id)
		}
		all = append(all, entry{bytes.Clone(k), pendingValue(sd.Delivery)})
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	pending := tx.Bucket(bucketPending)
	for _, e := range all {
		if err := pending.Put(e.key, e.value); err != nil {
			return wrap(err)
		}
	}
	if err := tx.Bucket(bucketMeta).Put([]byte("version"), []byte(schemaVersion)); err != nil {
		return wrap(err)
	}
	return nil
}

// migrateV2 moves a version 2 file's delivery records, stored under their
// id, to their arrival number, encodes the bodies (body.go), and replaces
// the digests bucket (digest -> id) by the keys bucket the index is read
// from (version 3).
func migrateV2(tx *bolt.Tx) error {
	wrap := func(err error) error { return fmt.Errorf("migrating schema version 2 to 3: %w", err) }
	old := tx.Bucket(bucketDeliveries)
	seq := old.Sequence()
	var all []StoredDelivery
	err := old.ForEach(func(id, v []byte) error {
		var sd StoredDelivery
		if err := json.Unmarshal(v, &sd); err != nil {
			return fmt.Errorf("delivery %q: %w", id, err)
		}
		all = append(all, sd)
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	if err := tx.DeleteBucket(bucketDeliveries); err != nil {
		return wrap(err)
	}
	records, err := tx.CreateBucket(bucketDeliveries)
	if err != nil {
		return wrap(err)
	}
	if err := records.SetSequence(seq); err != nil {
		return wrap(err)
	}
	slices.SortFunc(all, func(a, b StoredDelivery) int { return cmp.Compare(a.Arrival, b.Arrival) })
	for _, sd := range all {
		if err := migrateDeliveryV2(tx, sd); err != nil {
			return wrap(err)
		}
	}
	if tx.Bucket([]byte("digests")) != nil {
		if err := tx.DeleteBucket([]byte("digests")); err != nil {
			return wrap(err)
		}
	}
	return tx.Bucket(bucketMeta).Put([]byte("version"), []byte("3"))
}

// migrateDeliveryV2 stores one version 2 delivery as version 3 does.
func migrateDeliveryV2(tx *bolt.Tx, sd StoredDelivery) error {
	key := seqKey(sd.Arrival)
	bodies := tx.Bucket(bucketBodies)
	raw := bodies.Get(key)
	if raw == nil {
		return fmt.Errorf("delivery %q has no body: the database is damaged", sd.ID)
	}
	body := bytes.Clone(raw)
	if err := bodies.Put(key, encodeBody(body)); err != nil {
		return err
	}
	e := indexEntry{arrival: sd.Arrival, digest: bodyDigest(sd.Event, body), id: sd.ID}
	if err := tx.Bucket(bucketKeys).Put(key, keysValue(e)); err != nil {
		return err
	}
	return putDeliveryTx(tx, sd)
}
