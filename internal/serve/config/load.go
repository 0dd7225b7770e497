package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/store"
)

// Error is a config error: the file, the field, what is wrong and the fix.
type Error struct{ File, Field, Msg, Fix string }

func (e *Error) Error() string {
	s := e.File
	if e.Field != "" {
		s += ": field " + e.Field
	}
	s += ": " + e.Msg
	if e.Fix != "" {
		s += "\n  fix: " + e.Fix
	}
	return s
}

// The defaults Load fills in.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultAPIURL    = "https://api.github.com/"
	DefaultWorkers   = 1
	DefaultAttempts  = 3
	DefaultBackoff   = 10 * time.Second
	DefaultInterval  = 10 * time.Minute
	DefaultWindow    = 72 * time.Hour
	DefaultTimeout   = time.Hour
	maxWindow        = 7 * 24 * time.Hour
	maxWorkers       = 64
	ForksApprove     = "approve"
	ForksNever       = "never"
	apiVersion, kind = "accord.dev/v1alpha1", "ServerConfig"
)

// Load reads, checks and completes a config file: defaults filled in,
// relative paths made relative to the file's directory. It reads no
// secret and opens no key: that is for the server at start.
func Load(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &Error{File: file, Msg: err.Error(), Fix: "give an existing config file (see 'accord serve --help' for its format)"}
	}
	return Parse(file, b)
}

// Parse decodes and checks a config; file names it in errors and anchors
// its relative paths.
func Parse(file string, data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		msg := strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: ")
		return nil, &Error{File: file, Msg: "malformed config: " + msg, Fix: "see the format in 'accord serve --help'"}
	}
	c.File = file
	v := &checker{file: file, dir: filepath.Dir(file)}
	v.top(&c)
	v.github(&c)
	v.repos(&c)
	if v.err != nil {
		return nil, v.err
	}
	return &c, nil
}

// checker validates a config, keeping the first error.
type checker struct {
	file, dir string
	err       error
}

func (v *checker) fail(field, msg, fix string) {
	if v.err == nil {
		v.err = &Error{File: v.file, Field: field, Msg: msg, Fix: fix}
	}
}

// abs makes p relative to the config's directory.
func (v *checker) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.dir, p)
}

func (v *checker) top(c *Config) {
	if c.APIVersion != apiVersion || c.Kind != kind {
		v.fail("apiVersion", fmt.Sprintf("want apiVersion %s and kind %s, got %q %q", apiVersion, kind, c.APIVersion, c.Kind), "start the file with 'apiVersion: accord.dev/v1alpha1' and 'kind: ServerConfig'")
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		v.fail("listen", fmt.Sprintf("%q is not HOST:PORT", c.Listen), "give an address such as 127.0.0.1:8080 or :8080")
	}
	if c.ExternalURL == "" {
		c.ExternalURL = "http://" + c.Listen
	} else if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.fail("externalURL", fmt.Sprintf("%q is not an http(s) URL", c.ExternalURL), "give the server's public URL, e.g. https://accord.example.com")
	}
	c.ExternalURL = strings.TrimSuffix(c.ExternalURL, "/")
	if c.StateDir == "" {
		v.fail("stateDir", "missing", "give a directory for the queue database and work directories, e.g. stateDir: /var/lib/accord")
	}
	c.StateDir = v.abs(c.StateDir)
	v.store(c)
	if len(c.Secrets) == 0 {
		v.fail("secrets", "no webhook secret: every delivery would be refused", "add '- file: webhook-secret' (or '- env: NAME'), holding the secret set on the GitHub webhook")
	}
	for i := range c.Secrets {
		v.secret(fmt.Sprintf("secrets[%d]", i), &c.Secrets[i])
	}
	switch {
	case c.Workers == 0:
		c.Workers = DefaultWorkers
	case c.Workers < 0 || c.Workers > maxWorkers:
		v.fail("workers", fmt.Sprintf("%d is not between 1 and %d", c.Workers, maxWorkers), "leave it out for one run at a time")
	}
	v.retry(&c.Retry)
	if c.Verifier != nil {
		v.verifier(c.Verifier)
	}
}

func (v *checker) store(c *Config) {
	switch {
	case c.Store == "":
		c.Store = filepath.Join(c.StateDir, "store")
	case strings.HasPrefix(c.Store, "."):
		c.Store = v.abs(c.Store)
	case strings.HasPrefix(c.Store, "-") || strings.ContainsAny(c.Store, " \t\n"):
		v.fail("store", fmt.Sprintf("%q is neither a directory nor HOST/REPO", c.Store), "give an OCI layout directory (/var/lib/accord/store, ./store) or a registry repository (localhost:5000/accord)")
	}
	if _, err := store.ParseRegistries(c.AllowRegistries); err != nil {
		v.fail("allowRegistries", err.Error(), "list registry hosts, e.g. [registry.example, 127.0.0.1:5000]")
	}
	for i, m := range c.RegistryMirrors {
		if _, err := pull.ParseMirror(m); err != nil {
			v.fail(fmt.Sprintf("registryMirrors[%d]", i), err.Error(), "write FROM=TO, e.g. docker.io=registry.internal:5000/mirror")
		}
	}
}

