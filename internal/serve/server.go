package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/ghapi"
	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/serve/web"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/trigger"
)

// Options are how the server runs beyond its config file.
type Options struct {
	// Version is accord's version, recorded in verification summaries.
	Version string
	// Logger gets the server's log lines (JSON in production); default
	// slog.Default().
	Logger *slog.Logger
	// Getenv reads secrets named by the config; default os.Getenv.
	Getenv func(string) string
	// Listener, when set, is served instead of listening on the config's
	// address (tests).
	Listener net.Listener
	// ShutdownGrace is how long running builds may go on after a
	// shutdown is asked for; then they are stopped and queued again.
	// Default 30s.
	ShutdownGrace time.Duration
	// Parallel, StepMemory configure the local engine (0: defaults).
	Parallel   int
	StepMemory int64
}

// Server is 'accord serve'.
type Server struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	q       *queue.Queue
	secrets *trigger.Secrets
	decider decider
	gh      *ghapi.Client
	repos   map[string]*repo
	metrics *metrics
	version string

	store      store.Store
	puller     *pull.Puller // step images the store lacks
	verifier   *attest.Signer
	workDir    string
	maskValues []string

	wake     chan struct{}
	ready    atomic.Bool
	mu       sync.Mutex
	deciding map[string]failing // deliveries whose decision failed
	// reporting holds a mutex per run being reported.
	reporting sync.Map
}

// New prepares a server: it reads the secrets, opens the store and the
// queue, loads every repository's pipeline, builders' keys and policy and
// puts back into the queue the runs a previous process left running. Any
// problem with the config is an error naming its file and field.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, version: opts.Version, wake: make(chan struct{}, 1), deciding: map[string]failing{}}
	dir := filepath.Dir(cfg.File)
	var err error
	if s.secrets, err = trigger.LoadSecrets(dir, cfg.Secrets, opts.Getenv); err != nil {
		return nil, err
	}
	if err := s.prepare(ctx, dir); err != nil {
		if s.q != nil {
			s.q.Close()
		}
		return nil, err
	}
	s.decider = &trigger.Decider{Config: cfg, Pulls: s.gh, Runs: s.q}
	s.metrics = newMetrics(s.q.Depth, s.q.Stats)
	return s, nil
}

// prepare opens the queue first (its lock says no other server uses this
// state directory), then the stores, keys, repositories and GitHub client.
func (s *Server) prepare(ctx context.Context, dir string) error {
	cfg := s.cfg
	var err error
	if err = os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return &config.Error{File: cfg.File, Field: "stateDir", Msg: err.Error(), Fix: "give a directory the server can create and write"}
	}
	if s.q, err = queue.Open(filepath.Join(cfg.StateDir, "queue.db"), queue.Options{}); err != nil {
		return fmt.Errorf("opening the queue in %s: %w", cfg.StateDir, err)
	}
	if err := s.openStores(); err != nil {
		return err
	}
	if cfg.Verifier != nil {
		if s.verifier, err = attest.LoadSigner(ctx, cfg.Verifier.Key, passwordFromEnv); err != nil {
			return &config.Error{File: cfg.File, Field: "verifier.key", Msg: err.Error(), Fix: "give the verifier's cosign key file or KMS URI, and its password in ACCORD_PASSWORD"}
		}
	}
	if s.repos, err = loadRepos(ctx, cfg); err != nil {
		return err
	}
	pipelineOf := func(name string) string {
		if r, ok := cfg.Repo(name); ok {
			return strings.TrimSuffix(filepath.Base(r.Pipeline), ".yaml")
		}
		return ""
	}
	if s.gh, err = ghapi.New(ctx, cfg.GitHub, dir, s.opts.Getenv, ghapi.WithPipelineOf(pipelineOf)); err != nil {
		return err
	}
	s.maskValues = append(s.secrets.Values(), s.gh.Secrets()...)
	n, err := s.q.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering the queue: %w", err)
	}
	if n > 0 {
		s.log.Info("runs interrupted by the last shutdown are queued again, to run from the start", "runs", n)
	}
	return nil
}

