package ghapi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/testutil/fakegithub"
	"github.com/accord-build/accord/internal/trigger"
)

// newClient makes a client of the given mode against the fake, under the
// GHES prefix when ghes is set.
func newClient(t *testing.T, fake *fakegithub.Server, mode Mode, ghes bool, opts ...Option) *Client {
	t.Helper()
	cfg := config.GitHub{APIURL: fake.URL}
	if ghes {
		cfg.APIURL = strings.TrimSuffix(fake.GHESURL, "/") // no trailing slash: New adds it
	}
	switch mode {
	case ModeApp:
		cfg.App = &config.App{ID: fake.AppID, InstallationID: fake.InstallationID, PrivateKeyFile: fake.PrivateKeyFile}
	case ModeToken:
		cfg.Token = &config.Secret{Env: "GH_TOKEN"}
	}
	getenv := func(k string) string {
		if k == "GH_TOKEN" {
			return fake.Token
		}
		return ""
	}
	c, err := New(context.Background(), cfg, t.TempDir(), getenv, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.Mode() != mode {
		t.Fatalf("Mode() = %s, want %s", c.Mode(), mode)
	}
	return c
}

const (
	headSHA = "1f0c3d5e7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d"
	baseSHA = "aaaabbbbccccddddeeeeffff0000111122223333"
)

func TestPullRequest(t *testing.T) {
	for _, tc := range []struct {
		mode     Mode
		ghes     bool
		wantAuth []fakegithub.Auth
	}{
		{ModeApp, false, []fakegithub.Auth{fakegithub.AuthApp, fakegithub.AuthInstallation}},
		{ModeApp, true, []fakegithub.Auth{fakegithub.AuthApp, fakegithub.AuthInstallation}},
		{ModeToken, false, []fakegithub.Auth{fakegithub.AuthToken}},
		{ModeToken, true, []fakegithub.Auth{fakegithub.AuthToken}},
		{ModeNone, false, []fakegithub.Auth{fakegithub.AuthNone}},
	} {
		name := string(tc.mode)
		if tc.ghes {
			name += "/ghes"
		}
		t.Run(name, func(t *testing.T) {
			fake := fakegithub.New(t)
			fake.AddPull(fakegithub.Pull{
				Repo: "acme/app", Number: 7, Title: "Fix <b>it</b>", Author: "mallory",
				HeadRepo: "mallory/app", HeadRef: "feature", HeadSHA: headSHA,
			})
			c := newClient(t, fake, tc.mode, tc.ghes)
			got, err := c.PullRequest(context.Background(), "acme/app", 7)
			if err != nil {
				t.Fatal(err)
			}
			want := trigger.PullInfo{
				Number: 7, HeadSHA: headSHA, HeadRef: "feature", HeadRepo: "mallory/app",
				HeadCloneURL: "https://github.com/mallory/app.git", BaseRepo: "acme/app",
				Title: "Fix <b>it</b>", State: "open", Author: "mallory",
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("PullRequest (-want +got):\n%s", d)
			}
			calls := fake.Calls()
			var auths []fakegithub.Auth
			for _, call := range calls {
				auths = append(auths, call.Auth)
				if call.GHES != tc.ghes {
					t.Errorf("%s %s: GHES prefix %v, want %v", call.Method, call.Path, call.GHES, tc.ghes)
				}
			}
			if d := cmp.Diff(tc.wantAuth, auths); d != "" {
				t.Errorf("auth of the calls (-want +got):\n%s", d)
			}
			if last := calls[len(calls)-1]; last.Endpoint != fakegithub.GetPull || last.Path != "/repos/acme/app/pulls/7" {
				t.Errorf("last call %s %s, want get-pull /repos/acme/app/pulls/7", last.Endpoint, last.Path)
			}
		})
	}
}

func TestPullRequestErrors(t *testing.T) {
	fake := fakegithub.New(t)
	c := newClient(t, fake, ModeToken, false)
	ctx := context.Background()
	_, err := c.PullRequest(ctx, "acme/app", 99)
	if !errors.Is(err, ErrNotFound) || IsTemporary(err) {
		t.Errorf("missing pull request: err %v, want ErrNotFound and not temporary", err)
	}
	fake.Fail(fakegithub.GetPull, 502)
	_, err = c.PullRequest(ctx, "acme/app", 1)
	if err == nil || !IsTemporary(err) {
		t.Errorf("GitHub answering 502: err %v, want a temporary error", err)
	}
	for _, repo := range []string{"acme", "acme/app/x", "/app", "acme/", "../x", "acme/app?x=1", "acme/.."} {
		if _, err := c.PullRequest(ctx, repo, 1); err == nil || IsTemporary(err) {
			t.Errorf("repo %q: err %v, want a refusal", repo, err)
		}
	}
	if _, err := c.PullRequest(ctx, "acme/app", 0); err == nil {
		t.Errorf("pull request 0: no error")
	}
	if n := len(fake.CallsTo(fakegithub.GetPull)); n != 2 {
		t.Errorf("%d calls to get-pull, want 2 (bad arguments never reach GitHub)", n)
	}
}

func TestUnreachableIsTemporary(t *testing.T) {
	for _, mode := range []Mode{ModeApp, ModeToken} {
		t.Run(string(mode), func(t *testing.T) {
			fake := fakegithub.New(t)
			c := newClient(t, fake, mode, false)
			fake.Fail(fakegithub.AccessToken, 503)
			fake.Fail(fakegithub.GetPull, 503)
			_, err := c.PullRequest(context.Background(), "acme/app", 1)
			if !IsTemporary(err) {
				t.Errorf("503: %v: not temporary", err)
			}
			cfg := config.GitHub{APIURL: "http://127.0.0.1:1/"}
			if mode == ModeToken {
				cfg.Token = &config.Secret{File: fake.TokenFile}
			} else {
				cfg.App = &config.App{ID: fake.AppID, InstallationID: fake.InstallationID, PrivateKeyFile: fake.PrivateKeyFile}
			}
			c2, err := New(context.Background(), cfg, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c2.PullRequest(context.Background(), "acme/app", 1); !IsTemporary(err) {
				t.Errorf("connection refused: %v: not temporary", err)
			}
		})
	}
}

// TestAppTokenCached: one installation token serves many calls.
func TestAppTokenCached(t *testing.T) {
	fake := fakegithub.New(t)
	fake.AddPull(fakegithub.Pull{Repo: "acme/app", Number: 1, HeadSHA: headSHA})
	c := newClient(t, fake, ModeApp, true)
	ctx := context.Background()
	for range 3 {
		if _, err := c.PullRequest(ctx, "acme/app", 1); err != nil {
			t.Fatal(err)
		}
	}
	job := testJob()
	id, err := c.Report(ctx, job, "https://ci.example/runs/r1")
	if err != nil {
		t.Fatal(err)
	}
	job.CheckRunID = id
	if _, err := c.Report(ctx, job, "https://ci.example/runs/r1"); err != nil {
		t.Fatal(err)
	}
	if n := fake.InstallationTokens(); n != 1 {
		t.Errorf("%d installation tokens for 5 calls, want 1", n)
	}
	tok := fake.CallsTo(fakegithub.AccessToken)
	if len(tok) != 1 || tok[0].Path != "/app/installations/7777/access_tokens" || !tok[0].GHES {
		t.Errorf("token exchanges %+v, want one POST /api/v3/app/installations/7777/access_tokens", tok)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	notPEM := write("notpem", "hello")
	notRSA := write("notrsa.pem", "-----BEGIN RSA PRIVATE KEY-----\naGVsbG8=\n-----END RSA PRIVATE KEY-----\n")
	empty := write("empty", "\n")
	spaced := write("spaced", "ghp_abc def\n")
	app := func(f string) *config.App { return &config.App{ID: 1, InstallationID: 2, PrivateKeyFile: f} }
	for _, tc := range []struct {
		name string
		cfg  config.GitHub
		want string
	}{
		{"app and token", config.GitHub{App: app(notPEM), Token: &config.Secret{Env: "X"}}, "not both"},
		{"api url scheme", config.GitHub{APIURL: "ftp://ghe.example/api/v3/"}, "github.apiURL"},
		{"api url no host", config.GitHub{APIURL: "https:///api/v3"}, "github.apiURL"},
		{"api url query", config.GitHub{APIURL: "https://ghe.example/api/v3/?x=1"}, "github.apiURL"},
		{"app id", config.GitHub{App: &config.App{InstallationID: 2, PrivateKeyFile: notPEM}}, "github.app.id"},
		{"installation id", config.GitHub{App: &config.App{ID: 1, PrivateKeyFile: notPEM}}, "github.app.installationID"},
		{"no key file", config.GitHub{App: &config.App{ID: 1, InstallationID: 2}}, "github.app.privateKeyFile"},
		{"key missing", config.GitHub{App: app("missing.pem")}, "github.app.privateKeyFile"},
		{"key not pem", config.GitHub{App: app(notPEM)}, "not a PEM file"},
		{"key not rsa", config.GitHub{App: app(notRSA)}, "not an RSA private key"},
		{"token unset", config.GitHub{Token: &config.Secret{}}, "github.token: set file or env"},
		{"token both", config.GitHub{Token: &config.Secret{File: empty, Env: "X"}}, "keep one"},
		{"token empty file", config.GitHub{Token: &config.Secret{File: empty}}, "github.token"},
		{"token empty env", config.GitHub{Token: &config.Secret{Env: "NOPE"}}, "github.token"},
		{"token with space", config.GitHub{Token: &config.Secret{File: spaced}}, "white space"},
		{"token file missing", config.GitHub{Token: &config.Secret{File: "nope"}}, "github.token.file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.cfg, dir, func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeAPIURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                            DefaultAPIURL,
		"https://api.github.com":      "https://api.github.com/",
		"https://ghe.example/api/v3":  "https://ghe.example/api/v3/",
		"https://ghe.example/api/v3/": "https://ghe.example/api/v3/",
	} {
		if got, err := normalizeAPIURL(in); err != nil || got != want {
			t.Errorf("normalizeAPIURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestAppWrongCredentials: an App id or installation the key does not
// belong to is refused by GitHub, and that is not worth retrying.
func TestAppWrongCredentials(t *testing.T) {
	for name, mut := range map[string]func(*config.App){
		"other app id":       func(a *config.App) { a.ID = 1 },
		"other installation": func(a *config.App) { a.InstallationID = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			fake := fakegithub.New(t)
			fake.AllowRefusals()
			cfg := fake.AppConfig(false)
			mut(cfg.App)
			c, err := New(context.Background(), cfg, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.PullRequest(context.Background(), "acme/app", 1)
			if err == nil || IsTemporary(err) {
				t.Errorf("err %v, want a refusal that is not temporary", err)
			}
			calls := fake.Calls()
			if len(calls) != 1 || calls[0].Endpoint != fakegithub.AccessToken || calls[0].Refused == "" {
				t.Errorf("calls %+v, want one refused token exchange", calls)
			}
		})
	}
}
