package syncer

import (
	"errors"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/version"
)

// Metrics are sized for 10,000 links: a link's series carry its namespace and name (never the
// tenant or a joined key), latency histograms are per endpoint, and every series of a removed
// link is deleted. Gauges of a link's state (phase, times, progress, seconds behind) are read
// at scrape time from the links themselves, so they cannot outlive a link.
type metrics struct {
	applied     *prometheus.CounterVec   // namespace, name, direction: messages stored on the other side
	pending     *prometheus.GaugeVec     // namespace, name, direction
	lag         *prometheus.GaugeVec     // namespace, name, direction: positions seen but not yet durable
	repairs     *prometheus.CounterVec   // namespace, name, result
	reconciles  *prometheus.CounterVec   // namespace, name, result
	deadLetters *prometheus.CounterVec   // namespace, name, direction
	pushLatency *prometheus.HistogramVec // endpoint
	errors      *prometheus.CounterVec   // endpoint, kind: failed calls reported to a link
	reconnects  *prometheus.CounterVec   // endpoint: feeds that ended or failed and are reopened
	links       *linkCollector
	eventsDrop  prometheus.CounterFunc
	// The ledger's group commit, for the whole engine (ledgerhealth.go).
	ledgerHealthy  prometheus.Gauge   // 1 while checkpoints are saved, 0 while commits fail
	ledgerFailures prometheus.Counter // failed commits
	buildInfo      prometheus.Gauge
}

var linkLabels = []string{"namespace", "name"}

func withLink(extra ...string) []string {
	return append(append([]string(nil), linkLabels...), extra...)
}

func newMetrics(reg prometheus.Registerer, e *Engine) *metrics {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_messages_applied_total",
			Help: "Messages a link stored on the other side (pull: on local, push: on remote)."}, withLink("direction")),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwnsync_pending_deliveries",
			Help: "Feed deliveries not yet contiguously committed."}, withLink("direction")),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwnsync_checkpoint_lag_positions",
			Help: "Feed positions (messages) between the newest one seen and the durable checkpoint; only for dialects that number positions per tenant."}, withLink("direction")),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_repairs_total",
			Help: "Repairs by result (started, completed, failed)."}, withLink("result")),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_reconciles_total",
			Help: "Reconciles by result (converged, diverged, error)."}, withLink("result")),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_dead_letters_total",
			Help: "Messages refused and recorded as dead letters."}, withLink("direction")),
		pushLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dwnsync_push_latency_seconds",
			Help: "Duration of one push batch, by remote endpoint.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"endpoint"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_endpoint_errors_total",
			Help: "Failed DWN calls that reached a link, by endpoint and error kind (Transient, Permanent, Unauthorized, Unsupported, Other)."}, []string{"endpoint", "kind"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_feed_reconnects_total",
			Help: "Feeds (subscriptions) of an endpoint that ended or failed and are reopened by a link."}, []string{"endpoint"}),
		links: &linkCollector{},
		buildInfo: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dwnsync_build_info",
			Help:        "Always 1; the labels say which dwnsync build runs.",
			ConstLabels: prometheus.Labels{"version": version.Version, "commit": version.Commit(), "goversion": runtime.Version()}}),
	}
	m.ledgerHealthy = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dwnsync_ledger_healthy",
		Help: "1 while the ledger saves checkpoints, 0 while its commits fail (the links keep them in memory and retry)."})
	m.ledgerFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "dwnsync_ledger_commit_failures_total",
		Help: "Ledger group commits that failed (a full or read-only disk, an I/O error)."})
	m.ledgerHealthy.Set(1)
	m.buildInfo.Set(1)
	m.eventsDrop = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dwnsync_events_dropped_total",
		Help: "Engine events dropped because nobody read the channel."}, func() float64 { return float64(e.bus.droppedCount()) })
	if reg != nil {
		m.applied = register(reg, m.applied)
		m.pending = register(reg, m.pending)
		m.lag = register(reg, m.lag)
		m.repairs = register(reg, m.repairs)
		m.reconciles = register(reg, m.reconciles)
		m.deadLetters = register(reg, m.deadLetters)
		m.pushLatency = register(reg, m.pushLatency)
		m.errors = register(reg, m.errors)
		m.reconnects = register(reg, m.reconnects)
		m.links = register(reg, m.links)
		m.buildInfo = register(reg, m.buildInfo)
		m.ledgerHealthy = register(reg, m.ledgerHealthy)
		m.ledgerFailures = register(reg, m.ledgerFailures)
		_ = reg.Register(m.eventsDrop)
	}
	// A registry outlives an engine (the operator makes a new one per leadership term): the
	// collector reads the newest engine's links.
	m.links.engine.Store(e)
	return m
}

