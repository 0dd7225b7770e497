package queue

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

// Bodies come back byte for byte, compressed when that is smaller.
func TestBodyRoundTrip(t *testing.T) {
	random := make([]byte, 4096)
	rand.Read(random)
	push := []byte(`{"ref":"refs/heads/main","repository":{"url":"https://github.com/o/r"},"x":"` + strings.Repeat("https://api.github.com/repos/o/r/", 100) + `"}`)
	for _, tc := range []struct {
		name   string
		body   []byte
		format byte
	}{
		{"empty", []byte{}, bodyRaw},
		{"tiny", []byte(`{}`), bodyRaw},
		{"incompressible", random, bodyRaw},
		{"payload", push, bodyS2},
	} {
		enc := encodeBody(tc.body)
		if enc[0] != tc.format {
			t.Errorf("%s: stored as %q, want %q", tc.name, enc[0], tc.format)
		}
		if tc.format == bodyS2 && len(enc) >= len(tc.body)/2 {
			t.Errorf("%s: %d bytes stored for %d", tc.name, len(enc), len(tc.body))
		}
		got, err := decodeBody(enc)
		if err != nil || !bytes.Equal(got, tc.body) {
			t.Errorf("%s: decoded %d bytes, %v; want the %d stored", tc.name, len(got), err, len(tc.body))
		}
	}
	for _, bad := range [][]byte{nil, {}, {'x', 1, 2}, {bodyS2, 0xff, 0xff, 0xff}} {
		if _, err := decodeBody(bad); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("decodeBody(%q) = %v, want an error saying the database is damaged", bad, err)
		}
	}
}

// FuzzBody: any body comes back as it was; any stored value decodes or
// fails with an error, never a panic.
func FuzzBody(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`))
	f.Add([]byte(strings.Repeat("abc", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeBody(encodeBody(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %q: %q, %v", b, got, err)
		}
		decodeBody(b)
	})
}
