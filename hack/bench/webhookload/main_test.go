package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/trigger"
)

// memQueue is a tiny Acceptor: de-duplicates by id, records what it stored.
type memQueue struct {
	mu     sync.Mutex
	stored map[string]trigger.Delivery
}

func (q *memQueue) Accept(_ context.Context, d trigger.Delivery, _ string) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.stored[d.ID]; ok {
		return true, nil
	}
	q.stored[d.ID] = d
	return false, nil
}

func serve(t *testing.T, secret string) (*httptest.Server, *memQueue) {
	t.Helper()
	s, err := trigger.NewSecrets([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	q := &memQueue{stored: map[string]trigger.Delivery{}}
	srv := httptest.NewServer(&trigger.Handler{Secrets: s, Store: q})
	t.Cleanup(srv.Close)
	return srv, q
}

func TestRun(t *testing.T) {
	srv, q := serve(t, "load secret")
	out := filepath.Join(t.TempDir(), "accepted.txt")
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"closed loop", options{N: 300, C: 8}},
		{"open loop", options{N: 100, C: 4, Rate: 2000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q.mu.Lock()
			clear(q.stored)
			q.mu.Unlock()
			o := tc.o
			o.URL, o.Secret, o.Events, o.Out, o.Unique, o.Timeout, o.HookID = srv.URL, "load secret", "builtin", out, true, 5*time.Second, "7"
			res, err := run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != o.N || res.OK != o.N || res.Status["202"] != o.N || res.Errors != 0 {
				t.Fatalf("result %+v", res)
			}
			if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.RPS <= 0 {
				t.Errorf("latencies %+v", res)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			ids := strings.Fields(string(b))
			var stored []string
			bodies := map[string]bool{}
			for id, d := range q.stored {
				stored = append(stored, id)
				bodies[string(d.Body)] = true
				if d.Event != "push" || d.HookID != "7" || !json.Valid(d.Body) {
					t.Fatalf("stored %s: event %q hook %q", id, d.Event, d.HookID)
				}
			}
			slices.Sort(ids)
			slices.Sort(stored)
			if !slices.Equal(ids, stored) {
				t.Errorf("-out has %d ids, the queue %d, not the same", len(ids), len(stored))
			}
			if len(bodies) != o.N {
				t.Errorf("%d distinct bodies for %d deliveries", len(bodies), o.N)
			}
		})
	}
}

// A wrong secret: every delivery refused, none in -out.
func TestRunWrongSecret(t *testing.T) {
	srv, q := serve(t, "the server's secret")
	out := filepath.Join(t.TempDir(), "accepted.txt")
	res, err := run(context.Background(), options{URL: srv.URL, Secret: "another", N: 50, C: 4, Events: "builtin", Out: out, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status["401"] != 50 || res.OK != 0 || len(q.stored) != 0 {
		t.Fatalf("result %+v, stored %d", res, len(q.stored))
	}
	if b, _ := os.ReadFile(out); len(b) != 0 {
		t.Errorf("-out has %q", b)
	}
}

func TestLoadEvents(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	push := write("push-branch.json", `{"ref":"refs/heads/main"}`)
	ping := write("ping.json", " {}\n")
	list := write("list.json", `[{"event":"release","payload":{"action":"published"}},{"event":"create","payload":{"ref_type":"tag"}}]`)
	bad := write("bad.json", `[1]`)
	evs, err := loadEvents(push + "," + ping + "," + list)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Name)
	}
	if want := []string{"push", "ping", "release", "create"}; !slices.Equal(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}
	if _, err := loadEvents(bad); err == nil {
		t.Error("an array of non-events was taken")
	}
	if b := builtinPush(); len(b) < 5000 || !json.Valid(b) {
		t.Errorf("builtin push: %d bytes", len(b))
	}
}

func TestWithSeq(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1}`, `{"accord_load":7,"a":1}`},
		{`{}`, `{"accord_load":7}`},
		{`{ }`, `{"accord_load":7}`},
		{"{\n \"a\": [1]\n}", `{"accord_load":7,"a": [1]` + "\n}"},
	} {
		got := withSeq(nil, []byte(tc.in), 7)
		if !bytes.Equal(got, []byte(tc.want)) || !json.Valid(got) {
			t.Errorf("withSeq(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		code        int
		closing     bool
		err         string
	}{
		{"accepted", "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{}\n\n\nNEXT", 202, false, ""},
		{"closing", "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nConnection: close\r\n\r\n", 503, true, ""},
		{"early error of net/http", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", 400, true, ""},
		{"no length, kept open", "HTTP/1.1 200 OK\r\n\r\n", 0, false, "without a Content-Length"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, false, "Transfer-Encoding"},
		{"bad status", "HTTP/1.1 2x2 Huh\r\n\r\n", 0, false, "malformed status line"},
		{"not http", "SSH-2.0-OpenSSH\r\n", 0, false, "malformed status line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", 0, false, "malformed Content-Length"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, "EOF"},
	} {
		br := bufio.NewReader(strings.NewReader(tc.reply))
		code, closing, err := readReply(br)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || code != tc.code || closing != tc.closing {
			t.Errorf("%s: %d closing=%v %v; want %d closing=%v", tc.name, code, closing, err, tc.code, tc.closing)
		}
		if tc.name == "accepted" {
			if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
				t.Errorf("%s: the next reply starts at %q", tc.name, rest)
			}
		}
	}
}
