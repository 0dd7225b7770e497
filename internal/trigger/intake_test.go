package trigger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	secretA = []byte("first webhook secret")
	secretB = []byte("second webhook secret, rotated in")
	secretC = []byte("a secret the server does not know")
)

const (
	pushBody = `{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"o/r"}}`
	guid     = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
)

var fixedNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// memAcceptor is an in-memory Acceptor: de-duplicates by ID, records every call.
type memAcceptor struct {
	mu      sync.Mutex
	calls   int
	stored  map[string]Delivery
	ignored map[string]string
	err     error
	block   bool // wait for ctx to end, then fail with its error
}

func newMem() *memAcceptor {
	return &memAcceptor{stored: map[string]Delivery{}, ignored: map[string]string{}}
}

func (m *memAcceptor) Accept(ctx context.Context, d Delivery, ignored string) (bool, error) {
	m.mu.Lock()
	m.calls++
	block, err := m.block, m.err
	m.mu.Unlock()
	if block {
		<-ctx.Done()
		return false, ctx.Err()
	}
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.stored[d.ID]; ok {
		return true, nil
	}
	m.stored[d.ID] = d
	m.ignored[d.ID] = ignored
	return false, nil
}

func (m *memAcceptor) count() (calls, stored int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls, len(m.stored)
}

// observed records Observe calls.
type observed struct {
	mu   sync.Mutex
	seen [][2]string
}

func (o *observed) observe(event, verdict string, _ time.Duration) {
	o.mu.Lock()
	o.seen = append(o.seen, [2]string{event, verdict})
	o.mu.Unlock()
}

