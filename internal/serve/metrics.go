package serve

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/accord-build/accord/internal/queue"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	deliveries  *prometheus.CounterVec
	intake      *prometheus.HistogramVec
	runs        *prometheus.CounterVec
	runSeconds  *prometheus.HistogramVec
	retries     prometheus.Counter
	redelivered prometheus.Counter
}

// newMetrics makes the metrics; depth and stats (either may be nil) are
// read at each scrape.
func newMetrics(depth func(ctx context.Context) (queued, running int, err error), stats func() queue.Stats) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accord_webhook_deliveries_total", Help: "Webhook deliveries by event and verdict (accepted, duplicate, ignored, ping, unauthorized, too_large, bad_request, method, unavailable).",
		}, []string{"event", "verdict"}),
		intake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "accord_webhook_reply_seconds", Help: "Time from a delivery's arrival to the reply (stored durably first when accepted).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .5, 1, 5},
		}, []string{"verdict"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accord_runs_total", Help: "Finished runs by result (succeeded, failed, cancelled, errored).",
		}, []string{"result"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "accord_run_seconds", Help: "Duration of run attempts by result.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
		}, []string{"result"}),
		retries:     prometheus.NewCounter(prometheus.CounterOpts{Name: "accord_run_retries_total", Help: "Run attempts retried after an infrastructure failure."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "accord_redeliveries_requested_total", Help: "Failed deliveries the server asked GitHub to redeliver."}),
	}
	gauge := func(state string, pick func(q, r int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "accord_queue_runs", Help: "Runs in the queue by state (queued, running).", ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			q, r, err := depth(ctx)
			if err != nil {
				return -1
			}
			return float64(pick(q, r))
		})
	}
	m.reg.MustRegister(m.deliveries, m.intake, m.runs, m.runSeconds, m.retries, m.redelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if depth != nil {
		m.reg.MustRegister(gauge("queued", func(q, _ int) int { return q }), gauge("running", func(_, r int) int { return r }))
	}
	if stats != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "accord_queue_commits_total", Help: "Write transactions committed to the queue since the server started (each one fsynced twice); deliveries stored per commit is accord_queue_deliveries_stored_total over this.",
		}, func() float64 { return float64(stats().Commits) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "accord_queue_deliveries_stored_total", Help: "Deliveries stored in the queue since the server started (not counting duplicates).",
		}, func() float64 { return float64(stats().Accepted) }))
	}
	return m
}

// observe counts one delivery's reply.
func (m *metrics) observe(event, verdict string, d time.Duration) {
	switch verdict {
	case "accepted", "duplicate", "ignored", "ping", "unavailable":
		if !knownEvent[event] {
			event = "other" // a signed header, but still unbounded: bound it
		}
	default:
		event = "unverified" // never label with what an unverified request says
	}
	m.deliveries.WithLabelValues(event, verdict).Inc()
	m.intake.WithLabelValues(verdict).Observe(d.Seconds())
}

// knownEvent are the events labelled by name.
var knownEvent = map[string]bool{
	"push": true, "create": true, "delete": true, "release": true, "pull_request": true, "issue_comment": true,
	"check_run": true, "check_suite": true, "ping": true, "installation": true, "installation_repositories": true,
	"pull_request_review": true, "issues": true, "fork": true, "star": true, "watch": true, "member": true, "repository": true, "pull_request_review_comment": true, "workflow_run": true, "status": true,
}
