package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `apiVersion: accord.dev/v1alpha1
kind: ServerConfig
stateDir: state
secrets:
- file: webhook-secret
- env: ACCORD_WEBHOOK_SECRET_OLD
github:
  apiURL: https://ghe.example.com/api/v3
  app: {id: 12, installationID: 34, privateKeyFile: app.pem}
  redeliver:
    hooks: [{app: true}, {repo: acme/app, id: 7}]
verifier: {key: verifier.key, id: https://accord.example.com/verifiers/release}
repos:
- name: acme/app
  pipeline: go-image
  params: {package: ./cmd/app}
  branches: [main, "release/*"]
  tags: ["v*"]
  pullRequests: true
  maintainers: [alice, "renovate[bot]"]
  builders: {file: builders/builders.yaml, count: 2}
  untrusted: {file: untrusted/builders.yaml}
  policy: builders/policy.yaml
  timeout: 30m
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse("/etc/accord/serve.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := c.Repo("ACME/App")
	if !ok {
		t.Fatal("repo acme/app not found case-insensitively")
	}
	checks := []struct{ name, got, want string }{
		{"listen", c.Listen, DefaultListen},
		{"externalURL", c.ExternalURL, "http://" + DefaultListen},
		{"stateDir", c.StateDir, "/etc/accord/state"},
		{"store", c.Store, "/etc/accord/state/store"},
		{"secret file", c.Secrets[0].File, "/etc/accord/webhook-secret"},
		{"apiURL", c.GitHub.APIURL, "https://ghe.example.com/api/v3/"},
		{"app key", c.GitHub.App.PrivateKeyFile, "/etc/accord/app.pem"},
		{"verifier key", c.Verifier.Key, "/etc/accord/verifier.key"},
		{"builders", r.Builders.File, "/etc/accord/builders/builders.yaml"},
		{"policy", r.Policy, "/etc/accord/builders/policy.yaml"},
		{"pipeline", r.Pipeline, "go-image"},
		{"forks", r.Forks, ForksApprove},
		{"timeout", r.Timeout.String(), "30m0s"},
		{"window", c.GitHub.Redeliver.Window.String(), "72h0m0s"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.Workers != 1 || c.Retry.Attempts != 3 || c.Retry.Backoff.Duration != 10*time.Second || !*r.CancelSuperseded {
		t.Errorf("defaults: workers %d attempts %d backoff %s cancelSuperseded %v", c.Workers, c.Retry.Attempts, c.Retry.Backoff, *r.CancelSuperseded)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, field, msg string
	}{
		{"kind", "kind: ServerConfig", "kind: Builders", "apiVersion", "want apiVersion"},
		{"unknown field", "stateDir: state", "stateDir: state\nstateDirectory: x", "", "unknown field"},
		{"no state", "stateDir: state\n", "", "stateDir", "missing"},
		{"listen", "stateDir: state", "stateDir: state\nlisten: nope", "listen", "HOST:PORT"},
		{"store", "stateDir: state", "stateDir: state\nstore: -x", "store", "neither a directory"},
		{"allowed registry", "stateDir: state", "stateDir: state\nallowRegistries: [ghcr.io, https://registry.example]", "allowRegistries", "not a registry host"},
		{"allowed registry path", "stateDir: state", "stateDir: state\nallowRegistries: [registry.example/team]", "allowRegistries", "not a registry host"},
		{"registry mirror without =", "stateDir: state", "stateDir: state\nregistryMirrors: [docker.io=mirror.internal/hub, mirror.internal]", "registryMirrors[1]", "FROM=TO"},
		{"no secrets", "- file: webhook-secret\n- env: ACCORD_WEBHOOK_SECRET_OLD\n", "", "secrets", "no webhook secret"},
		{"secret both", "- file: webhook-secret", "- {file: a, env: B}", "secrets[0]", "both file and env"},
		{"secret env", "env: ACCORD_WEBHOOK_SECRET_OLD", "env: 1BAD-NAME", "secrets[1].env", "not an environment"},
		{"workers", "stateDir: state", "stateDir: state\nworkers: 1000", "workers", "between 1 and 64"},
		{"duration", "timeout: 30m", "timeout: soon", "", "want a duration"},
		{"app and token", "  redeliver:", "  token: {env: GH_TOKEN}\n  redeliver:", "github", "both app and token"},
		{"app id", "id: 12, ", "", "github.app.id", "missing"},
		{"hook", "{repo: acme/app, id: 7}", "{repo: acme/app}", "github.redeliver.hooks[1]", "repo (owner/name) and id"},
		{"window", "  redeliver:", "  redeliver:\n    window: 400h", "github.redeliver.window", "between 0 and 168h"},
		{"verifier id", "id: https://accord.example.com/verifiers/release", "id: release", "verifier.id", "not a URI"},
		{"repo name", "name: acme/app", "name: app", "repos[0].name", "not owner/name"},
		{"glob", `"release/*"`, `"release/["`, "repos[0].branches[1]", "not a valid glob"},
		{"forks", "pullRequests: true", "pullRequests: true\n  forks: always", "repos[0].forks", "neither approve nor never"},
		{"maintainer", "alice,", "'@alice',", "repos[0].maintainers[0]", "not a GitHub login"},
		{"untrusted missing", "  untrusted: {file: untrusted/builders.yaml}\n", "", "repos[0].untrusted", "approved fork pull requests need builders"},
		{"untrusted same keys", "untrusted/builders.yaml", "builders/builders.yaml", "repos[0].untrusted.file", "release keys"},
		{"threshold", "count: 2}", "count: 2, threshold: 3}", "repos[0].builders.threshold", "between 1 and count"},
		{"no policy", "  policy: builders/policy.yaml\n", "", "repos[0].policy", "missing"},
		{"builds nothing", "  branches: [main, \"release/*\"]\n  tags: [\"v*\"]\n  pullRequests: true\n", "", "repos[0]", "builds nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Replace(good, tc.old, tc.new, 1)
			if data == good {
				t.Fatalf("replacement %q not found", tc.old)
			}
			_, err := Parse("serve.yaml", []byte(data))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ce.File != "serve.yaml" || ce.Field != tc.field || !strings.Contains(ce.Msg, tc.msg) || ce.Fix == "" {
				t.Errorf("err = %#v, want field %q, message with %q and a fix", ce, tc.field, tc.msg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("err = %v, want an error with a fix", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: accord.dev/v1alpha1\nkind: ServerConfig\n"))
	f.Add([]byte("repos: [{name: a/b, timeout: 1e300}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Fix == "" {
				t.Fatalf("error without file, field and fix: %v", err)
			}
			return
		}
		if len(c.Secrets) == 0 || len(c.Repos) == 0 || c.StateDir == "" || c.Workers < 1 {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
	})
}
