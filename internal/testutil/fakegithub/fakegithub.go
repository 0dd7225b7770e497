package fakegithub

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/serve/config"
)

// Auth is the kind of credentials a call carried.
type Auth string

// The kinds of credentials.
const (
	AuthNone         Auth = "none"         // no Authorization header
	AuthApp          Auth = "app"          // a valid App JWT
	AuthInstallation Auth = "installation" // an installation token the fake issued
	AuthToken        Auth = "token"        // the personal access token ([Server.Token])
	AuthInvalid      Auth = "invalid"      // anything else (refused with 401)
)

// Endpoint names the API operation a call was routed to.
type Endpoint string

// The endpoints the fake implements. A call to anything else is
// [Unexpected].
const (
	AccessToken    Endpoint = "access-token"     // POST /app/installations/{id}/access_tokens
	CreateCheckRun Endpoint = "create-check-run" // POST /repos/{o}/{r}/check-runs
	UpdateCheckRun Endpoint = "update-check-run" // PATCH /repos/{o}/{r}/check-runs/{id}
	CreateStatus   Endpoint = "create-status"    // POST /repos/{o}/{r}/statuses/{sha}
	GetPull        Endpoint = "get-pull"         // GET /repos/{o}/{r}/pulls/{n}
	RepoDeliveries Endpoint = "repo-deliveries"  // GET /repos/{o}/{r}/hooks/{id}/deliveries
	AppDeliveries  Endpoint = "app-deliveries"   // GET /app/hook/deliveries
	RepoRedeliver  Endpoint = "repo-redeliver"   // POST /repos/{o}/{r}/hooks/{id}/deliveries/{d}/attempts
	AppRedeliver   Endpoint = "app-redeliver"    // POST /app/hook/deliveries/{d}/attempts
	Unexpected     Endpoint = "unexpected"       // not implemented: 404
)

// Call is one request the fake received, as it received it.
type Call struct {
	Endpoint Endpoint
	Method   string
	// Path is the API path without the GHES prefix: /repos/o/r/check-runs.
	Path string
	// GHES is set when the call came under /api/v3/.
	GHES  bool
	Query url.Values
	Body  []byte
	Auth  Auth
	// Status is the reply's status code.
	Status int
	// Refused is why the fake refused the call as GitHub would (a contract
	// violation: wrong credentials, a missing field, a bad value, a length
	// over GitHub's limit); empty when it was served. A refused call fails
	// the test at cleanup unless [Server.AllowRefusals] was called.
	Refused string
}

// Server is a fake GitHub REST API on a local port: the few endpoints
// accord uses, checked the way GitHub checks them, every call recorded.
// Safe for concurrent use.
type Server struct {
	// URL is the API's base URL, with a trailing slash (as
	// config.GitHub.APIURL for github.com).
	URL string
	// GHESURL is the same API under GitHub Enterprise Server's prefix:
	// URL + "api/v3/".
	GHESURL string
	// AppID and InstallationID are the App's identity.
	AppID          int64
	InstallationID int64
	// PrivateKeyPEM is the App's private key (PKCS#1, as GitHub hands it
	// out), also written to PrivateKeyFile.
	PrivateKeyPEM  []byte
	PrivateKeyFile string
	// Token is a personal access token with push access (commit
	// statuses, pull requests, repository hooks), also written to
	// TokenFile with a trailing newline.
	Token     string
	TokenFile string

	t      testing.TB
	srv    *httptest.Server
	key    *rsa.PrivateKey
	client *http.Client

	mu            sync.Mutex
	calls         []Call
	allowRefusals bool
	now           func() time.Time
	pageSize      int
	maxPage       int
	fail          map[Endpoint]failure
	tokens        map[string]time.Time // installation token -> expiry
	pulls         map[string]Pull      // "o/r#n"
	hooks         map[string]*hook     // hookKey
	checkRuns     map[string][]*CheckRun
	deleted       map[int64]bool
	statuses      map[string][]Status // "o/r sha"
	nextID        int64
	attempts      []Attempt
	target        *target
}

var (
	keyOnce sync.Once
	keyVal  *rsa.PrivateKey
	keyErr  error
)

