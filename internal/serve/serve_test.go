package serve

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTailKeepsTheEnd(t *testing.T) {
	var tl tail
	for i := 0; i < 5000; i++ {
		tl.Write([]byte(strings.Repeat("x", 30) + "\n"))
	}
	tl.Write([]byte("the last line\n"))
	s := tl.String()
	if !strings.HasPrefix(s, "[earlier output cut]\n") || !strings.HasSuffix(s, "the last line\n") || len(s) > maxLog+32 {
		t.Errorf("tail: %d bytes, starts %q, ends %q", len(s), s[:30], s[len(s)-20:])
	}
	if lines := strings.Split(strings.TrimPrefix(s, "[earlier output cut]\n"), "\n"); len(lines[0]) != 30 {
		t.Errorf("the tail starts mid-line: %q", lines[0])
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"token ghp_abcdef in the log", "token *** in the log"},
		{"webhook It's a secret! twice It's a secret!", "webhook *** twice ***"},
		{"abc is too short to mask", "abc is too short to mask"},
	} {
		if got := mask(tc.in, []string{"ghp_abcdef", "It's a secret!", "abc"}); got != tc.want {
			t.Errorf("mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestObserveBoundsLabels: what an unverified request says never becomes
// a label; a verified but unknown event is "other".
func TestObserveBoundsLabels(t *testing.T) {
	m := newMetrics(nil)
	m.observe("push", "accepted", time.Millisecond)
	m.observe("evil-label-from-a-forger", "unauthorized", time.Millisecond)
	m.observe("", "too_large", time.Millisecond)
	m.observe("some_new_event", "ignored", time.Millisecond)
	for _, tc := range []struct {
		event, verdict string
		want           float64
	}{
		{"push", "accepted", 1}, {"unverified", "unauthorized", 1}, {"unverified", "too_large", 1}, {"other", "ignored", 1},
		{"evil-label-from-a-forger", "unauthorized", 0},
	} {
		if got := testutil.ToFloat64(m.deliveries.WithLabelValues(tc.event, tc.verdict)); got != tc.want {
			t.Errorf("deliveries{%s,%s} = %v, want %v", tc.event, tc.verdict, got, tc.want)
		}
	}
}

func TestBackoffFor(t *testing.T) {
	prev := time.Duration(0)
	for _, d := range []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		b := backoffFor(d)
		if b < prev || b < 5*time.Second || b > 5*time.Minute {
			t.Errorf("backoffFor(%s) = %s", d, b)
		}
		prev = b
	}
}
