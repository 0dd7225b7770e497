package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/trigger"
)

// BenchmarkAccept measures durable accepts from c concurrent callers (as
// many webhook requests in flight): accepts/s, latency percentiles, and
// commits and fsyncs per accept (bbolt fsyncs twice per commit). Set
// ACCORD_QUEUE_BENCH_DELAYS=1ms,2ms,... to compare MaxBatchDelay values.
func BenchmarkAccept(b *testing.B) {
	delays := []time.Duration{DefaultMaxBatchDelay}
	if env := os.Getenv("ACCORD_QUEUE_BENCH_DELAYS"); env != "" {
		delays = nil
		for _, s := range strings.Split(env, ",") {
			d, err := time.ParseDuration(s)
			if err != nil {
				b.Fatal(err)
			}
			delays = append(delays, d)
		}
	}
	body := []byte(`{"ref":"refs/heads/main","payload":"` + strings.Repeat("x", 6000) + `"}`) // a push is ~6-8 KB
	for _, delay := range delays {
		for _, c := range []int{16, 64, 256} {
			b.Run(fmt.Sprintf("delay=%v/c=%d", delay, c), func(b *testing.B) {
				benchAccept(b, c, body, Options{MaxBatchDelay: delay})
			})
		}
	}
}

func benchAccept(b *testing.B, c int, body []byte, opts Options) {
	q, err := Open(filepath.Join(b.TempDir(), "queue.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, c)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				// Bodies differ, as GitHub's do (the same body twice is a replay).
				d := trigger.Delivery{ID: fmt.Sprintf("bench-%d", i), Event: "push", Body: append(fmt.Appendf(nil, `{"i":%d,`, i), body[1:]...)}
				if _, err := q.Accept(ctx, d, ""); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond)
	}
	st := q.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(st.Commits)/float64(b.N), "commits/op")
	b.ReportMetric(2*float64(st.Commits)/float64(b.N), "fsyncs/op")
}

// BenchmarkAcceptNoGroupCommit is the baseline: one commit (two fsyncs)
// per accept, as without db.Batch.
func BenchmarkAcceptNoGroupCommit(b *testing.B) {
	body := []byte(`{"ref":"refs/heads/main","payload":"` + strings.Repeat("x", 6000) + `"}`)
	benchAccept(b, 64, body, Options{MaxBatchSize: 1})
}