// appKey is the App's RSA key, made once per test binary (2048-bit
// generation is slow on a shared machine).
func appKey() (*rsa.PrivateKey, error) {
	keyOnce.Do(func() { keyVal, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	return keyVal, keyErr
}

// New starts a fake GitHub API for the test, with an App (id 4242,
// installation 7777, a fresh key written to a temp file) and a personal
// access token. It is closed at the test's end, and the test fails then if
// any call was to an unknown endpoint or refused (see [Call.Refused]).
func New(t testing.TB) *Server {
	t.Helper()
	key, err := appKey()
	if err != nil {
		t.Fatalf("fakegithub: generating the App key: %v", err)
	}
	dir := t.TempDir()
	s := &Server{
		AppID: 4242, InstallationID: 7777,
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		Token:         "ghp_" + randomHex(18),
		t:             t, key: key,
		now:       time.Now,
		pageSize:  30,
		maxPage:   100,
		fail:      map[Endpoint]failure{},
		tokens:    map[string]time.Time{},
		pulls:     map[string]Pull{},
		hooks:     map[string]*hook{},
		checkRuns: map[string][]*CheckRun{},
		deleted:   map[int64]bool{},
		statuses:  map[string][]Status{},
		client:    &http.Client{Timeout: 10 * time.Second},
	}
	s.PrivateKeyFile = filepath.Join(dir, "app.pem")
	s.TokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(s.PrivateKeyFile, s.PrivateKeyPEM, 0o600); err != nil {
		t.Fatalf("fakegithub: %v", err)
	}
	if err := os.WriteFile(s.TokenFile, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatalf("fakegithub: %v", err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/"
	s.GHESURL = s.URL + "api/v3/"
	t.Cleanup(func() {
		s.srv.Close()
		s.checkClean()
	})
	return s
}

// checkClean fails the test on unexpected or refused calls.
func (s *Server) checkClean() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		switch {
		case c.Endpoint == Unexpected:
			s.t.Errorf("fakegithub: unexpected call %s %s (auth %s): not an endpoint accord uses", c.Method, c.Path, c.Auth)
		case c.Refused != "" && !s.allowRefusals:
			s.t.Errorf("fakegithub: %s %s refused with %d: %s", c.Method, c.Path, c.Status, c.Refused)
		}
	}
}

// AllowRefusals keeps refused calls from failing the test (for tests that
// check the fake's own refusals, or a client's handling of them). Calls to
// unknown endpoints still fail it.
func (s *Server) AllowRefusals() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowRefusals = true
}

// SetNow sets the fake's clock (default time.Now): token expiry, JWT
// checks, the delivered_at of redeliveries.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetPageSize sets the page size of delivery lists: the default and the
// most a per_page can ask for (GitHub's: 30 and 100), so a test can make
// a client page through a few deliveries.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize, s.maxPage = n, n
}

// Fail makes every later call to e fail with status (500, 502, 503: GitHub
// having trouble) until Fail(e, 0). Such calls are recorded, not refused.
func (s *Server) Fail(e Endpoint, status int) { s.FailTimes(e, status, -1) }

// FailTimes makes the next n calls to e fail with status, then serves
// them again (n < 0: until Fail(e, 0)).
func (s *Server) FailTimes(e Endpoint, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 || n == 0 {
		delete(s.fail, e)
		return
	}
	s.fail[e] = failure{status: status, left: n}
}

// failing returns the status a call to e must fail with, 0 for none, and
// counts the call.
func (s *Server) failing(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fail[e]
	if !ok {
		return 0
	}
	if f.left > 0 {
		if f.left--; f.left == 0 {
			delete(s.fail, e)
		} else {
			s.fail[e] = f
		}
	}
	return f.status
}

type failure struct{ status, left int }

// Calls returns every call so far, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls routed to e, in arrival order.
func (s *Server) CallsTo(e Endpoint) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Endpoint == e {
			out = append(out, c)
		}
	}
	return out
}

