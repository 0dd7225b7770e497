package fakegithub

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// probe is a testing.TB whose errors and cleanups the test sees, to check
// what the fake reports at the end of a test.
type probe struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (p *probe) Helper() {}
func (p *probe) Errorf(f string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Sprintf(f, a...))
}
func (p *probe) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

// finish runs the cleanups and returns the errors reported.
func (p *probe) finish() []string {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	return p.errs
}

// call makes one request to the fake; auth is the whole Authorization
// header, body is marshalled unless it is a string.
func call(t *testing.T, s *Server, method, path, auth string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(s.URL, "/")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// jwt signs claims with key under alg's name (RS256 signatures only; any
// other alg gets an RS256 signature, which GitHub would still refuse).
func jwt(t *testing.T, key *rsa.PrivateKey, alg string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func appJWT(t *testing.T, s *Server) string {
	now := time.Now().Unix()
	return jwt(t, s.key, "RS256", map[string]any{"iss": fmt.Sprint(s.AppID), "iat": now - 30, "exp": now + 90})
}

// installationToken exchanges a valid JWT for an installation token.
func installationToken(t *testing.T, s *Server) string {
	t.Helper()
	code, out := call(t, s, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", s.InstallationID), "Bearer "+appJWT(t, s), nil)
	if code != http.StatusCreated {
		t.Fatalf("token exchange: %d %v", code, out)
	}
	return out["token"].(string)
}

func TestAccessTokenJWT(t *testing.T) {
	s := New(t)
	s.AllowRefusals()
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	id := fmt.Sprint(s.AppID)
	path := fmt.Sprintf("/app/installations/%d/access_tokens", s.InstallationID)
	for _, tc := range []struct {
		name string
		auth string
		path string
		want int
	}{
		{"valid", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": now - 60, "exp": now + 540}), path, 201},
		{"iss as a number", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": s.AppID, "iat": now, "exp": now + 60}), path, 201},
		{"other key", "Bearer " + jwt(t, other, "RS256", map[string]any{"iss": id, "iat": now, "exp": now + 60}), path, 401},
		{"alg none", "Bearer " + jwt(t, s.key, "none", map[string]any{"iss": id, "iat": now, "exp": now + 60}), path, 401},
		{"alg HS256", "Bearer " + jwt(t, s.key, "HS256", map[string]any{"iss": id, "iat": now, "exp": now + 60}), path, 401},
		{"other app", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": "1", "iat": now, "exp": now + 60}), path, 401},
		{"no iss", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iat": now, "exp": now + 60}), path, 401},
		{"expired", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": now - 700, "exp": now - 100}), path, 401},
		{"over 10 minutes", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": now, "exp": now + 601}), path, 401},
		{"issued in the future", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": now + 120, "exp": now + 300}), path, 401},
		{"fractional iat", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": float64(now) + 0.5, "exp": now + 60}), path, 401},
		{"no exp", "Bearer " + jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": now}), path, 401},
		{"tampered claims", "Bearer " + tamper(jwt(t, s.key, "RS256", map[string]any{"iss": id, "iat": now, "exp": now + 60})), path, 401},
		{"other installation", "Bearer " + appJWT(t, s), "/app/installations/1/access_tokens", 404},
		{"personal token", "token " + s.Token, path, 401},
		{"no credentials", "", path, 401},
		{"basic auth", "Basic eDp5", path, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := call(t, s, "POST", tc.path, tc.auth, nil)
			if code != tc.want {
				t.Errorf("status %d (%v), want %d", code, out, tc.want)
			}
			if tc.want == 201 && !strings.HasPrefix(fmt.Sprint(out["token"]), "ghs_") {
				t.Errorf("no installation token in %v", out)
			}
		})
	}
	for _, c := range s.Calls() {
		if (c.Status == 201) == (c.Refused != "") {
			t.Errorf("%s: status %d, refused %q", c.Path, c.Status, c.Refused)
		}
	}
}

// tamper swaps the claims for others, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := json.Marshal(map[string]any{"iss": "4242", "iat": time.Now().Unix(), "exp": time.Now().Unix() + 500})
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

func TestCheckRunValidation(t *testing.T) {
	s := New(t)
	s.AllowRefusals()
	tok := "token " + installationToken(t, s)
	sha := strings.Repeat("ab", 20)
	base := func(mut func(m map[string]any)) map[string]any {
		m := map[string]any{"name": "accord", "head_sha": sha, "status": "queued", "external_id": "r1",
			"output": map[string]any{"title": "queued", "summary": "waiting"}}
		if mut != nil {
			mut(m)
		}
		return m
	}
	out := func(summary, text string) map[string]any {
		return map[string]any{"title": "t", "summary": summary, "text": text}
	}
	for _, tc := range []struct {
		name string
		auth string
		body any
		want int
	}{
		{"valid", tok, base(nil), 201},
		{"completed with conclusion", tok, base(func(m map[string]any) { m["status"], m["conclusion"] = "completed", "success" }), 201},
		{"limits exactly", tok, base(func(m map[string]any) {
			m["output"] = out(strings.Repeat("é", MaxOutput), strings.Repeat("x", MaxOutput))
		}), 201},
		{"bearer scheme", "Bearer" + strings.TrimPrefix(tok, "token"), base(nil), 201},
		{"no name", tok, base(func(m map[string]any) { delete(m, "name") }), 422},
		{"short sha", tok, base(func(m map[string]any) { m["head_sha"] = "abc123" }), 422},
		{"status waiting", tok, base(func(m map[string]any) { m["status"] = "waiting" }), 422},
		{"completed, no conclusion", tok, base(func(m map[string]any) { m["status"] = "completed" }), 422},
		{"completed_at, no conclusion", tok, base(func(m map[string]any) { m["completed_at"] = "2026-01-01T00:00:00Z" }), 422},
		{"conclusion stale", tok, base(func(m map[string]any) { m["conclusion"] = "stale" }), 422},
		{"bad timestamp", tok, base(func(m map[string]any) { m["started_at"] = "yesterday" }), 422},
		{"summary too long", tok, base(func(m map[string]any) { m["output"] = out(strings.Repeat("é", MaxOutput+1), "") }), 422},
		{"text too long", tok, base(func(m map[string]any) { m["output"] = out("s", strings.Repeat("x", MaxOutput+1)) }), 422},
		{"output without summary", tok, base(func(m map[string]any) { m["output"] = map[string]any{"title": "t"} }), 422},
		{"51 annotations", tok, base(func(m map[string]any) {
			m["output"] = map[string]any{"title": "t", "summary": "s", "annotations": make([]map[string]any, 51)}
		}), 422},
		{"details_url javascript", tok, base(func(m map[string]any) { m["details_url"] = "javascript:alert(1)" }), 422},
		{"action label too long", tok, base(func(m map[string]any) {
			m["actions"] = []map[string]string{{"label": strings.Repeat("l", 21), "description": "d", "identifier": "i"}}
		}), 422},
		{"unknown field", tok, base(func(m map[string]any) { m["colour"] = "red" }), 400},
		{"not JSON", tok, "{", 400},
		{"personal token", "token " + s.Token, base(nil), 403},
		{"App JWT", "Bearer " + appJWT(t, s), base(nil), 403},
		{"no credentials", "", base(nil), 401},
		{"made-up token", "token ghs_madeup", base(nil), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out := call(t, s, "POST", "/repos/acme/app/check-runs", tc.auth, tc.body); code != tc.want {
				t.Errorf("status %d (%v), want %d", code, out, tc.want)
			}
		})
	}
	runs := s.CheckRuns("acme/app")
	if len(runs) != 4 || runs[1].Status != "completed" || runs[1].Conclusion != "success" {
		t.Fatalf("check runs %+v: want the 4 valid ones", runs)
	}
	id := runs[0].ID
	for _, tc := range []struct {
		name string
		path string
		body any
		want int
	}{
		{"update", fmt.Sprintf("/repos/acme/app/check-runs/%d", id), map[string]any{"name": "accord", "conclusion": "failure"}, 200},
		{"unknown id", "/repos/acme/app/check-runs/1", map[string]any{"name": "accord"}, 404},
		{"other repo", fmt.Sprintf("/repos/acme/lib/check-runs/%d", id), map[string]any{"name": "accord"}, 404},
		{"head_sha changed", fmt.Sprintf("/repos/acme/app/check-runs/%d", id), map[string]any{"head_sha": sha}, 422},
		{"empty name", fmt.Sprintf("/repos/acme/app/check-runs/%d", id), map[string]any{"name": ""}, 422},
	} {
		if code, out := call(t, s, "PATCH", tc.path, tok, tc.body); code != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, code, out, tc.want)
		}
	}
	if cr := s.CheckRuns("acme/app")[0]; cr.Status != "completed" || cr.Conclusion != "failure" || cr.Updates != 1 {
		t.Errorf("after update: %+v; a conclusion completes the run, as on GitHub", cr)
	}
}

func TestStatusValidation(t *testing.T) {
	s := New(t)
	s.AllowRefusals()
	sha := strings.Repeat("cd", 20)
	pat := "token " + s.Token
	ok := map[string]any{"state": "pending", "context": "accord/x", "description": strings.Repeat("é", MaxDescription), "target_url": "https://ci.example/runs/r1"}
	for _, tc := range []struct {
		name string
		auth string
		sha  string
		body map[string]any
		want int
	}{
		{"valid", pat, sha, ok, 201},
		{"installation token", "token " + installationToken(t, s), sha, map[string]any{"state": "success"}, 201},
		{"state done", pat, sha, map[string]any{"state": "done"}, 422},
		{"no state", pat, sha, map[string]any{"context": "x"}, 422},
		{"description 141", pat, sha, map[string]any{"state": "error", "description": strings.Repeat("d", 141)}, 422},
		{"target javascript", pat, sha, map[string]any{"state": "error", "target_url": "javascript:alert(1)"}, 422},
		{"short sha", pat, "cdcdcd", map[string]any{"state": "error"}, 422},
		{"App JWT", "Bearer " + appJWT(t, s), sha, ok, 403},
		{"no credentials", "", sha, ok, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out := call(t, s, "POST", "/repos/acme/app/statuses/"+tc.sha, tc.auth, tc.body); code != tc.want {
				t.Errorf("status %d (%v), want %d", code, out, tc.want)
			}
		})
	}
	sts := s.Statuses("acme/app", sha)
	if len(sts) != 2 || sts[0].Context != "accord/x" || sts[1].Context != "default" {
		t.Errorf("statuses %+v: want the 2 valid ones, the second with GitHub's default context", sts)
	}
}

func TestPulls(t *testing.T) {
	s := New(t)
	s.AllowRefusals()
	s.AddPull(Pull{Repo: "acme/app", Number: 3, HeadSHA: strings.Repeat("e", 40), HeadRepo: "eve/app", Title: "t"})
	for _, tc := range []struct {
		name, auth, path string
		want             int
		refused          bool
	}{
		{"anonymous", "", "/repos/acme/app/pulls/3", 200, false},
		{"token", "token " + s.Token, "/repos/acme/app/pulls/3", 200, false},
		{"GHES", "", "/api/v3/repos/acme/app/pulls/3", 200, false},
		{"missing", "", "/repos/acme/app/pulls/4", 404, false},
		{"not a number", "", "/repos/acme/app/pulls/x", 404, true},
		{"App JWT", "Bearer " + appJWT(t, s), "/repos/acme/app/pulls/3", 403, true},
	} {
		code, out := call(t, s, "GET", tc.path, tc.auth, nil)
		if code != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, code, out, tc.want)
		}
		if code == 200 && (out["head"].(map[string]any)["repo"].(map[string]any)["full_name"] != "eve/app" || out["state"] != "open") {
			t.Errorf("%s: %v", tc.name, out)
		}
		calls := s.Calls()
		if last := calls[len(calls)-1]; (last.Refused != "") != tc.refused || last.Endpoint != GetPull || last.Path != strings.TrimPrefix(tc.path, "/api/v3") {
			t.Errorf("%s: recorded %+v", tc.name, last)
		}
	}
}

func TestDeliveriesPaging(t *testing.T) {
	s := New(t)
	s.AllowRefusals()
	now := time.Now()
	for i := range 5 {
		s.AddRepoDelivery("acme/app", 9, Delivery{GUID: fmt.Sprint("g", i), DeliveredAt: now.Add(time.Duration(i) * time.Minute), StatusCode: 200 + 300*(i%2)})
	}
	pat := "token " + s.Token
	var guids []string
	path := "/api/v3/repos/acme/app/hooks/9/deliveries?per_page=2"
	for pages := 0; path != ""; pages++ {
		req, _ := http.NewRequest("GET", strings.TrimSuffix(s.URL, "/")+path, nil)
		req.Header.Set("Authorization", pat)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %v %v", pages, resp, err)
		}
		var page []map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		for _, d := range page {
			guids = append(guids, d["guid"].(string))
		}
		path = ""
		if link := resp.Header.Get("Link"); link != "" {
			u := strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
			path = strings.TrimPrefix(u, strings.TrimSuffix(s.URL, "/"))
		}
	}
	if got := strings.Join(guids, " "); got != "g4 g3 g2 g1 g0" {
		t.Errorf("guids over the pages: %s, want newest first g4 g3 g2 g1 g0", got)
	}
	for _, tc := range []struct {
		name, auth, path string
		want             int
	}{
		{"page param", pat, "/repos/acme/app/hooks/9/deliveries?page=2", 422},
		{"bad cursor", pat, "/repos/acme/app/hooks/9/deliveries?cursor=zzz", 422},
		{"unknown hook", pat, "/repos/acme/app/hooks/10/deliveries", 404},
		{"repo hook with the JWT", "Bearer " + appJWT(t, s), "/repos/acme/app/hooks/9/deliveries", 403},
		{"app hook with a token", pat, "/app/hook/deliveries", 401},
		{"app hook with the JWT", "Bearer " + appJWT(t, s), "/app/hook/deliveries", 404}, // no app deliveries yet
		{"repo hook anonymous", "", "/repos/acme/app/hooks/9/deliveries", 401},
	} {
		if code, out := call(t, s, "GET", tc.path, tc.auth, nil); code != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, code, out, tc.want)
		}
	}
}

func TestRedeliverAttempts(t *testing.T) {
	s := New(t)
	s.AllowRefusals()
	now := time.Now()
	recent := s.AddRepoDelivery("acme/app", 9, Delivery{GUID: "new", DeliveredAt: now.Add(-time.Hour), StatusCode: 502, Payload: []byte(`{"a":1}`)})
	old := s.AddRepoDelivery("acme/app", 9, Delivery{GUID: "old", DeliveredAt: now.Add(-RedeliveryWindow - time.Minute), StatusCode: 502})
	app := s.AddAppDelivery(Delivery{GUID: "app1", DeliveredAt: now.Add(-time.Hour), StatusCode: 0})
	var got []string
	secret := []byte("k")
	srv := newReceiver(t, secret, &got)
	s.DeliverTo(srv, secret)
	pat := "token " + s.Token
	for _, tc := range []struct {
		name, auth, path string
		want             int
	}{
		{"recent", pat, fmt.Sprintf("/repos/acme/app/hooks/9/deliveries/%d/attempts", recent), 202},
		{"too old", pat, fmt.Sprintf("/repos/acme/app/hooks/9/deliveries/%d/attempts", old), 422},
		{"unknown", pat, "/repos/acme/app/hooks/9/deliveries/1/attempts", 404},
		{"other hook", pat, fmt.Sprintf("/repos/acme/app/hooks/8/deliveries/%d/attempts", recent), 404},
		{"app hook with the JWT", "Bearer " + appJWT(t, s), fmt.Sprintf("/app/hook/deliveries/%d/attempts", app), 202},
		{"app hook with a token", pat, fmt.Sprintf("/app/hook/deliveries/%d/attempts", app), 401},
	} {
		if code, out := call(t, s, "POST", tc.path, tc.auth, nil); code != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, code, out, tc.want)
		}
	}
	at := s.RedeliveryAttempts()
	if len(at) != 2 || at[0] != (Attempt{Hook: "acme/app#9", DeliveryID: recent, GUID: "new", StatusCode: 204}) || at[1].Hook != "app" {
		t.Errorf("attempts %+v", at)
	}
	if strings.Join(got, "|") != `new push 9 {"a":1}|app1 push  {}` {
		t.Errorf("received %q", got)
	}
	if ds := s.AppDeliveries(); len(ds) != 2 || !ds[0].Redelivery || ds[0].StatusCode != 204 {
		t.Errorf("app deliveries %+v, want the redelivery on top", ds)
	}
}

