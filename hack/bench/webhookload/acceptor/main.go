// Command acceptor serves trigger.Handler over accord's queue
// (internal/queue: bbolt with its group committer), to measure the intake
// alone with webhookload, without the rest of 'accord serve' (no
// dispatcher, no logs, no metrics):
//
//	go run ./hack/bench/webhookload/acceptor -listen 127.0.0.1:8089 -secret S -db /tmp/q.db \
//	    [-mode sync|async|mem|floor]
//
// -mode sync (default) replies after the fsync, as accord serve does;
// async replies before persisting (the way Tekton Triggers answers 202
// first); mem stores in memory only; floor checks nothing and stores
// nothing (it reads the body and replies 202 the same size as the
// intake's), so it measures what net/http and loopback TCP cost alone. On SIGTERM it prints how many
// deliveries it stored and exits. After a kill -9, hack/bench/webhookload/
// queuecheck counts the acknowledged deliveries the file lacks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/trigger"
)

// asyncStore replies at once and stores in the background.
type asyncStore struct {
	q  *queue.Queue
	wg sync.WaitGroup
}

func (s *asyncStore) Accept(_ context.Context, d trigger.Delivery, ignored string) (bool, error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.q.Accept(context.Background(), d, ignored)
	}()
	return false, nil
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

// floorCount counts floor's replies.
var floorCount *atomic.Uint64

// floorReply is as long as the intake's reply to an accepted delivery.
var floorReply = []byte(`{"delivery":"00000000-0000-0000-0000-000000000000","status":"accepted","message":"stored; the server's policy decides what it builds"}` + "\n")

// floor reads the body and replies 202 with the intake's headers,
// checking and storing nothing.
func floor(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	hd["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusAccepted)
	w.Write(floorReply)
	floorCount.Add(1)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8089", "address")
	secret := flag.String("secret", "", "webhook secret")
	path := flag.String("db", "", "queue database file (sync and async modes)")
	mode := flag.String("mode", "sync", "sync | async | mem | floor")
	profile := flag.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file until stopped")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*listen, *secret, *path, *mode); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

func run(listen, secret, path, mode string) error {
	secrets, err := trigger.NewSecrets([]byte(secret))
	if err != nil {
		return err
	}
	var store trigger.Acceptor
	var count func() uint64
	switch mode {
	case "mem":
		ms := &memStore{seen: map[string]bool{}}
		store, count = ms, func() uint64 { return uint64(len(ms.seen)) }
	case "sync", "async":
		q, err := queue.Open(path, queue.Options{})
		if err != nil {
			return fmt.Errorf("opening -db: %w", err)
		}
		defer q.Close()
		store = q
		as := &asyncStore{q: q}
		if mode == "async" {
			store = as
		}
		count = func() uint64 { as.wg.Wait(); return q.Stats().Accepted }
	case "floor":
		var n atomic.Uint64
		floorCount, count = &n, n.Load
	default:
		return fmt.Errorf("-mode %q: want sync, async, mem or floor", mode)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	var h http.Handler = &trigger.Handler{Secrets: secrets, Store: store}
	if mode == "floor" {
		h = http.HandlerFunc(floor)
	}
	srv := &http.Server{Handler: h, ReadTimeout: 10 * time.Second}
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
