package queue

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migrateV1 moves a version 1 file's bodies, stored under their delivery
// id, to their arrival number (version 2), in the transaction that opens
// the queue: a server upgraded with deliveries still waiting keeps them
// all, and a failure changes nothing.
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
		return fmt.Errorf("migrating schema version 1 to %s: %w", schemaVersion, err)
	}
	if err := tx.DeleteBucket(bucketBodies); err != nil {
		return fmt.Errorf("migrating schema version 1 to %s: %w", schemaVersion, err)
	}
	bodies, err := tx.CreateBucket(bucketBodies)
	if err != nil {
		return fmt.Errorf("migrating schema version 1 to %s: %w", schemaVersion, err)
	}
	bodies.FillPercent = 1
	for _, m := range all {
		if err := bodies.Put(seqKey(m.arrival), m.body); err != nil {
			return fmt.Errorf("migrating schema version 1 to %s: %w", schemaVersion, err)
		}
	}
	return tx.Bucket(bucketMeta).Put([]byte("version"), []byte(schemaVersion))
}
