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

// Sharding metrics (operator replicas as shards, docs/decisions.md D23).
var (
	shardLinks = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dwnsync_shard_links",
		Help: "ReplicationLinks assigned to each shard, as the sharder last counted them.",
	}, []string{"shard"})
	shardHandovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dwnsync_shard_handovers_total",
		Help: "Links that left a shard: drained (the shard stopped it and let go) or taken over (the shard was declared dead).",
	}, []string{"shard", "kind"})
	shardHandoverSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dwnsync_shard_handover_duration_seconds",
		Help:    "Time a link spent between shards, by kind: drain (drain requested → assigned anew) or takeover (dead owner's last renewal → assigned anew).",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
	}, []string{"kind"})
	shardFencingStops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dwnsync_shard_fencing_stops_total",
		Help: "Links a shard stopped because it could not renew its Lease in time, or found it declared dead.",
	}, []string{"shard"})
)

func init() {
	metrics.Registry.MustRegister(shardLinks, shardHandovers, shardHandoverSeconds, shardFencingStops)
}
