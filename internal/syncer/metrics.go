package syncer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// metrics are labelled by link name (ns/name, or the key when the link has no name).
type metrics struct {
	phase       *prometheus.GaugeVec     // link, phase: 1 for the current phase
	applied     *prometheus.CounterVec   // link, direction: messages stored on the other side
	pending     *prometheus.GaugeVec     // link, direction
	lag         *prometheus.GaugeVec     // link, direction: positions seen but not yet durable
	pushLatency *prometheus.HistogramVec // link
	repairs     *prometheus.CounterVec   // link, result
	reconciles  *prometheus.CounterVec   // link, result
	deadLetters *prometheus.CounterVec   // link, direction
	eventsDrop  prometheus.CounterFunc
	// The ledger's group commit, for the whole engine (ledgerhealth.go).
	ledgerHealthy  prometheus.Gauge   // 1 while checkpoints are saved, 0 while commits fail
	ledgerFailures prometheus.Counter // failed commits
}

var phases = []linkstate.Phase{linkstate.Initializing, linkstate.Live, linkstate.Repairing, linkstate.DegradedPoll, linkstate.Paused}

func newMetrics(reg prometheus.Registerer, bus *eventBus) *metrics {
	m := &metrics{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwnsync_link_phase",
			Help: "1 for the link's current phase, 0 for the others."}, []string{"link", "phase"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_messages_applied_total",
			Help: "Messages a link stored on the other side (pull: on local, push: on remote)."}, []string{"link", "direction"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwnsync_pending_deliveries",
			Help: "Feed deliveries not yet contiguously committed."}, []string{"link", "direction"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwnsync_checkpoint_lag",
			Help: "Feed positions between the newest one seen and the durable checkpoint (dialects that number positions per tenant)."}, []string{"link", "direction"}),
		pushLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dwnsync_push_latency_seconds",
			Help: "Duration of one push batch.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"link"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_repairs_total",
			Help: "Repairs by result (started, completed, failed)."}, []string{"link", "result"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_reconciles_total",
			Help: "Reconciles by result (converged, diverged, error)."}, []string{"link", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwnsync_dead_letters_total",
			Help: "Messages refused and recorded as dead letters."}, []string{"link", "direction"}),
	}
	m.ledgerHealthy = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dwnsync_ledger_healthy",
		Help: "1 while the ledger saves checkpoints, 0 while its commits fail (the links keep them in memory and retry)."})
	m.ledgerFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "dwnsync_ledger_commit_failures_total",
		Help: "Ledger group commits that failed (a full or read-only disk, an I/O error)."})
	m.ledgerHealthy.Set(1)
	m.eventsDrop = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dwnsync_events_dropped_total",
		Help: "Engine events dropped because nobody read the channel."}, func() float64 { return float64(bus.droppedCount()) })
	if reg == nil {
		return m
	}
	m.phase = register(reg, m.phase)
	m.applied = register(reg, m.applied)
	m.pending = register(reg, m.pending)
	m.lag = register(reg, m.lag)
	m.pushLatency = register(reg, m.pushLatency)
	m.repairs = register(reg, m.repairs)
	m.reconciles = register(reg, m.reconciles)
	m.deadLetters = register(reg, m.deadLetters)
	m.ledgerHealthy = register(reg, m.ledgerHealthy)
	m.ledgerFailures = register(reg, m.ledgerFailures)
	_ = reg.Register(m.eventsDrop)
	return m
}

// register registers c, or reuses the collector already registered under the same name (a
// second engine in one process, as in tests).
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

func (m *metrics) setPhase(link string, p linkstate.Phase) {
	for _, ph := range phases {
		v := 0.0
		if ph == p {
			v = 1
		}
		m.phase.WithLabelValues(link, string(ph)).Set(v)
	}
}

func (m *metrics) forget(link string) {
	for _, ph := range phases {
		m.phase.DeleteLabelValues(link, string(ph))
	}
	for _, d := range []string{"pull", "push"} {
		m.pending.DeleteLabelValues(link, d)
		m.lag.DeleteLabelValues(link, d)
	}
}
