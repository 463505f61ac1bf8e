package syncer

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/ledger"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// MaxSeriesPerLink is the most series one link can have: every direction and result of its
// counters and gauges touched (a typical live link has 13). README states it.
const MaxSeriesPerLink = 20

// 10,000 links, each with every per-link series it can have, over 20 remote endpoints: the
// registry holds at most MaxSeriesPerLink per link plus a fixed number per endpoint, and
// removing the links leaves only the per-endpoint and process-wide series.
func TestMetricsSeriesAt10kLinks(t *testing.T) {
	const links, endpoints = 10_000, 20
	store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	e, err := New(Options{Ledger: store, Pool: dialect.NewPool(dialect.Options{}), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	for i := 0; i < links; i++ {
		name := fmt.Sprintf("team-%d/tenant-%d", i%100, i)
		remote := fmt.Sprintf("https://dwn-%d.example.com", i%endpoints)
		l := &link{e: e, key: name, cfg: LinkConfig{Name: name, RemoteEndpoint: remote, LocalEndpoint: "http://local"}}
		l.status = LinkStatus{Phase: "live", LastConvergedTime: now, Progress: Progress{Applied: 5, Total: 9}}
		l.seen, l.durable, l.behindSince = [2]uint64{9, 9}, [2]uint64{7, 7}, [2]time.Time{now, now}
		e.links[name] = l
		touchEverySeries(e.met, l)
	}
	perLink, perEndpoint, total := countSeries(t, reg)
	t.Logf("%d links over %d endpoints: %d series (%d carry a link's labels, %d an endpoint's)", links, endpoints, total, perLink, perEndpoint)
	if perLink > MaxSeriesPerLink*links {
		t.Errorf("%d per-link series for %d links: more than %d per link", perLink, links, MaxSeriesPerLink)
	}
	if perEndpoint > 40*endpoints {
		t.Errorf("%d per-endpoint series for %d endpoints", perEndpoint, endpoints)
	}
	if total-perLink-perEndpoint > 10 {
		t.Errorf("%d process-wide series", total-perLink-perEndpoint)
	}

	for name := range e.links {
		e.met.forget(name)
		delete(e.links, name)
	}
	if left, _, _ := countSeries(t, reg); left != 0 {
		t.Fatalf("%d per-link series left after removing every link", left)
	}
}

// touchEverySeries records what a link records in its life: every direction, every result.
func touchEverySeries(m *metrics, l *link) {
	for _, d := range []ls.Dir{ls.Pull, ls.Push} {
		lv := linkValues(l.cfg.Name, d.String())
		m.applied.WithLabelValues(lv...).Add(3)
		m.pending.WithLabelValues(lv...).Set(1)
		m.lag.WithLabelValues(lv...).Set(2)
		m.deadLetters.WithLabelValues(lv...).Inc()
		m.reconnects.WithLabelValues(l.sourceEndpoint(d)).Inc()
	}
	for _, r := range []string{"started", "completed", "failed"} {
		m.repairs.WithLabelValues(linkValues(l.cfg.Name, r)...).Inc()
	}
	for _, r := range []string{"converged", "diverged", "error"} {
		m.reconciles.WithLabelValues(linkValues(l.cfg.Name, r)...).Inc()
	}
	m.pushLatency.WithLabelValues(l.cfg.RemoteEndpoint).Observe(0.02)
	for _, k := range []dwn.ErrorKind{dwn.Transient, dwn.Permanent, dwn.Unauthorized, dwn.Unsupported} {
		m.countError(l.cfg.RemoteEndpoint, string(k))
	}
}

// countSeries counts the gathered series (a histogram counts its buckets, sum and count).
func countSeries(t *testing.T, reg *prometheus.Registry) (perLink, perEndpoint, total int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			n := 1
			if h := m.GetHistogram(); h != nil {
				n = len(h.GetBucket()) + 3 // buckets, +Inf, _sum, _count
			}
			total += n
			switch {
			case labelValue(m, "name") != "":
				perLink += n
			case labelValue(m, "endpoint") != "":
				perEndpoint += n
			}
		}
	}
	return perLink, perEndpoint, total
}