func (v *checker) secret(field string, s *Secret) {
	switch {
	case s.File != "" && s.Env != "":
		v.fail(field, "both file and env", "give one of them")
	case s.File == "" && s.Env == "":
		v.fail(field, "neither file nor env", "give 'file: PATH' or 'env: NAME'")
	case s.Env != "" && !envRE.MatchString(s.Env):
		v.fail(field+".env", fmt.Sprintf("%q is not an environment variable name", s.Env), "use letters, digits and '_'")
	}
	s.File = v.abs(s.File)
}

var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *checker) retry(r *Retry) {
	if r.Attempts == 0 {
		r.Attempts = DefaultAttempts
	}
	if r.Attempts < 1 || r.Attempts > 100 {
		v.fail("retry.attempts", fmt.Sprintf("%d is not between 1 and 100", r.Attempts), "leave it out for 3")
	}
	if r.Backoff.Duration == 0 {
		r.Backoff.Duration = DefaultBackoff
	}
	if r.Backoff.Duration < 0 {
		v.fail("retry.backoff", "negative", "give a duration such as 10s")
	}
}

func (v *checker) verifier(vf *Verifier) {
	if vf.Key == "" {
		v.fail("verifier.key", "missing", "give the key that signs verification summaries ('accord keys generate verifier')")
	}
	if !strings.Contains(vf.Key, "://") {
		vf.Key = v.abs(vf.Key)
	}
	if u, err := url.Parse(vf.ID); err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		v.fail("verifier.id", fmt.Sprintf("%q is not a URI", vf.ID), "give the verifier's identity as a URI, e.g. https://example.com/verifiers/release")
	}
}

