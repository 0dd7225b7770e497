// Command acceptor serves trigger.Handler over a minimal bbolt store with
// group commit (db.Batch: concurrent accepts share one fsync), to measure
// the intake alone with webhookload, without the rest of 'accord serve':
//
//	go run ./hack/bench/webhookload/acceptor -listen 127.0.0.1:8089 -secret S -db /tmp/q.db \
//	    [-mode sync|async|mem] [-batch-delay 10ms] [-seq-keys] [-no-freelist-sync]
//
// -mode sync (default) replies after the fsync, as accord serve does;
// async replies before persisting (the way Tekton Triggers answers 202
// first); mem stores in memory only. On SIGTERM it prints how many
// deliveries it stored and exits.
//
// After a kill -9: 'acceptor -db /tmp/q.db -check accepted.txt' (the
// ids webhookload wrote with -out) prints how many of them the file holds
// and how many are lost (exit status 1 when any is).
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/accord-build/accord/internal/trigger"
)

var (
	bucket = []byte("deliveries") // id -> delivery, or id -> sequence with -seq-keys
	bodies = []byte("bodies")     // sequence -> delivery, with -seq-keys
)

// boltStore de-duplicates by id and stores durably in one bbolt file.
type boltStore struct {
	db    *bolt.DB
	async bool
	seq   bool // bodies under arrival-order keys, ids in a small index
	wg    sync.WaitGroup
}

func (s *boltStore) Accept(_ context.Context, d trigger.Delivery, ignored string) (bool, error) {
	if s.async {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.put(d, ignored) }()
		return false, nil
	}
	return s.put(d, ignored)
}

func (s *boltStore) put(d trigger.Delivery, ignored string) (bool, error) {
	var dup bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if dup = b.Get([]byte(d.ID)) != nil; dup {
			return nil
		}
		v := make([]byte, 0, len(d.Event)+len(d.HookID)+len(ignored)+len(d.Body)+3)
		v = append(append(append(append(append(append(v, d.Event...), 0), d.HookID...), 0), ignored...), 0)
		v = append(v, d.Body...)
		if !s.seq {
			return b.Put([]byte(d.ID), v)
		}
		bb := tx.Bucket(bodies)
		bb.FillPercent = 1 // appended in order
		n, _ := bb.NextSequence()
		key := binary.BigEndian.AppendUint64(nil, n)
		if err := bb.Put(key, v); err != nil {
			return err
		}
		return b.Put([]byte(d.ID), key)
	})
	return dup, err
}

// memStore de-duplicates in memory.
type memStore struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *memStore) Accept(_ context.Context, d trigger.Delivery, _ string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dup := s.seen[d.ID]
	s.seen[d.ID] = true
	return dup, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8089", "address")
	secret := flag.String("secret", "", "webhook secret")
	path := flag.String("db", "", "bbolt file (sync and async modes)")
	mode := flag.String("mode", "sync", "sync | async | mem")
	check := flag.String("check", "", "count the ids of this file (webhookload -out) in -db, and exit")
	seqKeys := flag.Bool("seq-keys", false, "store bodies under arrival-order keys, ids in an index")
	noFreelistSync := flag.Bool("no-freelist-sync", false, "bbolt NoFreelistSync with the map freelist")
	delay := flag.Duration("batch-delay", 10*time.Millisecond, "bbolt MaxBatchDelay (its default: 10ms)")
	flag.Parse()
	opts := &bolt.Options{NoFreelistSync: *noFreelistSync}
	if *noFreelistSync {
		opts.FreelistType = bolt.FreelistMapType
	}
	if *check != "" {
		lost, err := checkIDs(*path, *check)
		if err != nil {
			log.Fatal(err)
		}
		if lost > 0 {
			os.Exit(1)
		}
		return
	}
	if err := run(*listen, *secret, *path, *mode, *delay, opts, *seqKeys); err != nil {
		log.Fatal(err)
	}
}

func run(listen, secret, path, mode string, delay time.Duration, opts *bolt.Options, seqKeys bool) error {
	secrets, err := trigger.NewSecrets([]byte(secret))
	if err != nil {
		return err
	}
	var store trigger.Acceptor
	count := func() int { return len(store.(*memStore).seen) }
	switch mode {
	case "mem":
		store = &memStore{seen: map[string]bool{}}
	case "sync", "async":
		db, err := bolt.Open(path, 0o600, opts)
		if err != nil {
			return fmt.Errorf("opening -db: %w", err)
		}
		defer db.Close()
		db.MaxBatchDelay = delay
		if err := db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bodies); err != nil {
				return err
			}
			_, err := tx.CreateBucketIfNotExists(bucket)
			return err
		}); err != nil {
			return err
		}
		bs := &boltStore{db: db, async: mode == "async", seq: seqKeys}
		store = bs
		count = func() int {
			bs.wg.Wait()
			n := 0
			db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil })
			return n
		}
	default:
		return fmt.Errorf("-mode %q: want sync, async or mem", mode)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &trigger.Handler{Secrets: secrets, Store: store}, ReadTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	fmt.Printf("listening on %s (%s)\n", ln.Addr(), mode)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Printf("stored %d\n", count())
	return nil
}

// checkIDs counts the ids of file (one a line) that the db at path lacks.
func checkIDs(path, file string) (lost int, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("opening -db: %w", err)
	}
	defer db.Close()
	ids := strings.Fields(string(b))
	err = db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		for _, id := range ids {
			if bk == nil || bk.Get([]byte(id)) == nil {
				lost++
			}
		}
		return nil
	})
	fmt.Printf("acknowledged %d, stored %d, lost %d\n", len(ids), len(ids)-lost, lost)
	return lost, err
}
