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

// jsonObjectOracle is what isJSONObject must answer: json.Valid, and an
// object first.
func jsonObjectOracle(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return json.Valid(b) && len(t) > 0 && t[0] == '{'
}

var jsonCases = []string{
	`{}`, ` {} `, "\t{\n}\r\n", `{"a":1}`, `{"a":[1,2,{"b":null}],"c":true,"d":false}`,
	`{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`, `{"s":"é中"}`, "{\"s\":\"\xff\xfe\"}",
	`{"n":-0}`, `{"n":0.5e+10}`, `{"n":1E-2}`, `{"n":-12.50}`, `{"n":123456789012345678901234567890}`,
	`{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":-}`, `{"n":1e}`, `{"n":+1}`, `{"n":0x10}`, `{"n":NaN}`,
	`{"s":"\x"}`, `{"s":"\u12"}`, `{"s":"\u12g4"}`, "{\"s\":\"a\x01b\"}", "{\"s\":\"a\x7fb\"}", `{"s":"abc}`,
	`{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`, `{'a':1}`, `{"a":1}{}`, `{"a":1} x`, `{"a":1`,
	`[]`, `[{}]`, `"x"`, `1`, `null`, ``, ` `, `{`, `}`, "\ufeff{}", `{"a":tru}`, `{"a":nul}`, `{"a":True}`,
	`{"a":[1 2]}`, `{"a":[,1]}`, `{"a":[1,]}`, `{"a":[]]}`, `{"a":{"b":{}}}`, "{\"a\":1}\x00",
	"{\"a\":\n1\n}", "{\v}", "{\f}",
}

func TestIsJSONObject(t *testing.T) {
	cases := append([]string{}, jsonCases...)
	for _, depth := range []int{9998, 9999, 10000, 10001, 20000} {
		// an object holding arrays nested to depth in all
		cases = append(cases, `{"a":`+strings.Repeat("[", depth-1)+strings.Repeat("]", depth-1)+`}`)
	}
	for _, c := range cases {
		if got, want := isJSONObject([]byte(c)), jsonObjectOracle([]byte(c)); got != want {
			t.Errorf("isJSONObject(%.60q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

// FuzzJSONObject: isJSONObject agrees with json.Valid on every input.
func FuzzJSONObject(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	for _, c := range repoCases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(pushBody))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, repo := scanObject(b)
		if want := jsonObjectOracle(b); got != want {
			t.Fatalf("isJSONObject(%q) = %v, json.Valid says %v", b, got, want)
		}
		if repo == "" {
			return
		}
		if want, ok := repoOracle(b); !ok || repo != want {
			t.Fatalf("scanObject(%q) read repository %q; encoding/json decodes %q (ok %v)", b, repo, want, ok)
		}
	})
}

// repoOracle is repository.full_name as go-github's payload types decode
// it with encoding/json (pointers, as theirs are).
func repoOracle(b []byte) (string, bool) {
	var p struct {
		Repository *struct {
			FullName *string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Repository == nil || p.Repository.FullName == nil {
		return "", false
	}
	return *p.Repository.FullName, true
}

// repoCases: what scanObject reads as the repository; "" is unsure
// (the dispatcher then decodes the payload in full).
var repoCases = []struct{ body, repo string }{
	{`{"repository":{"full_name":"o/r"}}`, "o/r"},
	{`{"ref":"x","repository":{"id":1,"name":"r","full_name":"o/r","owner":{"full_name":"no"}},"sender":{}}`, "o/r"},
	{` { "repository" : { "full_name" : "o/r" } } `, "o/r"},
	{`{"repository":{"owner":{"full_name":"o/x"}}}`, ""},                        // only deeper
	{`{"full_name":"o/r"}`, ""},                                                 // not in a repository
	{`{"pull_request":{"repository":{"full_name":"o/r"}}}`, ""},                 // not at the top
	{`{"Repository":{"full_name":"o/r"}}`, ""},                                  // encoding/json matches it too
	{`{"repository":{"FULL_NAME":"o/r"}}`, ""},                                  // likewise
	{`{"repository":{"full_name":"o/r"},"REPOSITORY":{"full_name":"x/y"}}`, ""}, // the last one wins there
	{`{"repo\u0073itory":{"full_name":"o/r"}}`, ""},                             // an escaped key
	{`{"repoſitory":{"full_name":"x/y"},"repository":{"full_name":"o/r"}}`, ""}, // folds to REPOSITORY
	{`{"repository":{"full_nam\u0065":"x/y","full_name":"o/r"}}`, ""},
	{`{"repository":{"full_name":"o/r","full_name":"x/y"}}`, ""},
	{`{"repository":{"full_name":"o/r"},"repository":{"full_name":"x/y"}}`, ""},
	{`{"repository":{"full_name":"o/r"},"repository":null}`, ""},
	{`{"repository":null}`, ""},
	{`{"repository":[{"full_name":"o/r"}]}`, ""},
	{`{"repository":{"full_name":null}}`, ""},
	{`{"repository":{"full_name":1}}`, ""},
	{`{"repository":{"full_name":""}}`, ""},
	{`{"repository":{"full_name":"o\/r"}}`, ""},
	{`{"repository":{"full_name":"\u006f/r"}}`, ""},
	{`{"repository":{"full_name":"é/r"}}`, ""},
	{"{\"repository\":{\"full_name\":\"o/\xffr\"}}", ""},
	{`{"repository":{"full_name":"o/r"}`, ""}, // not JSON
	{`{"repository":{"full_name":"o/r"}} x`, ""},
}

func TestScanObjectRepo(t *testing.T) {
	for _, c := range repoCases {
		ok, repo := scanObject([]byte(c.body))
		if ok != jsonObjectOracle([]byte(c.body)) {
			t.Errorf("scanObject(%s): JSON object %v, json.Valid disagrees", c.body, ok)
		}
		if repo != c.repo {
			t.Errorf("scanObject(%s) = %q, want %q", c.body, repo, c.repo)
		}
		if want, _ := repoOracle([]byte(c.body)); repo != "" && repo != want {
			t.Errorf("scanObject(%s) = %q, encoding/json decodes %q", c.body, repo, want)
		}
	}
	if _, repo := scanObject([]byte(pushBody)); repo == "" {
		t.Errorf("the documented push payload's repository is not read")
	}
}

func BenchmarkIsJSONObject(b *testing.B) {
	body, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "commits": []any{map[string]any{
		"message": strings.Repeat("a commit message \"quoted\" \\ and é ", 100), "n": 12.5e3, "ok": true}}})
	for _, tc := range []struct {
		name string
		f    func([]byte) bool
	}{{"isJSONObject", isJSONObject}, {"json.Valid", json.Valid}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !tc.f(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
