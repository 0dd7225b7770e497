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
	return tx.Bucket(bucketMeta).Put([]byte("version"), []byte(schemaVersion))
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