// recorder holds a handler's reply until the call is recorded, so that a
// client that has its answer always finds its call in [Server.Calls].
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// send writes the held reply.
func (r *recorder) send(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// request is one call being served.
type request struct {
	*http.Request
	w    *recorder
	call *Call
	segs []string // path segments after the GHES prefix
}

// serve records the call, then routes it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	path := r.URL.Path
	c := &Call{Method: r.Method, Query: r.URL.Query(), Body: body}
	if rest, ok := strings.CutPrefix(path, "/api/v3/"); ok {
		c.GHES, path = true, "/"+rest
	}
	c.Path = path
	rec := &recorder{header: http.Header{}}
	req := &request{Request: r, w: rec, call: c, segs: strings.Split(strings.Trim(path, "/"), "/")}
	s.mu.Lock()
	c.Auth = s.authOf(r.Header.Get("Authorization"))
	s.mu.Unlock()
	s.route(req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	c.Status = rec.status
	s.mu.Lock()
	s.calls = append(s.calls, *c)
	s.mu.Unlock()
	rec.send(w)
}

// route finds the endpoint, checks the credentials every endpoint
// shares, and hands the call on.
func (s *Server) route(r *request) {
	e, h := s.endpoint(r.Method, r.segs)
	r.call.Endpoint = e
	if e == Unexpected {
		writeJSON(r.w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	if r.call.Auth == AuthInvalid {
		s.refuse(r, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if status := s.failing(e); status != 0 {
		writeJSON(r.w, status, map[string]string{"message": "fakegithub: failing " + string(e) + " as asked"})
		return
	}
	h(r)
}

// endpoint maps a method and path to an endpoint and its handler.
func (s *Server) endpoint(method string, p []string) (Endpoint, func(*request)) {
	n := len(p)
	switch {
	case method == http.MethodPost && n == 4 && p[0] == "app" && p[1] == "installations" && p[3] == "access_tokens":
		return AccessToken, s.accessToken
	case method == http.MethodGet && n == 3 && p[0] == "app" && p[1] == "hook" && p[2] == "deliveries":
		return AppDeliveries, s.listDeliveries
	case method == http.MethodPost && n == 5 && p[0] == "app" && p[1] == "hook" && p[2] == "deliveries" && p[4] == "attempts":
		return AppRedeliver, s.redeliver
	case n < 4 || p[0] != "repos":
		return Unexpected, nil
	}
	switch rest := p[3:]; {
	case method == http.MethodPost && len(rest) == 1 && rest[0] == "check-runs":
		return CreateCheckRun, s.createCheckRun
	case method == http.MethodPatch && len(rest) == 2 && rest[0] == "check-runs":
		return UpdateCheckRun, s.updateCheckRun
	case method == http.MethodPost && len(rest) == 2 && rest[0] == "statuses":
		return CreateStatus, s.createStatus
	case method == http.MethodGet && len(rest) == 2 && rest[0] == "pulls":
		return GetPull, s.getPull
	case method == http.MethodGet && len(rest) == 3 && rest[0] == "hooks" && rest[2] == "deliveries":
		return RepoDeliveries, s.listDeliveries
	case method == http.MethodPost && len(rest) == 5 && rest[0] == "hooks" && rest[2] == "deliveries" && rest[4] == "attempts":
		return RepoRedeliver, s.redeliver
	}
	return Unexpected, nil
}

// repo is the owner/name of a /repos/ call.
func (r *request) repo() string { return r.segs[1] + "/" + r.segs[2] }

// refuse answers as GitHub does when a call breaks its contract, and marks
// the call refused.
func (s *Server) refuse(r *request, status int, msg string) {
	r.call.Refused = msg
	writeJSON(r.w, status, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

// notFound answers 404 without marking the call refused: GitHub's answer
// for something that is legitimately not there.
func notFound(r *request) {
	writeJSON(r.w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

// decode reads the call's JSON body into v, refusing unknown fields (a
// client sending a field GitHub does not know is a bug, even though GitHub
// ignores it).
func (s *Server) decode(r *request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.refuse(r, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: send application/json", ct))
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(r.call.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.refuse(r, http.StatusBadRequest, "Problems parsing JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// isSHA says whether s is a full lower-case commit SHA.
func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// AppConfig is the server config's github section for the fake's App
// (absolute key path), under the GHES prefix when ghes is set.
func (s *Server) AppConfig(ghes bool) config.GitHub {
	return config.GitHub{
		APIURL: s.apiURL(ghes),
		App:    &config.App{ID: s.AppID, InstallationID: s.InstallationID, PrivateKeyFile: s.PrivateKeyFile},
	}
}

// TokenConfig is the github section for the fake's personal access token
// (read from TokenFile), under the GHES prefix when ghes is set.
func (s *Server) TokenConfig(ghes bool) config.GitHub {
	return config.GitHub{APIURL: s.apiURL(ghes), Token: &config.Secret{File: s.TokenFile}}
}

func (s *Server) apiURL(ghes bool) string {
	if ghes {
		return s.GHESURL
	}
	return s.URL
}
