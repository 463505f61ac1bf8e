package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// statusWritesTotal counts ReplicationLink status writes by kind: "transition" (phase,
// conditions, errors: written at once) and "counters" (coalesced). The engine's per-link
// metrics (phase, applied, pending, push latency, repairs, reconciles, dead letters) share the
// manager's registry.
var statusWritesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "dwnsync_status_writes_total",
	Help: "ReplicationLink status writes to the API server, by kind (transition, counters).",
}, []string{"kind"})

func init() {
	metrics.Registry.MustRegister(statusWritesTotal)
}
