package ghapi

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"

	"github.com/accord-build/accord/internal/serve/config"
)

// DefaultAPIURL is github.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Mode is how the client reports back to GitHub.
type Mode string

// The modes, chosen by the config.
const (
	// ModeApp: a GitHub App; writes check runs.
	ModeApp Mode = "app"
	// ModeToken: a token with push access; writes commit statuses.
	ModeToken Mode = "token"
	// ModeNone: no credentials; reports nothing (reads still work,
	// unauthenticated, for public repositories).
	ModeNone Mode = "none"
)

// Client talks to GitHub's REST API through go-github: reads pull
// requests, reports runs (check runs or commit statuses) and asks for
// redeliveries. Safe for concurrent use.
type Client struct {
	mode Mode
	// gh carries the installation token (App), the token, or nothing.
	gh *github.Client
	// app carries the App's JWT, for the App's own hook (/app/hook/...);
	// nil unless ModeApp.
	app        *github.Client
	apiURL     string
	pipelineOf func(repo string) string
	// secrets are the credentials' values, for masking in logs.
	secrets []string
}

// Secrets are the values of the client's credentials (the token), for
// the server to mask wherever it shows text.
func (c *Client) Secrets() []string { return c.secrets }

// Option configures a [Client].
type Option func(*Client)

// WithPipelineOf names each repository's pipeline, for the check run's
// name and the status context ("accord/<pipeline>"). Default: none, and
// the name is plain "accord". The name must not change between the reports
// of one run: give the config's pipeline, not the record's.
func WithPipelineOf(f func(repo string) string) Option {
	return func(c *Client) { c.pipelineOf = f }
}

// New makes a client from the config's github section. dir is the
// config's directory (relative files are read from it); getenv reads a
// token given by env. With github.app it authenticates as the App (JWT,
// exchanged for installation tokens by ghinstallation, cached until they
// near expiry); with github.token, as that token; with neither it reports
// nothing. APIURL (default github.com's) is the base of every call,
// installation tokens included (GitHub Enterprise Server:
// https://HOST/api/v3/). New makes no call.
func New(_ context.Context, cfg config.GitHub, dir string, getenv func(string) string, opts ...Option) (*Client, error) {
	apiURL, err := normalizeAPIURL(cfg.APIURL)
	if err != nil {
		return nil, err
	}
	c := &Client{mode: ModeNone, apiURL: apiURL}
	for _, o := range opts {
		o(c)
	}
	base := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
	switch {
	case cfg.App != nil && cfg.Token != nil:
		return nil, fmt.Errorf("github: both app and token are set: keep app (check runs) or token (commit statuses), not both")
	case cfg.App != nil:
		err = c.initApp(cfg.App, dir, base)
	case cfg.Token != nil:
		err = c.initToken(cfg.Token, dir, getenv, base)
	default:
		c.gh, err = c.newGitHub(base)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Mode says how the client reports.
func (c *Client) Mode() Mode { return c.mode }

func normalizeAPIURL(s string) (string, error) {
	if s == "" {
		return DefaultAPIURL, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("github.apiURL %q: want an http(s) URL such as %s or https://HOST/api/v3/ (GitHub Enterprise Server)", s, DefaultAPIURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

func (c *Client) newGitHub(tr http.RoundTripper, opts ...github.ClientOptionsFunc) (*github.Client, error) {
	all := append([]github.ClientOptionsFunc{
		github.WithTransport(tr),
		github.WithTimeout(30 * time.Second),
		github.WithURLs(&c.apiURL, nil),
		github.WithUserAgent("accord-serve"),
	}, opts...)
	gh, err := github.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("github.apiURL %q: %w", c.apiURL, err)
	}
	return gh, nil
}

func (c *Client) initApp(app *config.App, dir string, base http.RoundTripper) error {
	switch {
	case app.ID <= 0:
		return fmt.Errorf("github.app.id: want the App's numeric id (its settings page shows it)")
	case app.InstallationID <= 0:
		return fmt.Errorf("github.app.installationID: want the numeric id of the App's installation on the account (Settings > Applications > Configure shows it in the URL)")
	case app.PrivateKeyFile == "":
		return fmt.Errorf("github.app.privateKeyFile: want the App's private key (.pem) file")
	}
	key, err := readAppKey(resolve(dir, app.PrivateKeyFile))
	if err != nil {
		return err
	}
	apiBase := strings.TrimRight(c.apiURL, "/")
	itr, err := ghinstallation.New(base, app.ID, app.InstallationID, key)
	if err != nil {
		return fmt.Errorf("github.app.privateKeyFile %s: %w", app.PrivateKeyFile, err)
	}
	itr.BaseURL = apiBase
	atr, err := ghinstallation.NewAppsTransport(base, app.ID, key)
	if err != nil {
		return fmt.Errorf("github.app.privateKeyFile %s: %w", app.PrivateKeyFile, err)
	}
	atr.BaseURL = apiBase
	if c.gh, err = c.newGitHub(itr); err != nil {
		return err
	}
	if c.app, err = c.newGitHub(atr); err != nil {
		return err
	}
	c.mode = ModeApp
	return nil
}

// readAppKey reads and checks an App's private key, so a wrong file fails
// at start rather than at the first report.
func readAppKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("github.app.privateKeyFile: %w (download a private key from the App's settings page)", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("github.app.privateKeyFile %s: not a PEM file (want the .pem GitHub gives, BEGIN RSA PRIVATE KEY)", path)
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		if _, err8 := x509.ParsePKCS8PrivateKey(block.Bytes); err8 != nil {
			return nil, fmt.Errorf("github.app.privateKeyFile %s: not an RSA private key: %w", path, errors.Join(err, err8))
		}
	}
	return b, nil
}

func (c *Client) initToken(s *config.Secret, dir string, getenv func(string) string, base http.RoundTripper) error {
	tok, err := readSecret(*s, dir, getenv)
	if err != nil {
		return err
	}
	if c.gh, err = c.newGitHub(base, github.WithAuthToken(tok)); err != nil {
		return err
	}
	c.mode, c.secrets = ModeToken, []string{tok}
	return nil
}

// readSecret reads github.token from its file (trailing newline trimmed)
// or its environment variable.
func readSecret(s config.Secret, dir string, getenv func(string) string) (string, error) {
	var tok string
	switch {
	case s.File != "" && s.Env != "":
		return "", fmt.Errorf("github.token: both file and env are set: keep one")
	case s.File != "":
		b, err := os.ReadFile(resolve(dir, s.File))
		if err != nil {
			return "", fmt.Errorf("github.token.file: %w", err)
		}
		tok = strings.TrimRight(string(b), "\r\n")
	case s.Env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		tok = getenv(s.Env)
	default:
		return "", fmt.Errorf("github.token: set file or env")
	}
	if strings.TrimSpace(tok) == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("github.token: the token is empty or has white space in it (file %q, env %q): give a token with push access", s.File, s.Env)
	}
	return tok, nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// splitRepo splits owner/name.
func splitRepo(repo string) (string, string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") || strings.ContainsAny(repo, "?#% ") || owner == ".." || name == ".." || owner == "." || name == "." {
		return "", "", fmt.Errorf("repository %q: want owner/name", repo)
	}
	return owner, name, nil
}