func mustSecrets(t testing.TB, keys ...[]byte) *Secrets {
	t.Helper()
	s, err := NewSecrets(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newHandler(t testing.TB, store Acceptor, obs *observed) *Handler {
	h := &Handler{
		Secrets: mustSecrets(t, secretA, secretB),
		Store:   store,
		Handles: func(e string) bool { return e == "push" || e == "pull_request" },
		Now:     func() time.Time { return fixedNow },
		MaxBody: 1 << 16,
	}
	if obs != nil {
		h.Observe = obs.observe
	}
	return h
}

// delivery builds a request GitHub would send: body signed with secret.
func delivery(event, id, body string, secret []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	if event != "" {
		r.Header.Set("X-GitHub-Event", event)
	}
	if id != "" {
		r.Header.Set("X-GitHub-Delivery", id)
	}
	r.Header.Set("X-GitHub-Hook-ID", "292430182")
	if secret != nil {
		r.Header.Set("X-Hub-Signature-256", Sign(secret, []byte(body)))
	}
	return r
}

type reply struct {
	Delivery string `json:"delivery"`
	Status   string `json:"status"`
	Message  string `json:"message"`
}

func decodeReply(t testing.TB, w *httptest.ResponseRecorder) reply {
	t.Helper()
	var rep reply
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatalf("reply %q: %v", w.Body.String(), err)
	}
	return rep
}

// signSHA1 is the legacy X-Hub-Signature GitHub also sends.
func signSHA1(secret []byte, body string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(body))
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// chunked hides a reader's length, as a body sent without Content-Length.
type chunked struct{ io.Reader }

func TestHandlerReplies(t *testing.T) {
	signed := func(r *http.Request) *http.Request { return r }
	with := func(f func(r *http.Request)) func(*http.Request) *http.Request {
		return func(r *http.Request) *http.Request { f(r); return r }
	}
	big := `{"pad":"` + strings.Repeat("x", 1<<16) + `"}`
	tests := []struct {
		name      string
		req       *http.Request
		edit      func(*http.Request) *http.Request
		code      int
		status    string
		verdict   string
		event     string // the label Observe gets
		stored    bool
		ignored   string
		storeErr  error
		inMessage string
	}{
		{name: "accepted", req: delivery("push", guid, pushBody, secretA), edit: signed,
			code: 202, status: "accepted", verdict: "accepted", event: "push", stored: true},
		{name: "accepted with the rotated secret", req: delivery("push", guid, pushBody, secretB), edit: signed,
			code: 202, status: "accepted", verdict: "accepted", event: "push", stored: true},
		{name: "charset parameter", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }),
			code: 202, status: "accepted", verdict: "accepted", event: "push", stored: true},
		{name: "event not built", req: delivery("star", guid, `{"action":"created"}`, secretA), edit: signed,
			code: 202, status: "ignored", verdict: "ignored", event: "star", stored: true, ignored: "event star is not built"},
		{name: "ping", req: delivery("ping", guid, `{"zen":"Keep it logically awesome.","hook_id":1}`, secretA), edit: signed,
			code: 200, status: "pong", verdict: "ping", event: "ping"},
		{name: "store fails", req: delivery("push", guid, pushBody, secretA), edit: signed, storeErr: errors.New("disk full"),
			code: 503, status: "refused", verdict: "unavailable", event: "push", inMessage: "redeliver"},
		{name: "GET", req: httptest.NewRequest(http.MethodGet, "/webhooks/github", nil), edit: signed,
			code: 405, status: "refused", verdict: "method"},
		{name: "PUT signed", req: delivery("push", guid, pushBody, secretA), edit: with(func(r *http.Request) { r.Method = http.MethodPut }),
			code: 405, status: "refused", verdict: "method"},
		{name: "Content-Length over the cap", req: delivery("push", guid, big, secretA), edit: signed,
			code: 413, status: "refused", verdict: "too_large"},
		{name: "body without length grows over the cap", req: delivery("push", guid, big, secretA),
			edit: with(func(r *http.Request) { r.Body = io.NopCloser(chunked{strings.NewReader(big)}); r.ContentLength = -1 }),
			code: 413, status: "refused", verdict: "too_large"},
		{name: "body without length within the cap", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) {
				r.Body = io.NopCloser(chunked{strings.NewReader(pushBody)})
				r.ContentLength = -1
			}),
			code: 202, status: "accepted", verdict: "accepted", event: "push", stored: true},
		{name: "body longer than its Content-Length", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.ContentLength = 10 }),
			code: 400, status: "refused", verdict: "bad_request"},
		{name: "body shorter than its Content-Length", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.ContentLength = int64(len(pushBody) + 5) }),
			code: 400, status: "refused", verdict: "bad_request"},
		{name: "no signature", req: delivery("push", guid, pushBody, nil), edit: signed,
			code: 401, status: "refused", verdict: "unauthorized", inMessage: "missing"},
		{name: "SHA-1 only", req: delivery("push", guid, pushBody, nil),
			edit: with(func(r *http.Request) {
				r.Header.Set("X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567")
			}),
			code: 401, status: "refused", verdict: "unauthorized", inMessage: "SHA-1"},
		{name: "right SHA-1 signature only", req: delivery("push", guid, pushBody, nil),
			edit: with(func(r *http.Request) { r.Header.Set("X-Hub-Signature", signSHA1(secretA, pushBody)) }),
			code: 401, status: "refused", verdict: "unauthorized", inMessage: "SHA-1"},
		{name: "right SHA-1 signature, wrong SHA-256", req: delivery("push", guid, pushBody, secretC),
			edit: with(func(r *http.Request) { r.Header.Set("X-Hub-Signature", signSHA1(secretA, pushBody)) }),
			code: 401, status: "refused", verdict: "unauthorized"},
		{name: "unknown secret", req: delivery("push", guid, pushBody, secretC), edit: signed,
			code: 401, status: "refused", verdict: "unauthorized", inMessage: "does not match"},
		{name: "signature sent twice", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.Header.Add("X-Hub-Signature-256", Sign(secretC, []byte(pushBody))) }),
			code: 401, status: "refused", verdict: "unauthorized"},
		{name: "body changed after signing", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) {
				b := strings.Replace(pushBody, "main", "evil", 1)
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
			}),
			code: 401, status: "refused", verdict: "unauthorized"},
		{name: "signed form-encoded", req: delivery("push", guid, "payload=%7B%7D", secretA),
			edit: with(func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }),
			code: 400, status: "refused", verdict: "bad_request", inMessage: "application/json"},
		{name: "no content type", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.Header.Del("Content-Type") }),
			code: 400, status: "refused", verdict: "bad_request", inMessage: "application/json"},
		{name: "text/plain", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }),
			code: 400, status: "refused", verdict: "bad_request"},
		{name: "no event", req: delivery("", guid, pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", inMessage: "X-GitHub-Event"},
		{name: "event with markup", req: delivery("push<script>", guid, pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", inMessage: "X-GitHub-Event"},
		{name: "event too long", req: delivery(strings.Repeat("a", 65), guid, pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request"},
		{name: "event twice", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.Header.Add("X-GitHub-Event", "release") }),
			code: 400, status: "refused", verdict: "bad_request"},
		{name: "no delivery id", req: delivery("push", "", pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push", inMessage: "X-GitHub-Delivery"},
		{name: "delivery id with a slash", req: delivery("push", "../../etc/passwd", pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "delivery id with a space", req: delivery("push", "a b", pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "delivery id too long", req: delivery("push", strings.Repeat("f", 101), pushBody, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "hook id not a number", req: delivery("push", guid, pushBody, secretA),
			edit: with(func(r *http.Request) { r.Header.Set("X-GitHub-Hook-ID", "12x") }),
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "not JSON", req: delivery("push", guid, `{"ref":`, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push", inMessage: "JSON object"},
		{name: "JSON array", req: delivery("push", guid, `[{"ref":"x"}]`, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "JSON string", req: delivery("push", guid, `"{}"`, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "trailing garbage", req: delivery("push", guid, `{} {}`, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
		{name: "empty body", req: delivery("push", guid, ``, secretA), edit: signed,
			code: 400, status: "refused", verdict: "bad_request", event: "push"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem()
			mem.err = tc.storeErr
			obs := &observed{}
			h := newHandler(t, mem, obs)
			r := tc.edit(tc.req)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			rep := decodeReply(t, w)
			if w.Code != tc.code || rep.Status != tc.status {
				t.Fatalf("got %d %q (%s), want %d %q", w.Code, rep.Status, rep.Message, tc.code, tc.status)
			}
			if !strings.Contains(rep.Message, tc.inMessage) {
				t.Errorf("message %q does not say %q", rep.Message, tc.inMessage)
			}
			if want := [][2]string{{tc.event, tc.verdict}}; len(obs.seen) != 1 || obs.seen[0] != want[0] {
				t.Errorf("observed %v, want %v", obs.seen, want)
			}
			_, n := mem.count()
			if got := n == 1 && tc.storeErr == nil; got != tc.stored {
				t.Fatalf("stored %v, want %v", got, tc.stored)
			}
			if tc.code == 405 && w.Header().Get("Allow") != "POST" {
				t.Errorf("405 without Allow: POST")
			}
			if !tc.stored {
				return
			}
			d := mem.stored[guid]
			if d.Event != tc.event || d.HookID != "292430182" || !d.Received.Equal(fixedNow) || rep.Delivery != guid {
				t.Errorf("stored %+v, reply %+v", d, rep)
			}
			if string(d.Body) != pushBody && tc.event == "push" {
				t.Errorf("stored body %q, want the raw body", d.Body)
			}
			if mem.ignored[guid] != tc.ignored {
				t.Errorf("ignored %q, want %q", mem.ignored[guid], tc.ignored)
			}
		})
	}
}

// A redelivery (same X-GitHub-Delivery) or a replay starts nothing new and says so.
func TestHandlerDuplicate(t *testing.T) {
	for _, tc := range []struct{ name, event, body, first string }{
		{"push", "push", pushBody, "accepted"},
		{"ignored event", "watch", `{"action":"started"}`, "ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem()
			obs := &observed{}
			h := newHandler(t, mem, obs)
			for i, secret := range [][]byte{secretA, secretA, secretB} {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, delivery(tc.event, guid, tc.body, secret))
				rep := decodeReply(t, w)
				want, code := "duplicate", 200
				if i == 0 {
					want, code = tc.first, 202
				}
				if rep.Status != want || w.Code != code {
					t.Fatalf("delivery %d: %d %q, want %d %q", i, w.Code, rep.Status, code, want)
				}
				if i > 0 && !strings.Contains(rep.Message, "nothing new was started") {
					t.Errorf("duplicate reply %q does not say nothing was started", rep.Message)
				}
			}
			if calls, n := mem.count(); calls != 3 || n != 1 {
				t.Errorf("calls %d stored %d, want 3 and 1", calls, n)
			}
		})
	}
}

// A store that does not answer gets a 503 within AcceptTimeout, well inside GitHub's 10 s.
func TestHandlerStoreTimeout(t *testing.T) {
	mem := newMem()
	mem.block = true
	h := newHandler(t, mem, nil)
	h.AcceptTimeout = 50 * time.Millisecond
	start := time.Now()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, delivery("push", guid, pushBody, secretA))
	if w.Code != 503 {
		t.Fatalf("code %d, want 503", w.Code)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
}

// Nil Secrets accept nothing.
func TestHandlerNoSecrets(t *testing.T) {
	for _, s := range []*Secrets{nil, {}} {
		mem := newMem()
		h := newHandler(t, mem, nil)
		h.Secrets = s
		for _, secret := range [][]byte{secretA, {}, nil} {
			w := httptest.NewRecorder()
			r := delivery("push", guid, pushBody, secret)
			if secret != nil && len(secret) == 0 {
				r.Header.Set("X-Hub-Signature-256", Sign(nil, []byte(pushBody)))
			}
			h.ServeHTTP(w, r)
			if w.Code != 401 {
				t.Errorf("secrets %v, signed with %q: %d, want 401", s, secret, w.Code)
			}
		}
		if calls, _ := mem.count(); calls != 0 {
			t.Errorf("store called %d times", calls)
		}
	}
}

// countJSON swaps the JSON check for one that counts its calls.
func countJSON(t *testing.T) *int {
	t.Helper()
	n := new(int)
	old := checkJSON
	checkJSON = func(b []byte) (bool, string) { *n++; return old(b) }
	t.Cleanup(func() { checkJSON = old })
	return n
}

// A bad signature never reaches the JSON parser nor the store, whatever the
// body, content type or headers (a forged request is not looked at).
func TestHandlerBadSignatureNeverParsed(t *testing.T) {
	parsed := countJSON(t)
	bodies := []string{pushBody, `{"ref":`, `not json`, `[]`, ``, strings.Repeat("{", 10000)}
	forge := []struct {
		name string
		sign func(r *http.Request, body string)
	}{
		{"none", func(r *http.Request, _ string) {}},
		{"unknown secret", func(r *http.Request, b string) { r.Header.Set("X-Hub-Signature-256", Sign(secretC, []byte(b))) }},
		{"other body", func(r *http.Request, b string) { r.Header.Set("X-Hub-Signature-256", Sign(secretA, []byte(b+" "))) }},
		{"sha1 only", func(r *http.Request, _ string) {
			r.Header.Set("X-Hub-Signature", "sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709")
		}},
		{"right sha1 only", func(r *http.Request, b string) { r.Header.Set("X-Hub-Signature", signSHA1(secretA, b)) }},
		{"sha1 prefix on a sha256", func(r *http.Request, b string) {
			r.Header.Set("X-Hub-Signature-256", "sha1="+strings.TrimPrefix(Sign(secretA, []byte(b)), "sha256="))
		}},
		{"truncated", func(r *http.Request, b string) { r.Header.Set("X-Hub-Signature-256", Sign(secretA, []byte(b))[:60]) }},
		{"empty", func(r *http.Request, _ string) { r.Header.Set("X-Hub-Signature-256", "") }},
		{"prefix only", func(r *http.Request, _ string) { r.Header.Set("X-Hub-Signature-256", "sha256=") }},
		{"zeros", func(r *http.Request, _ string) {
			r.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
		}},
		{"non-hex", func(r *http.Request, _ string) {
			r.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("zz", 32))
		}},
		{"space padded", func(r *http.Request, b string) { r.Header.Set("X-Hub-Signature-256", " "+Sign(secretA, []byte(b))) }},
	}
	for _, f := range forge {
		for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", ""} {
			for _, body := range bodies {
				mem := newMem()
				h := newHandler(t, mem, nil)
				r := delivery("push", guid, body, nil)
				r.Header.Set("Content-Type", ct)
				f.sign(r, body)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 401 {
					t.Errorf("%s, %q, body %.20q: %d, want 401", f.name, ct, body, w.Code)
				}
				if calls, _ := mem.count(); calls != 0 {
					t.Errorf("%s: the store was called", f.name)
				}
			}
		}
	}
	if *parsed != 0 {
		t.Errorf("the JSON parser ran %d times on forged requests", *parsed)
	}
}

// A forger cannot put its own header values into metrics labels or logs:
// before the signature is right, event and delivery are empty.
func TestHandlerForgedHeadersNotRepeated(t *testing.T) {
	var logs bytes.Buffer
	obs := &observed{}
	h := newHandler(t, newMem(), obs)
	h.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	for i := 0; i < 50; i++ {
		ev := "evt" + strings.Repeat("x", i)
		r := delivery(ev, "forged-"+ev, pushBody, secretC)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for _, s := range obs.seen {
		if s != [2]string{"", "unauthorized"} {
			t.Fatalf("observed %v for a forged request", s)
		}
	}
	if bytes.Contains(logs.Bytes(), []byte("evt")) || bytes.Contains(logs.Bytes(), []byte("forged")) {
		t.Errorf("forged headers logged:\n%s", logs.Bytes())
	}
}

// The log carries delivery and event, never the body or a secret.
func TestHandlerLog(t *testing.T) {
	var logs bytes.Buffer
	mem := newMem()
	h := newHandler(t, mem, nil)
	h.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	body := `{"ref":"refs/heads/main","head_commit":{"message":"body-marker"},"repository":{"full_name":"acme/widget"}}`
	h.ServeHTTP(httptest.NewRecorder(), delivery("push", guid, body, secretA))
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line["delivery"] != guid || line["event"] != "push" || line["verdict"] != "accepted" || line["repo"] != "acme/widget" {
		t.Errorf("log line %v", line)
	}
	if got := mem.stored[guid].Repo; got != "acme/widget" {
		t.Errorf("stored with repository %q, want the body's acme/widget", got)
	}
	for _, leak := range []string{"body-marker", string(secretA), string(secretB)} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("log carries %q", leak)
		}
	}
}

// Over a real server: bodies of many concurrent deliveries, with and
// without Content-Length, arrive intact and each once.
func TestHandlerOverHTTP(t *testing.T) {
	mem := newMem()
	h := newHandler(t, mem, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	const n = 64
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := `{"n":` + strings.Repeat("1", i+1) + `}`
			var rd io.Reader = strings.NewReader(body)
			if i%2 == 1 {
				rd = chunked{rd}
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, rd)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "d-"+strings.Repeat("1", i+1))
			req.Header.Set("X-Hub-Signature-256", Sign(secretB, []byte(body)))
			resp, err := srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 202 || resp.ContentLength <= 0 {
				errs <- errors.New(resp.Status)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := 0; i < n; i++ {
		d := mem.stored["d-"+strings.Repeat("1", i+1)]
		if want := `{"n":` + strings.Repeat("1", i+1) + `}`; string(d.Body) != want {
			t.Errorf("delivery %d: body %q, want %q", i, d.Body, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "<a&b>", "\x00\x1f\n\t", "é中", "bad\xffutf8", "\u2028\u2029"} {
		got := appendJSONString(nil, s)
		want, _ := json.Marshal(s)
		if !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

// nopAcceptor stores nothing and says every delivery is new.
type nopAcceptor struct{}

func (nopAcceptor) Accept(context.Context, Delivery, string) (bool, error) { return false, nil }

// replyRecorder is a minimal ResponseWriter that keeps only the code.
type replyRecorder struct {
	h    http.Header
	code int
}

func (r *replyRecorder) Header() http.Header         { return r.h }
func (r *replyRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *replyRecorder) WriteHeader(code int)        { r.code = code }

// benchRequest is a signed push of about 7 KB whose body can be rewound.
func benchRequest(tb testing.TB) (*http.Request, *strings.Reader) {
	body := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 7000) + `"}`
	r := delivery("push", guid, body, secretB)
	rd := strings.NewReader(body)
	r.Body = io.NopCloser(rd)
	return r, rd
}

// The handler's own allocations per delivery stay few: the body, the
// Delivery, the reply, the timeout context.
func TestHandlerAllocs(t *testing.T) {
	h := newHandler(t, nopAcceptor{}, nil)
	h.MaxBody = DefaultMaxBody
	r, rd := benchRequest(t)
	w := &replyRecorder{h: http.Header{}}
	n := testing.AllocsPerRun(200, func() {
		rd.Seek(0, io.SeekStart)
		h.ServeHTTP(w, r)
		if w.code != 202 {
			t.Fatalf("code %d", w.code)
		}
	})
	if n > 8 {
		t.Errorf("%v allocations per delivery, want at most 8", n)
	}
	t.Logf("%v allocations per delivery", n)
}

func BenchmarkHandler(b *testing.B) {
	h := newHandler(b, nopAcceptor{}, nil)
	h.MaxBody = DefaultMaxBody
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, rd := benchRequest(b)
		w := &replyRecorder{h: http.Header{}}
		for pb.Next() {
			rd.Seek(0, io.SeekStart)
			h.ServeHTTP(w, r)
			if w.code != 202 {
				b.Fatalf("code %d", w.code)
			}
		}
	})
}

// Bodies being read count against MaxInflight: requests that announce big
// bodies and send them slowly cannot make the server hold more than that
// before their signatures are checked.
func TestHandlerInflightBudget(t *testing.T) {
	mem := newMem()
	h := newHandler(t, mem, nil)
	h.MaxInflight = 1000
	slow := `{"pad":"` + strings.Repeat("x", 800-10) + `"}`
	pr, pw := io.Pipe()
	first := delivery("push", "slow-1", slow, secretA)
	first.Body, first.ContentLength = pr, int64(len(slow))
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, first)
		done <- w.Code
	}()
	for h.inflight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	big := `{"pad":"` + strings.Repeat("y", 300) + `"}`
	for _, tc := range []struct {
		name string
		req  *http.Request
		code int
	}{
		{"over the budget, signed", delivery("push", "big-1", big, secretA), 503},
		{"over the budget, forged", delivery("push", "big-2", big, secretC), 503},
		{"without a length: counted at MaxBody", func() *http.Request {
			r := delivery("push", "chunked-1", pushBody, secretA)
			r.Body, r.ContentLength = io.NopCloser(chunked{strings.NewReader(pushBody)}), -1
			return r
		}(), 503},
		{"within the budget", delivery("push", "small-1", pushBody, secretA), 202},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, tc.req)
		if w.Code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.code)
		}
	}
	io.WriteString(pw, slow)
	pw.Close()
	if code := <-done; code != 202 {
		t.Errorf("the slow delivery: %d, want 202", code)
	}
	if n := h.inflight.Load(); n != 0 {
		t.Errorf("%d bytes still counted", n)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, delivery("push", "big-1", big, secretA))
	if w.Code != 202 {
		t.Errorf("after the slow one: %d, want 202", w.Code)
	}
	if _, n := mem.count(); n != 3 {
		t.Errorf("%d stored, want 3", n)
	}
}