func newReceiver(t *testing.T, secret []byte, got *[]string) string {
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if !hmac.Equal([]byte(r.Header.Get("X-Hub-Signature-256")), []byte(fmt.Sprintf("sha256=%x", mac.Sum(nil)))) {
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		*got = append(*got, r.Header.Get("X-GitHub-Delivery")+" "+r.Header.Get("X-GitHub-Event")+" "+r.Header.Get("X-GitHub-Hook-ID")+" "+string(body))
		mu.Unlock()
		w.WriteHeader(204)
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestCleanupReports: calls to unknown endpoints always fail the test;
// refused calls fail it unless allowed; failures asked for with Fail do
// not.
func TestCleanupReports(t *testing.T) {
	for _, tc := range []struct {
		name  string
		do    func(t *testing.T, s *Server)
		allow bool
		want  string
	}{
		{"clean", func(t *testing.T, s *Server) { call(t, s, "GET", "/repos/a/b/pulls/1", "", nil) }, false, ""},
		{"unknown endpoint", func(t *testing.T, s *Server) { call(t, s, "GET", "/user", "", nil) }, true, "unexpected call GET /user"},
		{"wrong method", func(t *testing.T, s *Server) { call(t, s, "DELETE", "/repos/a/b/check-runs/1", "", nil) }, true, "unexpected call DELETE"},
		{"refused", func(t *testing.T, s *Server) {
			call(t, s, "POST", "/repos/a/b/check-runs", "token "+s.Token, map[string]any{})
		}, false, "refused with 403"},
		{"refused, allowed", func(t *testing.T, s *Server) {
			call(t, s, "POST", "/repos/a/b/check-runs", "token "+s.Token, map[string]any{})
		}, true, ""},
		{"failing twice", func(t *testing.T, s *Server) {
			s.FailTimes(GetPull, 502, 2)
			var codes []int
			for range 3 {
				code, _ := call(t, s, "GET", "/repos/a/b/pulls/1", "", nil)
				codes = append(codes, code)
			}
			if fmt.Sprint(codes) != "[502 502 404]" {
				t.Errorf("FailTimes: statuses %v, want [502 502 404]", codes)
			}
		}, false, ""},
		{"failing as asked", func(t *testing.T, s *Server) {
			s.Fail(GetPull, 503)
			if code, _ := call(t, s, "GET", "/repos/a/b/pulls/1", "", nil); code != 503 {
				t.Errorf("Fail: status %d", code)
			}
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &probe{TB: t}
			s := New(p)
			if tc.allow {
				s.AllowRefusals()
			}
			tc.do(t, s)
			errs := strings.Join(p.finish(), "\n")
			if (tc.want == "") != (errs == "") || !strings.Contains(errs, tc.want) {
				t.Errorf("reported %q, want %q", errs, tc.want)
			}
		})
	}
}
