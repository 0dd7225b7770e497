package queue

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/trigger"
)

func TestParseGUID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"72d3162e-cc78-11e3-81ab-4c9367dc0958", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
		{"72D3162E-CC78-11E3-81AB-4C9367DC0958", false}, // not GitHub's spelling: a string of its own
		{"72d3162e-cc78-11e3-81ab-4c9367dc095", false},
		{"72d3162e-cc78-11e3-81ab-4c9367dc09580", false},
		{"72d3162ecc78-11e3-81ab-4c9367dc09580", false},
		{"72d3162e-cc78-11e3-81ab_4c9367dc0958", false},
		{"72d3162g-cc78-11e3-81ab-4c9367dc0958", false},
		{"d1", false},
		{"", false},
	}
	for _, tt := range tests {
		g, ok := parseGUID(tt.id)
		if ok != tt.ok {
			t.Errorf("parseGUID(%q) ok = %v, want %v", tt.id, ok, tt.ok)
			continue
		}
		if ok && formatGUID(g) != tt.id {
			t.Errorf("parseGUID(%q) = %x, which reads back as %q", tt.id, g, formatGUID(g))
		}
		if gb, okb := parseGUID([]byte(tt.id)); okb != ok || gb != g {
			t.Errorf("parseGUID([]byte(%q)) = %x, %v; from the string: %x, %v", tt.id, gb, okb, g, ok)
		}
	}
}

// FuzzParseGUID: an id parsed as a GUID is exactly the GUID's spelling,
// so two ids that differ never share an index key.
func FuzzParseGUID(f *testing.F) {
	f.Add("72d3162e-cc78-11e3-81ab-4c9367dc0958")
	f.Add("72D3162E-CC78-11E3-81AB-4C9367DC0958")
	f.Add("d1")
	f.Fuzz(func(t *testing.T, id string) {
		g, ok := parseGUID(id)
		if ok && formatGUID(g) != id {
			t.Fatalf("parseGUID(%q) = %x, which is spelled %q", id, g, formatGUID(g))
		}
		if gb, okb := parseGUID([]byte(id)); gb != g || okb != ok {
			t.Fatalf("parseGUID([]byte(%q)) = %x, %v; from the string: %x, %v", id, gb, okb, g, ok)
		}
	})
}

func formatGUID(g guid) string {
	h := fmt.Sprintf("%x", g[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func TestIndex(t *testing.T) {
	x := newIndex()
	lower := "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	upper := strings.ToUpper(lower)
	d := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	x.add([]indexEntry{
		{arrival: 1, id: lower, digest: d("a")},
		{arrival: 2, id: "d2", digest: d("b")},
	})
	tests := []struct {
		id      string
		digest  [32]byte
		has     bool
		arrival uint64
		known   bool
	}{
		{lower, d("new"), true, 1, true},
		{upper, d("new"), false, 0, false}, // another id, as a string
		{"d2", d("new"), true, 2, true},
		{"d3", d("a"), true, 0, false}, // a replay: the body is known
		{"d3", d("c"), false, 0, false},
	}
	for _, tt := range tests {
		if got := x.has(tt.id, tt.digest); got != tt.has {
			t.Errorf("has(%q, %x) = %v, want %v", tt.id, tt.digest[:4], got, tt.has)
		}
		if n, ok := x.arrival(tt.id); n != tt.arrival || ok != tt.known {
			t.Errorf("arrival(%q) = %d, %v; want %d, %v", tt.id, n, ok, tt.arrival, tt.known)
		}
	}
	// The keys bucket's bytes (as load passes them) give the same index;
	// TestReopenGUIDs goes through load itself.
	y := newIndex()
	for _, e := range []indexEntry{{arrival: 1, id: lower, digest: d("a")}, {arrival: 2, id: "d2", digest: d("b")}} {
		learn(y, keysValue(e)[32:], e.digest, e.arrival)
	}
	if fmt.Sprint(x.guids, x.others, x.digests) != fmt.Sprint(y.guids, y.others, y.digests) {
		t.Errorf("from the keys bucket's bytes: %v %v, want %v %v", y.guids, y.others, x.guids, x.others)
	}
}

// BenchmarkIndexMemory reports the index's bytes a delivery, GitHub's
// GUIDs as ids (it holds every delivery ever received), and what a
// collection costs with it live: with GitHub's ids, its maps hold no
// pointers, so the collector does not scan them, however long the history.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 200_000
	var per float64
	var gc time.Duration
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		x := newIndex()
		for i := range n {
			var seed [8]byte
			binary.BigEndian.PutUint64(seed[:], uint64(i))
			sum := sha256.Sum256(seed[:])
			x.add([]indexEntry{{arrival: uint64(i + 1), id: formatGUID(guid(sum[:16])), digest: sha256.Sum256(sum[:])}})
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		per = float64(m1.HeapAlloc-m0.HeapAlloc) / n
		gc = time.Hour
		for range 3 {
			t0 := time.Now()
			runtime.GC()
			gc = min(gc, time.Since(t0))
		}
		runtime.KeepAlive(x)
	}
	b.ReportMetric(per, "B/delivery")
	b.ReportMetric(float64(gc.Microseconds()), "µs/collection")
}

// TestReopenGUIDs: with GitHub's ids, a redelivery and a replay under a
// new id are duplicates after the queue reopens (the index rebuilt from
// the keys bucket), and an id spelled in uppercase is another delivery.
func TestReopenGUIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const first, second = "72d3162e-cc78-11e3-81ab-4c9367dc0958", "8a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d"
	mustAccept(t, q, first, "")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, tc := range []struct {
		name string
		d    trigger.Delivery
		dup  bool
	}{
		{"redelivery", delivery(first), true},
		{"replay under a new id", trigger.Delivery{ID: second, Event: "push", Body: delivery(first).Body}, true},
		{"uppercase id, its own body", delivery(strings.ToUpper(first)), false},
		{"new", delivery(second), false},
	} {
		dup, err := q.Accept(ctx, tc.d, "")
		if err != nil || dup != tc.dup {
			t.Errorf("%s: Accept(%s) = %v, %v; want duplicate %v", tc.name, tc.d.ID, dup, err, tc.dup)
		}
	}
	if seen, _ := q.Seen(ctx, first); !seen {
		t.Errorf("Seen(%s) = false after reopening", first)
	}
}
