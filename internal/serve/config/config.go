package config

import "time"

// Config is the server's configuration file: where it listens, where it
// keeps its state, how it checks and answers GitHub, and, per repository,
// how that repository is built (the policy-controlled catalog; nothing in
// the repository's own tree changes it).
type Config struct {
	APIVersion string `json:"apiVersion"` // accord.dev/v1alpha1
	Kind       string `json:"kind"`       // ServerConfig
	// File is the path the config was loaded from; relative paths in it
	// are relative to its directory (set by Load, never read from YAML).
	File string `json:"-"`

	// Listen is the address of the HTTP server; default 127.0.0.1:8080.
	Listen string `json:"listen,omitempty"`
	// ExternalURL is the server's public URL, for links in check runs and
	// statuses; default http://<Listen>.
	ExternalURL string `json:"externalURL,omitempty"`
	// StateDir holds the queue database and the builds' work directories;
	// required.
	StateDir string `json:"stateDir"`
	// Store is where artifacts and evidence go, as --store: an OCI layout
	// directory (relative: "./store", beside this file) or HOST/REPO;
	// default <StateDir>/store.
	Store string `json:"store,omitempty"`
	// AllowRegistries are the registries (HOST[:PORT]) a registry store
	// pushes image artifacts to, in the repository their name gives, as
	// --allow-registry; the store's own registry is always allowed.
	AllowRegistries []string `json:"allowRegistries,omitempty"`
	// RegistryMirrors are where step images the store lacks are fetched
	// from before their own registry, as --registry-mirror: "FROM=TO"
	// (docker.io=registry.internal/mirror, http://... for plain HTTP).
	RegistryMirrors []string `json:"registryMirrors,omitempty"`
	// Secrets are the webhook secrets; a delivery signed with any one of
	// them is accepted (several at once while one is rotated). At least one.
	Secrets []Secret `json:"secrets"`
	// Workers is how many runs go at once; default 1.
	Workers int `json:"workers,omitempty"`
	// Retry is how runs that fail for an infrastructure reason (not a
	// failed build) are retried.
	Retry Retry `json:"retry,omitempty"`
	// GitHub is how the server talks back to GitHub.
	GitHub GitHub `json:"github,omitempty"`
	// Verifier signs the verification summary of a released artifact.
	Verifier *Verifier `json:"verifier,omitempty"`
	// Repos are the repositories built, each by its own rules.
	Repos []Repo `json:"repos"`
}

// Secret is a webhook secret read from a file or an environment variable
// (exactly one of the two); never from a request.
type Secret struct {
	File string `json:"file,omitempty"`
	Env  string `json:"env,omitempty"`
}

// Retry bounds retries of infrastructure failures.
type Retry struct {
	// Attempts is the most attempts per run; default 3.
	Attempts int `json:"attempts,omitempty"`
	// Backoff is the wait before the first retry, doubled each time;
	// default 10s.
	Backoff Duration `json:"backoff,omitempty"`
}

// GitHub is the API the server reports to and asks for redeliveries.
type GitHub struct {
	// APIURL is the REST API's base URL; default https://api.github.com/.
	// GitHub Enterprise Server: https://HOST/api/v3/.
	APIURL string `json:"apiURL,omitempty"`
	// App, when set, makes the server a GitHub App: it writes check runs.
	App *App `json:"app,omitempty"`
	// Token, when set instead of App, is a token with push access: the
	// server writes commit statuses.
	Token *Secret `json:"token,omitempty"`
	// Redeliver asks GitHub to redeliver what failed while the server was
	// away (GitHub never retries on its own).
	Redeliver Redeliver `json:"redeliver,omitempty"`
}

// App is a GitHub App's identity.
type App struct {
	ID             int64  `json:"id"`
	InstallationID int64  `json:"installationID"`
	PrivateKeyFile string `json:"privateKeyFile"`
}

// Redeliver is the periodic redelivery of failed deliveries.
type Redeliver struct {
	// Disabled turns it off.
	Disabled bool `json:"disabled,omitempty"`
	// Interval between scans; default 10m. The server also scans on start.
	Interval Duration `json:"interval,omitempty"`
	// Window is how far back to look; default 72h (GitHub keeps
	// deliveries 3 days; 7 on GHES).
	Window Duration `json:"window,omitempty"`
	// Hooks are the webhooks whose deliveries are scanned: a repository
	// hook (repo + id), or the App's own hook (app: true).
	Hooks []Hook `json:"hooks,omitempty"`
}

// Hook names one webhook.
type Hook struct {
	Repo string `json:"repo,omitempty"`
	ID   int64  `json:"id,omitempty"`
	App  bool   `json:"app,omitempty"`
}

// Verifier is the key and identity that sign verification summaries.
type Verifier struct {
	Key string `json:"key"`
	ID  string `json:"id"`
}

// Repo is how one repository is built.
type Repo struct {
	// Name is owner/name, as GitHub's repository.full_name.
	Name string `json:"name"`
	// CloneURL, when set, is fetched instead of the payload's clone_url
	// (a mirror).
	CloneURL string `json:"cloneURL,omitempty"`
	// Pipeline is the catalog pipeline (or a file in the server's
	// catalog, relative to this config).
	Pipeline string `json:"pipeline"`
	// Params are the pipeline's params (NAME: VALUE as strings, typed by
	// the pipeline's declarations).
	Params map[string]string `json:"params,omitempty"`
	// Branches are the branches whose pushes are built (globs over the
	// branch name); default none.
	Branches []string `json:"branches,omitempty"`
	// Tags are the tags built when pushed or created, and releases when
	// published (globs over the tag name); default none.
	Tags []string `json:"tags,omitempty"`
	// PullRequests builds pull requests (opened, synchronize, reopened).
	PullRequests bool `json:"pullRequests,omitempty"`
	// Forks is what happens to pull requests from forks: "approve"
	// (default: built only after a maintainer comments
	// "/ok-to-test <head sha>"), "never".
	Forks string `json:"forks,omitempty"`
	// Maintainers are the GitHub logins whose /ok-to-test and /retest
	// count.
	Maintainers []string `json:"maintainers,omitempty"`
	// Builders is who builds trusted events (pushes, tags, releases,
	// pull requests from the repository itself).
	Builders BuilderSet `json:"builders"`
	// Untrusted is who builds pull requests from forks: other keys than
	// the release builders'; their artifacts are never released. Required
	// when fork pull requests are built.
	Untrusted *BuilderSet `json:"untrusted,omitempty"`
	// Policy is the verify policy file for released artifacts.
	Policy string `json:"policy"`
	// CancelSuperseded cancels a queued run when a newer push to the same
	// branch (or pull request) arrives; default true.
	CancelSuperseded *bool `json:"cancelSuperseded,omitempty"`
	// Timeout bounds one run; default 1h.
	Timeout Duration `json:"timeout,omitempty"`
}

// BuilderSet is a builders file and how many of its builders take part.
type BuilderSet struct {
	// File is a builders file ('accord builders init' writes one).
	File string `json:"file"`
	// Count is how many of its builders run (the primary first); default
	// all.
	Count int `json:"count,omitempty"`
	// Threshold is k of the k-of-n vote; default Count.
	Threshold int `json:"threshold,omitempty"`
}

// Duration is a time.Duration written as "10s", "5m".
type Duration struct{ time.Duration }
