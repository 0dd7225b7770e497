package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/logwriter"
	"github.com/accord-build/accord/internal/serve"
	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/startup"
)

// serveOptions are the flags of 'accord serve'.
type serveOptions struct {
	config     string
	grace      time.Duration
	logFormat  string
	parallel   int
	stepMemory int64
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Build from GitHub webhooks: verified intake, a durable queue, checks back on GitHub, a status page",
		Long: `Serve GitHub webhooks: POST /webhooks/github.

Every delivery's X-Hub-Signature-256 is checked first, in constant time,
against the configured secrets (401 and nothing stored when it fails; no
SHA-1). An accepted delivery is stored durably (fsync) before the reply;
X-GitHub-Delivery is de-duplicated, so a redelivery starts nothing new.
The repository's pipeline, params, builders and verify policy come from
this config, never from the repository's tree. Pull requests from forks
are built only after a maintainer comments "/ok-to-test <head sha>", by
the untrusted builders (other keys), and are never released.

Each run goes through the build service with the repository's builders
(primary and validators); what they agree on is released, verified against
the policy and, with a verifier key, given a signed verification summary.
Results go back to GitHub as check runs (a GitHub App) or commit statuses
(a token). On start and every interval, failed deliveries are redelivered.

  apiVersion: accord.dev/v1alpha1
  kind: ServerConfig
  listen: 127.0.0.1:8080              # default
  externalURL: https://accord.example.com
  stateDir: /var/lib/accord           # queue database, work directories
  store: /var/lib/accord/store        # default <stateDir>/store; or HOST/REPO
  secrets:                            # any one of them signs a delivery
  - file: webhook-secret
  - env: ACCORD_WEBHOOK_SECRET_NEXT
  workers: 1                          # runs at once
  retry: {attempts: 3, backoff: 10s}  # infrastructure failures only
  github:
    apiURL: https://api.github.com/   # GHES: https://HOST/api/v3/
    app: {id: 123, installationID: 456, privateKeyFile: app.pem}
    # token: {file: token}            # instead of app: commit statuses
    redeliver: {interval: 10m, window: 72h, hooks: [{app: true}]}
  verifier: {key: verifier.key, id: https://accord.example.com/verifiers/release}
  repos:
  - name: acme/app
    pipeline: go-image
    params: {package: ./cmd/app}
    branches: [main, "release/*"]
    tags: ["v*"]
    pullRequests: true
    maintainers: [alice]
    builders: {file: builders/builders.yaml, count: 2, threshold: 2}
    untrusted: {file: untrusted/builders.yaml}
    policy: builders/policy.yaml

Relative paths are relative to the config file. Key passwords come from
ACCORD_PASSWORD. Endpoints: /webhooks/github, / (status page),
/runs/ID, /healthz, /readyz, /metrics (Prometheus). SIGTERM stops intake,
gives running builds --shutdown-grace, then queues them again.
'accord doctor --serve-config FILE' checks the prerequisites.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.config == "" {
				return usageErr(fmt.Errorf("--config is required\n  fix: give the server's config file (see 'accord serve --help')"))
			}
			cfg, err := config.Load(o.config)
			if err != nil {
				return usageErr(err)
			}
			// Log lines of concurrent requests share a write (see
			// internal/logwriter); what is left is written on the way out.
			lw := logwriter.New(os.Stderr)
			defer lw.Close()
			log := serveLogger(o.logFormat, lw)
			serveGC()
			srv, err := serve.New(cmd.Context(), cfg, serve.Options{Version: version, Logger: log, ShutdownGrace: o.grace, Parallel: o.parallel, StepMemory: o.stepMemory})
			if err != nil {
				return usageErr(err)
			}
			// The keys are loaded: their password leaves the environment
			// that git, the runtimes and diffoscope inherit.
			os.Unsetenv("ACCORD_PASSWORD")
			os.Unsetenv("COSIGN_PASSWORD")
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "the server's config file (YAML, see above)")
	f.DurationVar(&o.grace, "shutdown-grace", 30*time.Second, "on SIGTERM, how long running builds may finish before they are queued again")
	f.StringVar(&o.logFormat, "log-format", "json", "log format on stderr: json or text")
	f.IntVar(&o.parallel, "parallel", 0, "tasks of one build to run at once (default: number of CPUs)")
	f.Int64Var(&o.stepMemory, "step-memory", 4<<30, "memory limit in bytes for steps that set none")
	return cmd
}

// serveGCPercent is the server's GOGC unless the environment sets one:
// its live heap is small (config, index, bodies in flight) and a burst of
// deliveries allocates fast, so collecting at 4x the live heap instead of
// 2x roughly halves the collector's share of the CPU (measured with
// hack/bench/serve.sh) for tens of megabytes.
const serveGCPercent = 300

func serveGC() { startup.PreferGCPercent(serveGCPercent) }

func serveLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
