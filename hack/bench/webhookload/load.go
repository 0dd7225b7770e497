package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
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

// generator sends one run's deliveries. Every request is built and
// signed before the clock starts (as wrk and other load tools do), and each
// worker writes the prepared bytes to a keep-alive connection of its own
// and reads the reply: the generator's CPU goes to sending, so more of the
// machine is left to the server it measures.
type generator struct {
	o      options
	secret []byte
	events []event
	host   string // host:port to dial
	reqs   [][]byte

	lat    []time.Duration // by sequence number; 0 = not sent
	code   []int32         // by sequence number; 0 = transport error
	ids    []string        // by sequence number
	errors atomic.Int64
	first  atomic.Pointer[string]
}

func newGenerator(o options, secret []byte, events []event) (*generator, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://HOST:PORT/PATH (plain HTTP on loopback)", o.URL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	g := &generator{
		o: o, secret: secret, events: events, host: host,
		reqs: make([][]byte, o.N),
		lat:  make([]time.Duration, o.N),
		code: make([]int32, o.N),
		ids:  make([]string, o.N),
	}
	g.prepare(u)
	return g, nil
}

// prepare builds and signs every request.
func (g *generator) prepare(u *url.URL) {
	mac := hmac.New(sha256.New, g.secret)
	var body []byte
	path := u.RequestURI()
	for seq := range g.o.N {
		ev := g.events[seq%len(g.events)]
		body = body[:0]
		if g.o.Unique {
			body = withSeq(body, ev.Payload, seq)
		} else {
			body = append(body, ev.Payload...)
		}
		mac.Reset()
		mac.Write(body)
		id := newGUID()
		g.ids[seq] = id
		var b bytes.Buffer
		b.Grow(len(body) + 512)
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", path, u.Host)
		fmt.Fprintf(&b, "User-Agent: GitHub-Hookshot/accord-webhookload\r\nX-GitHub-Event: %s\r\n", ev.Name)
		fmt.Fprintf(&b, "X-GitHub-Delivery: %s\r\nX-GitHub-Hook-ID: %s\r\n", id, g.o.HookID)
		fmt.Fprintf(&b, "X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n", hex.EncodeToString(mac.Sum(nil)), len(body))
		b.Write(body)
		g.reqs[seq] = b.Bytes()
	}
}

// conn is one worker's keep-alive connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
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
			var c conn
			defer c.close()
			for at := range due {
				seq := int(next.Add(1) - 1)
				if seq >= g.o.N {
					return
				}
				if g.o.Rate == 0 {
					at = time.Now() // closed loop: from when it is sent
				}
				g.send(ctx, &c, seq, at)
			}
		}()
	}
	wg.Wait()
	return g.summarize(time.Since(start))
}

// schedule hands out due times: now, back to back; or every 1/rate,
// released a millisecond's worth at a time (one timer a millisecond, not
// one a delivery: at 5,000/s, timers cost the generator as much CPU as
// writing the requests). Latency is still counted from each delivery's
// own due time, so a delivery sent up to a millisecond late (0.5 ms on
// average) counts that against the server: the open loop's latencies are
// pessimistic by that much, never flattered.
func (g *generator) schedule(ctx context.Context, due chan<- time.Time) {
	defer close(due)
	start := time.Now()
	for i := 0; i < g.o.N; i++ {
		at := time.Now()
		if g.o.Rate > 0 {
			at = start.Add(time.Duration(float64(i) / g.o.Rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(max(d, time.Millisecond)):
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

// send writes delivery seq, due at 'at', and reads its reply.
func (g *generator) send(ctx context.Context, c *conn, seq int, at time.Time) {
	code, err := c.roundTrip(ctx, g.host, g.reqs[seq], g.o.Timeout)
	g.lat[seq] = max(time.Since(at), 1)
	if err != nil {
		c.close()
		g.fail(err)
		return
	}
	g.code[seq] = int32(code)
}

// roundTrip sends req on the connection (dialing it if need be) and reads
// the reply's status, discarding its body.
func (c *conn) roundTrip(ctx context.Context, host string, req []byte, timeout time.Duration) (int, error) {
	if c.c == nil {
		d := net.Dialer{Timeout: 5 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return 0, err
		}
		c.c, c.br = nc, bufio.NewReaderSize(nc, 4096)
	}
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := c.c.Write(req); err != nil {
		return 0, err
	}
	code, closing, err := readReply(c.br)
	if err != nil {
		return 0, err
	}
	if closing {
		c.close()
	}
	return code, nil
}

// readReply reads one HTTP/1.1 reply with a Content-Length (what the
// servers measured here send) and returns its status; closing is whether
// the server closes the connection after it. It reads in place, without
// allocating, as wrk does: net/http's ReadResponse builds a header map
// per reply, CPU this machine's 2 cores would take from the server.
func readReply(br *bufio.Reader) (code int, closing bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	code, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("malformed header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, false, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("reply with Transfer-Encoding %q: only replies with a Content-Length are read", value)
		}
	}
	if length < 0 && closing {
		// As net/http's own early errors: the body runs to the close.
		_, err := io.Copy(io.Discard, br)
		return code, true, err
	}
	if length < 0 {
		return 0, false, fmt.Errorf("reply %d without a Content-Length", code)
	}
	if _, err := br.Discard(length); err != nil {
		return 0, false, err
	}
	return code, closing, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c, c.br = nil, nil
	}
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
		if c >= 200 && c < 300 && g.lat[i] != 0 {
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
