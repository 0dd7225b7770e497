package trigger

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler sends random deliveries: random bodies, signatures (right,
// with another secret, or any text), content types, headers and methods.
// The handler never panics, always answers JSON, answers 2xx only when the
// signature is right, never calls the store when it is not, and stores
// exactly the raw body under the header's delivery id.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(pushBody), uint8(0), "", "application/json", "push", guid, uint8(0), false)
	f.Add([]byte(pushBody), uint8(1), "", "application/json", "push", guid, uint8(0), true)
	f.Add([]byte(`{"zen":"x"}`), uint8(0), "", "application/json", "ping", guid, uint8(0), false)
	f.Add([]byte(`{}`), uint8(0), "", "application/json", "star", "x", uint8(0), false)
	f.Add([]byte(`[1]`), uint8(0), "", "application/json; charset=utf-8", "push", guid, uint8(0), false)
	f.Add([]byte("payload=%7B%7D"), uint8(0), "", "application/x-www-form-urlencoded", "push", guid, uint8(0), false)
	f.Add([]byte(`{"a":1}`), uint8(2), "sha256=00", "application/json", "push", guid, uint8(0), false)
	f.Add([]byte(`{"a":1}`), uint8(3), "", "application/json", "push", guid, uint8(1), false)
	f.Add([]byte(strings.Repeat("x", 5000)), uint8(0), "", "application/json", "push<>", "a b", uint8(2), true)
	methods := []string{http.MethodPost, http.MethodGet, http.MethodPut, "BREW"}
	f.Fuzz(func(t *testing.T, body []byte, sigMode uint8, sigText, ct, event, id string, method uint8, noLength bool) {
		mem := newMem()
		h := newHandler(t, mem, nil)
		h.MaxBody = 4096
		var rd io.Reader = bytes.NewReader(body)
		if noLength {
			rd = chunked{rd}
		}
		r := httptest.NewRequest(http.MethodPost, "/webhooks/github", rd)
		r.Method = methods[int(method)%len(methods)]
		if noLength {
			r.ContentLength = -1
		}
		r.Header = http.Header{}
		setRaw := func(k, v string) {
			if v != "" {
				r.Header[k] = []string{v}
			}
		}
		setRaw("Content-Type", ct)
		setRaw("X-Github-Event", event)
		setRaw("X-Github-Delivery", id)
		switch sigMode % 4 {
		case 0:
			setRaw("X-Hub-Signature-256", Sign(secretA, body))
		case 1:
			setRaw("X-Hub-Signature-256", Sign(secretB, body))
		case 2:
			setRaw("X-Hub-Signature-256", sigText)
		case 3:
			setRaw("X-Hub-Signature-256", Sign(secretC, body))
			setRaw("X-Hub-Signature", sigText)
		}
		sig := r.Header.Get("X-Hub-Signature-256")
		signedRight := sig == Sign(secretA, body) || sig == Sign(secretB, body) ||
			(len(sig) == 71 && strings.EqualFold(sig[7:], Sign(secretA, body)[7:]) && sig[:7] == "sha256=") ||
			(len(sig) == 71 && strings.EqualFold(sig[7:], Sign(secretB, body)[7:]) && sig[:7] == "sha256=")

		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		var rep reply
		if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
			t.Fatalf("reply %q is not JSON: %v", w.Body.String(), err)
		}
		calls, stored := mem.count()
		ok2xx := w.Code >= 200 && w.Code < 300
		if ok2xx && !signedRight {
			t.Fatalf("%d for a delivery not signed right (signature %q)", w.Code, sig)
		}
		if !signedRight && calls != 0 {
			t.Fatalf("the store was called for a delivery not signed right (%d)", w.Code)
		}
		if w.Code == 401 && (calls != 0 || signedRight && r.Method == http.MethodPost && len(body) <= 4096) {
			t.Fatalf("401 for a right signature, or with a store call (%d calls)", calls)
		}
		if w.Code == 413 && len(body) <= 4096 {
			t.Fatalf("413 for %d bytes", len(body))
		}
		switch rep.Status {
		case StatusAccepted, StatusIgnored:
			if w.Code != 202 || stored != 1 || !bytes.Equal(mem.stored[id].Body, body) || rep.Delivery != id {
				t.Fatalf("%s (%d): stored %d, body kept %v", rep.Status, w.Code, stored, bytes.Equal(mem.stored[id].Body, body))
			}
		case StatusPong:
			if w.Code != 200 || event != "ping" || calls != 0 {
				t.Fatalf("pong with %d, event %q, %d calls", w.Code, event, calls)
			}
		case StatusRefused:
			if ok2xx || stored != 0 {
				t.Fatalf("refused with %d, %d stored", w.Code, stored)
			}
		default:
			t.Fatalf("status %q", rep.Status)
		}
	})
}