func (s *Server) openStores() error {
	var err error
	if s.store, err = store.Open(s.cfg.Store, store.WithAllowedRegistries(s.cfg.AllowRegistries...)); err != nil {
		return &config.Error{File: s.cfg.File, Field: "store", Msg: err.Error(), Fix: "give an OCI layout directory or HOST/REPO"}
	}
	// Step images the store lacks are pulled by digest, on the host,
	// before a run's first step (registryMirrors first).
	var mirrors pull.Mirrors
	for _, m := range s.cfg.RegistryMirrors {
		pm, err := pull.ParseMirror(m)
		if err != nil {
			return &config.Error{File: s.cfg.File, Field: "registryMirrors", Msg: err.Error(), Fix: "write FROM=TO"}
		}
		mirrors = append(mirrors, pm)
	}
	s.puller = pull.New(pull.WithMirrors(mirrors), pull.WithTempDir(s.cfg.StateDir))
	// Work directories of a run a killed process left behind are removed:
	// nothing of a run survives it.
	s.workDir = filepath.Join(s.cfg.StateDir, "work")
	if err := os.RemoveAll(s.workDir); err != nil {
		return fmt.Errorf("cleaning %s: %w", s.workDir, err)
	}
	return os.MkdirAll(s.workDir, 0o700)
}

// service is a build service on st.
func (s *Server) service(st store.Store) *build.Service {
	return &build.Service{Store: st, WorkDir: s.workDir, Parallel: s.opts.Parallel, StepMemory: s.opts.StepMemory, Logger: s.log, Pull: s.puller}
}

// mask hides the server's secret values in text shown to GitHub or on
// the status page.
func (s *Server) mask(text string) string { return mask(text, s.maskValues) }

// Handler is the server's HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/github", &trigger.Handler{
		Secrets: s.secrets, Store: &waker{q: s.q, wake: s.wake}, Handles: trigger.Handles,
		Observe: s.metrics.observe, Logger: s.log,
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", web.New(s.q, &evidenceFetcher{s: s}, web.Options{}))
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
		return
	}
	if _, _, err := s.q.Depth(r.Context()); err != nil {
		http.Error(w, "not ready: queue: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// waker is the queue as the intake's store: it wakes the dispatcher after
// each accepted delivery.
type waker struct {
	q    *queue.Queue
	wake chan struct{}
}

func (w *waker) Accept(ctx context.Context, d trigger.Delivery, ignored string) (bool, error) {
	dup, err := w.q.Accept(ctx, d, ignored)
	if err == nil && !dup && ignored == "" {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return dup, err
}

// Run serves until ctx is done, then shuts down: it stops accepting
// deliveries, lets running builds finish within the grace period, puts
// the rest back into the queue and closes it.
func (s *Server) Run(ctx context.Context) error {
	ln := s.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return &config.Error{File: s.cfg.File, Field: "listen", Msg: err.Error(), Fix: "give a free address, or stop what listens there"}
		}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 8 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	claimCtx, stopClaiming := context.WithCancel(context.Background())
	runCtx, stopRuns := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2 + s.cfg.Workers)
	go func() { defer wg.Done(); s.dispatch(claimCtx) }()
	go func() { defer wg.Done(); s.redeliverLoop(claimCtx) }()
	for i := 0; i < s.cfg.Workers; i++ {
		go func() { defer wg.Done(); s.work(claimCtx, runCtx) }()
	}
	s.ready.Store(true)
	s.log.Info("serving", "listen", ln.Addr().String(), "workers", s.cfg.Workers, "repos", len(s.cfg.Repos))

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	s.ready.Store(false)
	stopClaiming()
	s.log.Info("shutting down: no new deliveries; running builds get a grace period", "grace", s.opts.ShutdownGrace.String())
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if e := srv.Shutdown(shCtx); e != nil {
		s.log.Warn("closing connections", "err", e)
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownGrace):
		stopRuns()
		<-done
	}
	stopRuns()
	if e := s.q.Close(); e != nil && err == nil {
		err = e
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