func (v *checker) github(c *Config) {
	g := &c.GitHub
	if g.APIURL == "" {
		g.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(g.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.fail("github.apiURL", fmt.Sprintf("%q is not an http(s) URL", g.APIURL), "leave it out for github.com, or give https://HOST/api/v3/ for GitHub Enterprise Server")
	}
	if !strings.HasSuffix(g.APIURL, "/") {
		g.APIURL += "/"
	}
	if g.App != nil && g.Token != nil {
		v.fail("github", "both app and token", "give app (check runs) or token (commit statuses), not both")
	}
	if a := g.App; a != nil {
		if a.ID <= 0 {
			v.fail("github.app.id", "missing", "give the App's id (its settings page shows 'App ID')")
		}
		if a.InstallationID <= 0 {
			v.fail("github.app.installationID", "missing", "give the installation's id (the number at the end of the installation's settings URL)")
		}
		if a.PrivateKeyFile == "" {
			v.fail("github.app.privateKeyFile", "missing", "give the App's private key (PEM), downloaded from its settings")
		}
		a.PrivateKeyFile = v.abs(a.PrivateKeyFile)
	}
	if g.Token != nil {
		v.secret("github.token", g.Token)
	}
	v.redeliver(g)
}

func (v *checker) redeliver(g *GitHub) {
	r := &g.Redeliver
	if r.Interval.Duration == 0 {
		r.Interval.Duration = DefaultInterval
	}
	if r.Window.Duration == 0 {
		r.Window.Duration = DefaultWindow
	}
	if r.Interval.Duration < time.Minute {
		v.fail("github.redeliver.interval", fmt.Sprintf("%s is under a minute", r.Interval), "scan every 10m (the default) or more")
	}
	if r.Window.Duration < 0 || r.Window.Duration > maxWindow {
		v.fail("github.redeliver.window", fmt.Sprintf("%s is not between 0 and 168h", r.Window), "GitHub keeps deliveries 3 days (7 on GHES): leave it out for 72h")
	}
	for i, h := range r.Hooks {
		field := fmt.Sprintf("github.redeliver.hooks[%d]", i)
		switch {
		case h.App && (h.Repo != "" || h.ID != 0):
			v.fail(field, "app: true names the App's hook: repo and id do not go with it", "give either app: true or repo + id")
		case h.App && g.App == nil:
			v.fail(field, "the App's hook needs github.app", "configure github.app, or name a repository hook (repo + id)")
		case !h.App && (!repoRE.MatchString(h.Repo) || h.ID <= 0):
			v.fail(field, "a repository hook needs repo (owner/name) and id", "give repo: owner/name and id: the hook's id (its settings URL ends with it)")
		}
	}
	if !r.Disabled && g.App == nil && g.Token == nil && len(r.Hooks) > 0 {
		v.fail("github.redeliver", "asking GitHub to redeliver needs credentials", "configure github.app or github.token, or set redeliver.disabled: true")
	}
}

var (
	repoRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	loginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(\[bot\])?$`)
)

func (v *checker) repos(c *Config) {
	if len(c.Repos) == 0 {
		v.fail("repos", "no repository: nothing would ever be built", "list each repository with its pipeline, builders and policy")
	}
	seen := map[string]int{}
	for i := range c.Repos {
		r := &c.Repos[i]
		field := fmt.Sprintf("repos[%d]", i)
		if !repoRE.MatchString(r.Name) {
			v.fail(field+".name", fmt.Sprintf("%q is not owner/name", r.Name), "give the repository as GitHub's full name, e.g. acme/app")
		}
		key := strings.ToLower(r.Name)
		if j, dup := seen[key]; dup {
			v.fail(field+".name", fmt.Sprintf("%s is also repos[%d]", r.Name, j), "give each repository once")
		}
		seen[key] = i
		v.repo(field, r)
	}
}

func (v *checker) repo(field string, r *Repo) {
	if r.Pipeline == "" {
		v.fail(field+".pipeline", "missing", "name a catalog pipeline ('accord catalog' lists them) or a pipeline file of the server's catalog")
	} else if strings.ContainsAny(r.Pipeline, `/\`) || strings.HasSuffix(r.Pipeline, ".yaml") || strings.HasSuffix(r.Pipeline, ".yml") {
		r.Pipeline = v.abs(r.Pipeline)
	}
	v.globs(field+".branches", r.Branches)
	v.globs(field+".tags", r.Tags)
	if len(r.Branches) == 0 && len(r.Tags) == 0 && !r.PullRequests {
		v.fail(field, "builds nothing: no branches, no tags and pullRequests false", "add branches: [main], tags: [\"v*\"] or pullRequests: true")
	}
	switch r.Forks {
	case "":
		r.Forks = ForksApprove
	case ForksApprove, ForksNever:
	default:
		v.fail(field+".forks", fmt.Sprintf("%q is neither approve nor never", r.Forks), "leave it out to build fork pull requests after a maintainer's /ok-to-test <sha>, or say never")
	}
	for j, m := range r.Maintainers {
		if !loginRE.MatchString(m) {
			v.fail(fmt.Sprintf("%s.maintainers[%d]", field, j), fmt.Sprintf("%q is not a GitHub login", m), "give logins, without '@'")
		}
	}
	v.builderSet(field+".builders", &r.Builders)
	if r.Untrusted != nil {
		v.builderSet(field+".untrusted", r.Untrusted)
		if r.Untrusted.File == r.Builders.File {
			v.fail(field+".untrusted.file", "the same builders file as the release builders: fork code would be built with release keys", "give fork pull requests their own builders file, with other keys ('accord builders init DIR')")
		}
	} else if r.PullRequests && r.Forks == ForksApprove {
		v.fail(field+".untrusted", "missing: approved fork pull requests need builders of their own", "add untrusted: {file: untrusted/builders.yaml} (other keys than the release builders'), or set forks: never")
	}
	if r.Policy == "" {
		v.fail(field+".policy", "missing", "give the verify policy released artifacts must pass ('accord builders init' writes one)")
	}
	r.Policy = v.abs(r.Policy)
	if r.Timeout.Duration == 0 {
		r.Timeout.Duration = DefaultTimeout
	}
	if r.Timeout.Duration < 0 {
		v.fail(field+".timeout", "negative", "give a duration such as 30m")
	}
	if r.CancelSuperseded == nil {
		t := true
		r.CancelSuperseded = &t
	}
	if r.CloneURL != "" && strings.HasPrefix(r.CloneURL, "-") {
		v.fail(field+".cloneURL", fmt.Sprintf("%q starts with '-'", r.CloneURL), "give a git URL")
	}
}

func (v *checker) globs(field string, globs []string) {
	for j, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			v.fail(fmt.Sprintf("%s[%d]", field, j), fmt.Sprintf("%q is not a valid glob", g), "use * and ? over the name, e.g. release/* or v*")
		}
	}
}

func (v *checker) builderSet(field string, b *BuilderSet) {
	if b.File == "" {
		v.fail(field+".file", "missing", "give a builders file ('accord builders init DIR' writes one)")
	}
	b.File = v.abs(b.File)
	if b.Count < 0 {
		v.fail(field+".count", "negative", "leave it out for all the file's builders")
	}
	if b.Threshold < 0 || (b.Count > 0 && b.Threshold > b.Count) {
		v.fail(field+".threshold", fmt.Sprintf("%d is not between 1 and count (%d)", b.Threshold, b.Count), "leave it out for all builders to agree")
	}
}

// UnmarshalJSON reads "10s", "5m" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("want a duration such as \"10s\" or \"5m\", got %s", b)
		}
		d.Duration = time.Duration(secs * float64(time.Second))
		return nil
	}
	p, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"10s\" or \"5m\", got %q", s)
	}
	d.Duration = p
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Repo returns the config of repository name (owner/name, case-insensitive).
func (c *Config) Repo(name string) (*Repo, bool) {
	for i := range c.Repos {
		if strings.EqualFold(c.Repos[i].Name, name) {
			return &c.Repos[i], true
		}
	}
	return nil, false
}
