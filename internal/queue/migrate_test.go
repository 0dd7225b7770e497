package queue

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMigrateV1: a version 1 file (bodies under their delivery id), left
// with an accepted delivery waiting and a dispatched one, opens with both
// bodies where version 2 reads them, the waiting one still waiting.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put([]byte("version"), []byte("1")); err != nil {
			return err
		}
		for i, st := range []DeliveryState{DeliveryDispatched, DeliveryAccepted} {
			d := delivery([]string{"old-done", "old-waiting"}[i])
			d.Received = when
			n, err := tx.Bucket(bucketDeliveries).NextSequence()
			if err != nil {
				return err
			}
			sd := StoredDelivery{Delivery: d, State: st, Arrival: n}
			if err := tx.Bucket(bucketBodies).Put([]byte(d.ID), d.Body); err != nil {
				return err
			}
			if err := putDeliveryTx(tx, sd); err != nil {
				return err
			}
			if st == DeliveryAccepted {
				if err := tx.Bucket(bucketPending).Put(seqKey(sd.Arrival), []byte(d.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("opening a version 1 file: %v", err)
	}
	defer q.Close()
	for _, id := range []string{"old-done", "old-waiting"} {
		sd, found, err := q.Delivery(ctx, id)
		if err != nil || !found || string(sd.Body) != string(delivery(id).Body) {
			t.Errorf("%s after the migration: %+v found=%v err=%v", id, sd, found, err)
		}
	}
	und, err := q.Undispatched(ctx)
	if err != nil || len(und) != 1 || und[0].ID != "old-waiting" {
		t.Fatalf("undispatched after the migration = %v, %v; want old-waiting", und, err)
	}
	// New deliveries go on after the old ones, and the file is version 2.
	if _, err := q.Accept(ctx, delivery("new"), ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"new", "old-waiting"} {
		if sd, _, err := q.Delivery(ctx, id); err != nil || string(sd.Body) != string(delivery(id).Body) {
			t.Errorf("%s after a new accept: %+v, %v", id, sd, err)
		}
	}
	if sd, _, _ := q.Delivery(ctx, "new"); sd == nil || sd.Arrival != 3 {
		t.Errorf("new delivery arrived as %+v, want arrival 3", sd)
	}
	q.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get([]byte("version")); string(v) != schemaVersion {
			t.Errorf("version %q after the migration", v)
		}
		return nil
	})
}
