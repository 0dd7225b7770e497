package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one run measured.
type result struct {
	URL         string         `json:"url"`
	Sent        int            `json:"sent"`
	OK          int            `json:"ok"`
	Status      map[string]int `json:"status"`
	Errors      int            `json:"errors"`
	FirstError  string         `json:"first_error,omitempty"`
	Concurrency int            `json:"concurrency"`
	Rate        float64        `json:"rate,omitempty"`
	BodyBytes   int            `json:"body_bytes"`
	Seconds     float64        `json:"duration_s"`
	RPS         float64        `json:"rps"`
	OKRPS       float64        `json:"ok_rps"`
	P50         float64        `json:"p50_ms"`
	P90         float64        `json:"p90_ms"`
	P99         float64        `json:"p99_ms"`
	Max         float64        `json:"max_ms"`
}

// generator sends one run's deliveries.
type generator struct {
	o      options
	secret []byte
	events []event
	client *http.Client

	lat    []time.Duration // by sequence number; 0 = not sent
	code   []int32         // by sequence number; 0 = transport error
	ids    []string        // by sequence number
	errors atomic.Int64
	first  atomic.Pointer[string]
}

func newGenerator(o options, secret []byte, events []event) *generator {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.C,
		MaxIdleConnsPerHost: o.C,
		MaxConnsPerHost:     o.C,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &generator{
		o: o, secret: secret, events: events,
		client: &http.Client{Transport: tr, Timeout: o.Timeout},
		lat:    make([]time.Duration, o.N),
		code:   make([]int32, o.N),
		ids:    make([]string, o.N),
	}
}

// worker holds one connection's reusable state.
type worker struct {
	mac  hash.Hash
	body []byte
	sig  []byte
}

// run sends all deliveries (or until ctx ends) and summarizes them.
func (g *generator) run(ctx context.Context) *result {
	due := make(chan time.Time, g.o.C)
	go g.schedule(ctx, due)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range g.o.C {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{mac: hmac.New(sha256.New, g.secret)}
			for at := range due {
				seq := int(next.Add(1) - 1)
				if seq >= g.o.N {
					return
				}
				if g.o.Rate == 0 {
					at = time.Now() // closed loop: from when it is sent
				}
				g.send(ctx, w, seq, at)
			}
		}()
	}
	wg.Wait()
	g.client.CloseIdleConnections()
	return g.summarize(time.Since(start))
}

// schedule hands out due times: now, back to back; or every 1/rate.
func (g *generator) schedule(ctx context.Context, due chan<- time.Time) {
	defer close(due)
	start := time.Now()
	for i := 0; i < g.o.N; i++ {
		at := time.Now()
		if g.o.Rate > 0 {
			at = start.Add(time.Duration(float64(i) / g.o.Rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
		}
		select {
		case due <- at:
		case <-ctx.Done():
			return
		}
	}
}

// send signs and sends delivery seq, due at 'at'.
func (g *generator) send(ctx context.Context, w *worker, seq int, at time.Time) {
	ev := g.events[seq%len(g.events)]
	w.body = w.body[:0]
	if g.o.Unique {
		w.body = withSeq(w.body, ev.Payload, seq)
	} else {
		w.body = append(w.body, ev.Payload...)
	}
	w.mac.Reset()
	w.mac.Write(w.body)
	w.sig = append(w.sig[:0], "sha256="...)
	w.sig = hex.AppendEncode(w.sig, w.mac.Sum(nil))
	id := newGUID()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.o.URL, bytes.NewReader(w.body))
	if err != nil {
		g.fail(err)
		return
	}
	req.Header = http.Header{
		"Content-Type":        {"application/json"},
		"User-Agent":          {"GitHub-Hookshot/accord-webhookload"},
		"X-Github-Event":      {ev.Name},
		"X-Github-Delivery":   {id},
		"X-Github-Hook-Id":    {g.o.HookID},
		"X-Hub-Signature-256": {string(w.sig)},
	}
	resp, err := g.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	g.lat[seq] = max(time.Since(at), 1)
	g.ids[seq] = id
	if err != nil {
		g.fail(err)
		return
	}
	g.code[seq] = int32(resp.StatusCode)
}

func (g *generator) fail(err error) {
	g.errors.Add(1)
	s := err.Error()
	g.first.CompareAndSwap(nil, &s)
}

// accepted are the ids that got a 2xx, in the order they were sent.
func (g *generator) accepted() []string {
	var ids []string
	for i, c := range g.code {
		if c >= 200 && c < 300 {
			ids = append(ids, g.ids[i])
		}
	}
	return ids
}

// summarize counts the replies and takes latency percentiles.
func (g *generator) summarize(took time.Duration) *result {
	r := &result{URL: g.o.URL, Status: map[string]int{}, Concurrency: g.o.C, Rate: g.o.Rate,
		BodyBytes: len(g.events[0].Payload), Seconds: round(took.Seconds())}
	var lat []time.Duration
	for i, l := range g.lat {
		if l == 0 {
			continue
		}
		r.Sent++
		lat = append(lat, l)
		if c := g.code[i]; c != 0 {
			r.Status[strconv.Itoa(int(c))]++
			if c >= 200 && c < 300 {
				r.OK++
			}
		}
	}
	r.Errors = int(g.errors.Load())
	if p := g.first.Load(); p != nil {
		r.FirstError = *p
	}
	if took > 0 {
		r.RPS = round(float64(r.Sent) / took.Seconds())
		r.OKRPS = round(float64(r.OK) / took.Seconds())
	}
	slices.Sort(lat)
	r.P50, r.P90, r.P99 = ms(pct(lat, 50)), ms(pct(lat, 90)), ms(pct(lat, 99))
	if len(lat) > 0 {
		r.Max = ms(lat[len(lat)-1])
	}
	return r
}

// pct is the p-th percentile of sorted (nearest rank).
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }
func round(f float64) float64    { return math.Round(f*1000) / 1000 }

// newGUID is a random (version 4) GUID, as X-GitHub-Delivery carries.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