// EndpointRequestCounter counts the HTTP requests made to each DWN endpoint
// (dwnsync_endpoint_requests_total{endpoint}), for the client pool's OnRequest hook: the pool
// sees every request, retries and probes included, where the engine sees only calls. With a
// nil reg it counts into a collector nobody reads.
func EndpointRequestCounter(reg prometheus.Registerer) func(endpoint string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_endpoint_requests_total",
		Help: "HTTP requests sent to a DWN endpoint (retries and dialect probes included)."}, []string{"endpoint"})
	if reg != nil {
		c = register(reg, c)
	}
	return func(endpoint string) { c.WithLabelValues(endpoint).Inc() }
}

// register registers c, or reuses the collector already registered under the same name (a
// second engine in one process, as in tests and after a leader election).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// linkValues splits a link name "namespace/name" into its label values ("" namespace for a
// link named by its key alone).
func linkValues(link string, extra ...string) []string {
	ns, name, ok := strings.Cut(link, "/")
	if !ok {
		ns, name = "", link
	}
	return append([]string{ns, name}, extra...)
}

func (m *metrics) countError(endpoint, kind string) {
	if kind == "" {
		kind = "Other"
	}
	m.errors.WithLabelValues(endpoint, kind).Inc()
}

// Label values of the per-link vectors besides namespace and name: forget deletes exactly
// these (a partial-match delete scans every series: quadratic when 10,000 links go).
var (
	directionValues  = []string{"pull", "push"}
	repairResults    = []string{"started", "completed", "failed"}
	reconcileResults = []string{"converged", "diverged", "error"}
)

// forget deletes every per-link series of a removed link.
func (m *metrics) forget(link string) {
	for _, d := range directionValues {
		v := linkValues(link, d)
		m.applied.DeleteLabelValues(v...)
		m.pending.DeleteLabelValues(v...)
		m.lag.DeleteLabelValues(v...)
		m.deadLetters.DeleteLabelValues(v...)
	}
	for _, r := range repairResults {
		m.repairs.DeleteLabelValues(linkValues(link, r)...)
	}
	for _, r := range reconcileResults {
		m.reconciles.DeleteLabelValues(linkValues(link, r)...)
	}
}

// linkCollector reports each link's state at scrape time from the engine's links.
type linkCollector struct {
	engine atomic.Pointer[Engine]
}

var (
	phaseDesc = prometheus.NewDesc("dwnsync_link_phase",
		"1 for the link's current phase (one series per link: initializing, live, repairing, degraded_poll or paused).", withLink("phase"), nil)
	lastConvergedDesc = prometheus.NewDesc("dwnsync_last_converged_timestamp_seconds",
		"When a reconcile last found nothing left to copy (Unix seconds); absent until one does.", linkLabels, nil)
	progressAppliedDesc = prometheus.NewDesc("dwnsync_progress_applied_messages",
		"Messages applied by the link's latest copy pass (the bootstrap, typically).", linkLabels, nil)
	progressTotalDesc = prometheus.NewDesc("dwnsync_progress_total_messages",
		"Messages the latest copy pass has to apply; absent when the dialect cannot tell.", linkLabels, nil)
	behindDesc = prometheus.NewDesc("dwnsync_checkpoint_behind_seconds",
		"How long the durable checkpoint has trailed the newest feed position seen (0 when caught up); only for dialects that number positions per tenant.", withLink("direction"), nil)
)

func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{phaseDesc, lastConvergedDesc, progressAppliedDesc, progressTotalDesc, behindDesc} {
		ch <- d
	}
}

func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.engine.Load()
	if e == nil {
		return
	}
	e.mu.Lock()
	links := make([]*link, 0, len(e.links))
	for _, l := range e.links {
		links = append(links, l)
	}
	e.mu.Unlock()
	now := e.clock.Now()
	for _, l := range links {
		v := l.metricValues(now)
		lv := linkValues(l.cfg.Name)
		ch <- prometheus.MustNewConstMetric(phaseDesc, prometheus.GaugeValue, 1, linkValues(l.cfg.Name, string(v.phase))...)
		if !v.lastConverged.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastConvergedDesc, prometheus.GaugeValue, float64(v.lastConverged.UnixNano())/1e9, lv...)
		}
		if v.progress.Applied > 0 || v.progress.Total > 0 {
			ch <- prometheus.MustNewConstMetric(progressAppliedDesc, prometheus.GaugeValue, float64(v.progress.Applied), lv...)
		}
		if v.progress.Total > 0 {
			ch <- prometheus.MustNewConstMetric(progressTotalDesc, prometheus.GaugeValue, float64(v.progress.Total), lv...)
		}
		for _, d := range []linkstate.Dir{linkstate.Pull, linkstate.Push} {
			if behind, ok := v.behind[d]; ok {
				ch <- prometheus.MustNewConstMetric(behindDesc, prometheus.GaugeValue, behind.Seconds(), linkValues(l.cfg.Name, d.String())...)
			}
		}
	}
}
