package queue

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeOldFile writes a file of an earlier schema version (1: bodies
// under their delivery id; 2: bodies under their arrival number), both
// with records under their delivery id and a digests bucket, holding a
// dispatched delivery and an accepted one still waiting.
func writeOldFile(t *testing.T, path, version string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	when := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *bolt.Tx) error {
		buckets := map[string]*bolt.Bucket{}
		for _, name := range []string{"meta", "deliveries", "bodies", "pending", "jobs", "queued", "running", "supersede", "digests"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			buckets[name] = b
		}
		if err := buckets["meta"].Put([]byte("version"), []byte(version)); err != nil {
			return err
		}
		for i, st := range []DeliveryState{DeliveryDispatched, DeliveryAccepted} {
			d := delivery([]string{"old-done", "old-waiting"}[i])
			d.Received = when
			n, err := buckets["deliveries"].NextSequence()
			if err != nil {
				return err
			}
			sd := StoredDelivery{Delivery: d, State: st, Arrival: n}
			if st == DeliveryDispatched {
				sd.Runs = []string{"r1"}
				if err := buckets["jobs"].Put(seqKey(1), []byte(`{"id":"r1","state":"succeeded"}`)); err != nil {
					return err
				}
			}
			rec, err := json.Marshal(sd)
			if err != nil {
				return err
			}
			bodyKey := seqKey(n)
			if version == "1" {
				bodyKey = []byte(d.ID)
			}
			h := sha256.Sum256(append([]byte(d.Event+"\x00"), d.Body...))
			for _, put := range [][3][]byte{
				{[]byte("deliveries"), []byte(d.ID), rec}, {[]byte("bodies"), bodyKey, d.Body}, {[]byte("digests"), h[:], []byte(d.ID)},
			} {
				if err := buckets[string(put[0])].Put(put[1], put[2]); err != nil {
					return err
				}
			}
			if st == DeliveryAccepted {
				if err := buckets["pending"].Put(seqKey(n), []byte(d.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrate: a version 1 or 2 file, left with an accepted delivery
// waiting and a dispatched one, opens with both where version 3 reads
// them, the waiting one still waiting, both known to the de-duplication
// (by id and by body), and new deliveries arriving after them.
func TestMigrate(t *testing.T) {
	for _, version := range []string{"1", "2"} {
		t.Run("version "+version, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "queue.db")
			writeOldFile(t, path, version)
			q, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("opening a version %s file: %v", version, err)
			}
			defer q.Close()
			for _, id := range []string{"old-done", "old-waiting"} {
				sd, found, err := q.Delivery(ctx, id)
				if err != nil || !found || string(sd.Body) != string(delivery(id).Body) {
					t.Errorf("%s after the migration: %+v found=%v err=%v", id, sd, found, err)
				}
				if seen, err := q.Seen(ctx, id); !seen || err != nil {
					t.Errorf("Seen(%s) = %v, %v after the migration", id, seen, err)
				}
				if dup, err := q.Accept(ctx, delivery(id), ""); !dup || err != nil {
					t.Errorf("redelivery of %s after the migration: duplicate %v, %v", id, dup, err)
				}
				replay := delivery(id)
				replay.ID = "replay-of-" + id
				if dup, err := q.Accept(ctx, replay, ""); !dup || err != nil {
					t.Errorf("replay of %s's body after the migration: duplicate %v, %v", id, dup, err)
				}
			}
			und, err := q.Undispatched(ctx)
			if err != nil || len(und) != 1 || und[0].ID != "old-waiting" {
				t.Fatalf("undispatched after the migration = %v, %v; want old-waiting", und, err)
			}
			checkPending(t, q, Pending{Arrival: 2, ID: "old-waiting", Event: "push"})
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
			if _, err := q.Dispatch(ctx, "old-waiting", nil, "nothing to build"); err != nil {
				t.Errorf("dispatching the migrated delivery: %v", err)
			}
			// Dispatching one dispatched before the upgrade again returns
			// the runs it started then (its state is in its old record).
			if jobs, err := q.Dispatch(ctx, "old-done", nil, "again"); err != nil || len(jobs) != 1 || jobs[0].ID != "r1" {
				t.Errorf("dispatching old-done again = %+v, %v; want its run r1", jobs, err)
			}
			q.db.View(func(tx *bolt.Tx) error {
				if v := tx.Bucket(bucketMeta).Get([]byte("version")); string(v) != schemaVersion {
					t.Errorf("version %q after the migration", v)
				}
				if tx.Bucket([]byte("digests")) != nil {
					t.Errorf("the digests bucket is still there")
				}
				return nil
			})
		})
	}
}

// checkPending checks that the queue's one waiting delivery has the
// pending entry want.
func checkPending(t *testing.T, q *Queue, want Pending) {
	t.Helper()
	var got []Pending
	_, err := q.UndispatchedN(context.Background(), 0, func(p Pending) bool { got = append(got, p); return false })
	if err != nil || len(got) != 1 || got[0] != want {
		t.Errorf("pending entries %+v, %v; want %+v", got, err, want)
	}
}

// TestMigrateV3: a version 3 file's pending entries (the id alone) become
// entries with the event and repository of each record; the rest of the
// file is as version 4 has it.
func TestMigrateV3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"done", "waiting"} {
		d := delivery(id)
		d.Repo = "o/" + id
		if _, err := q.Accept(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Dispatch(ctx, "done", nil, "nothing to build"); err != nil {
		t.Fatal(err)
	}
	// Back to version 3: pending values were the id alone.
	err = q.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPending).Put(seqKey(2), []byte("waiting")); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte("version"), []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if q, err = Open(path, Options{}); err != nil {
		t.Fatalf("opening a version 3 file: %v", err)
	}
	defer q.Close()
	checkPending(t, q, Pending{Arrival: 2, ID: "waiting", Event: "push", Repo: "o/waiting"})
	if sd, _, err := q.Delivery(ctx, "done"); err != nil || sd.State != DeliveryIgnored || sd.Note != "nothing to build" {
		t.Errorf("the dispatched delivery after the migration: %+v, %v", sd, err)
	}
	if dup, err := q.Accept(ctx, delivery("waiting"), ""); !dup || err != nil {
		t.Errorf("redelivery after the migration: duplicate %v, %v", dup, err)
	}
	if _, err := q.Dispatch(ctx, "waiting", nil, "later"); err != nil {
		t.Errorf("dispatching the migrated delivery: %v", err)
	}
	q.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get([]byte("version")); string(v) != schemaVersion {
			t.Errorf("version %q after the migration", v)
		}
		return nil
	})
}

// A damaged pending entry is an error that says so, not a delivery.
func TestDecodePendingDamaged(t *testing.T) {
	key := seqKey(7)
	good := pendingValue(delivery("d7"))
	if p, err := decodePending(key, good); err != nil || p.ID != "d7" || p.Event != "push" || p.Arrival != 7 {
		t.Fatalf("decodePending(good) = %+v, %v", p, err)
	}
	for name, v := range map[string][]byte{
		"empty":           {},
		"version 3 value": []byte("d7"),
		"truncated id":    good[:3],
		"no event length": good[:1+1+len("d7")],
		"long event":      append([]byte{pendingFormat, 2, 'd', '7', 200}, "push"...),
		"no id":           {pendingFormat, 0, 4, 'p', 'u', 's', 'h'},
	} {
		if p, err := decodePending(key, v); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s: decodePending = %+v, %v; want an error saying the database is damaged", name, p, err)
		}
	}
	if _, err := decodePending(key[:4], good); err == nil {
		t.Error("a short key was read")
	}
}
