package queue

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/accord-build/accord/internal/trigger"
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

// Bodies encoded into reused buffers (bodyBufs) come back as they were,
// however many accepts share commits and buffers.
func TestPooledBodiesStayIntact(t *testing.T) {
	ctx := context.Background()
	q := openReal(t)
	body := func(i int) []byte {
		// Sizes and contents differ, compressible or not.
		b := []byte(strings.Repeat(fmt.Sprintf(`{"n":%d,"pad":"%x"},`, i, i*7919), 1+i%40))
		if i%3 == 0 {
			for j := range b {
				b[j] ^= byte(j*i + j>>3)
			}
		}
		return b
	}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := trigger.Delivery{ID: fmt.Sprintf("p%d", i), Event: "push", Body: body(i)}
			if _, err := q.Accept(ctx, d, ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 300 {
		sd, found, err := q.Delivery(ctx, fmt.Sprintf("p%d", i))
		if err != nil || !found || !bytes.Equal(sd.Body, body(i)) {
			t.Fatalf("p%d: found=%v err=%v, body of %d bytes differs from the %d accepted", i, found, err, len(sd.Body), len(body(i)))
		}
	}
	if c := q.Stats().Commits; c >= 300 {
		t.Logf("%d commits for 300 accepts: they did not share commits, so buffers were not reused under load", c)
	}
}

// appendBody writes into the memory it is given when it is big enough.
func TestAppendBodyReusesMemory(t *testing.T) {
	buf := make([]byte, 0, 64<<10)
	for _, b := range [][]byte{[]byte(strings.Repeat("abc", 500)), {1, 2, 3}, nil} {
		enc := appendBody(buf, b)
		if &enc[0] != &buf[:1][0] {
			t.Errorf("a body of %d bytes was encoded into new memory", len(b))
		}
		if got, err := decodeBody(enc); err != nil || !bytes.Equal(got, b) {
			t.Errorf("round trip of %d bytes: %d bytes, %v", len(b), len(got), err)
		}
	}
}

// Through the real intake Handler, concurrent deliveries of different
// sizes (their bodies encoded into reused buffers) are all stored intact.
func TestIntakeBodiesStoredIntact(t *testing.T) {
	q := openReal(t)
	secret := []byte("intake-pool-secret")
	secrets, err := trigger.NewSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&trigger.Handler{Secrets: secrets, Store: q})
	defer srv.Close()
	body := func(i int) []byte {
		return fmt.Appendf(nil, `{"ref":"refs/heads/main","n":%d,"pad":%q}`, i, strings.Repeat(string(rune('a'+i%26)), (i*977)%20000))
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := body(i)
			mac := hmac.New(sha256.New, secret)
			mac.Write(b)
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("intake-%d", i))
			req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("delivery %d: %s", i, resp.Status)
			}
		}()
	}
	wg.Wait()
	for i := range 200 {
		sd, found, err := q.Delivery(context.Background(), fmt.Sprintf("intake-%d", i))
		if err != nil || !found || !bytes.Equal(sd.Body, body(i)) {
			t.Fatalf("intake-%d: found=%v err=%v; stored body differs from the one sent (%d bytes against %d)", i, found, err, len(sd.Body), len(body(i)))
		}
	}
}
