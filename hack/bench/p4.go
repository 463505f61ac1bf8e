package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// reconcileDiffs is how many messages one side lacks in P4.
const reconcileDiffs = 10

// reconcileCost is one measured reconcile.
type reconcileCost struct {
	method           string
	trips            int64
	bytes            int64
	seconds          float64
	pulled, expected int
	mark             *transfer.Mark // what the reconcile left for the next
}

// benchReconcile (P4) measures one reconcile after reconcileDiffs writes landed on the remote
// only, over a tenant both sides hold (cfg.p4Messages on in-process enbox and enbox-smt nodes,
// cfg.p4Web5Messages on a real web5 pair): round trips, bytes both ways, seconds. The
// baseline is issue 12's budget: 3 round trips plus a read and a write per difference.
func benchReconcile(ctx context.Context, cfg config) error {
	for _, mode := range []dwntest.Mode{dwntest.ModeEnbox, dwntest.ModeEnboxSMT} {
		c, err := reconcileOnNodes(ctx, mode, cfg.p4Messages)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		emitReconcile(string(mode), c, cfg.p4Messages)
	}
	if cfg.p4Web5Messages > 0 {
		c, err := reconcileOnWeb5(ctx, cfg)
		if err != nil {
			return fmt.Errorf("web5: %w", err)
		}
		emitReconcile("web5", c, cfg.p4Web5Messages)
	}
	return nil
}

func emitReconcile(dialect string, c reconcileCost, messages int) {
	budget := float64(3 + 2*reconcileDiffs)
	sizes := map[string]int{"messages": messages, "differences": reconcileDiffs, "pulled": c.pulled}
	logf("P4 %s: %s, %d trips, %d bytes, %.2f s, pulled %d of %d", dialect, c.method, c.trips, c.bytes, c.seconds, c.pulled, c.expected)
	emit(figure{Figure: "P4", Metric: "reconcile_round_trips_" + dialect, Unit: "requests", Dwnsync: float64(c.trips), Baseline: budget,
		Ratio: round(float64(c.trips)/budget, 2), Meaning: "dwnsync/budget: requests of one reconcile over 3 + a read and a write per difference (≤ 1 meets it; " + c.method + ")", Sizes: sizes})
	emit(figure{Figure: "P4", Metric: "reconcile_bytes_" + dialect, Unit: "bytes", Dwnsync: float64(c.bytes), Baseline: float64(messages),
		Ratio: round(float64(c.bytes)/float64(messages), 1), Meaning: "ratio = bytes both ways per message the tenant holds (baseline = that message count; the issue sets no byte budget)", Sizes: sizes})
	emit(figure{Figure: "P4", Metric: "reconcile_seconds_" + dialect, Unit: "s", Dwnsync: round(c.seconds, 3), Baseline: 0,
		Ratio: 0, Meaning: "wall time of the reconcile (no baseline: informative)", Sizes: sizes})
}

// reconcileOnNodes seeds two nodes of mode with the same messages, writes the differences on
// the remote only and measures one reconcile of the default Copier.
func reconcileOnNodes(ctx context.Context, mode dwntest.Mode, messages int) (reconcileCost, error) {
	nodes, closeNodes, err := launchNodes(2, mode)
	if err != nil {
		return reconcileCost{}, err
	}
	defer closeNodes()
	id, err := dwntest.NewIdentity()
	if err != nil {
		return reconcileCost{}, err
	}
	start := time.Now()
	if err := seedNode(id, messages, nodes...); err != nil {
		return reconcileCost{}, err
	}
	logf("P4 %s: seeded %d messages on both nodes in %v", mode, messages, time.Since(start))
	dia := dwn.DialectEnbox
	if mode == dwntest.ModeEnboxSMT {
		dia = dwn.DialectEnboxSMT
	}
	open := func() (*dialect.Pool, *meter, []dwn.Tenant, error) {
		pool, m := newMeteredPool()
		var tenants []dwn.Tenant
		for _, nd := range nodes {
			c, err := pool.Get(ctx, nd.URL(), dia)
			if err != nil {
				pool.Close()
				return nil, nil, nil, err
			}
			tenants = append(tenants, c.Tenant(id.DID, id.Signer))
		}
		return pool, m, tenants, nil
	}
	var since *transfer.Mark
	if mode == dwntest.ModeEnbox {
		// A link's reconcile after its first: the bootstrap (here one message to copy, the
		// full listing diff) leaves the mark its later reconciles start from (D25). Its own
		// pool, so that the measured reconcile's first contacts still count.
		if err := seedNode(id, 1, nodes[1]); err != nil {
			return reconcileCost{}, err
		}
		pool, m, tenants, err := open()
		if err != nil {
			return reconcileCost{}, err
		}
		first, err := measureReconcile(ctx, m, tenants[0], tenants[1], nil)
		pool.Close()
		if err != nil {
			return reconcileCost{}, err
		}
		logf("P4 %s: the link's first reconcile (no mark): %s, %d trips, %d bytes, %.2f s", mode, first.method, first.trips, first.bytes, first.seconds)
		if since = first.mark; since == nil {
			return reconcileCost{}, fmt.Errorf("the first reconcile left no mark")
		}
	}
	if err := seedNode(id, reconcileDiffs, nodes[1]); err != nil {
		return reconcileCost{}, err
	}
	pool, m, tenants, err := open()
	if err != nil {
		return reconcileCost{}, err
	}
	defer pool.Close()
	return measureReconcile(ctx, m, tenants[0], tenants[1], since)
}

func measureReconcile(ctx context.Context, m *meter, local, remote dwn.Tenant, since *transfer.Mark) (reconcileCost, error) {
	before := m.snapshot()
	start := time.Now()
	var c transfer.Copier
	res, err := c.ReconcileSince(ctx, local, remote, dwn.Scope{}, linkstate.Both, since)
	if err != nil {
		return reconcileCost{}, err
	}
	if res.Fallback != "" {
		logf("P4: the reconcile listed the tenant: %s", res.Fallback)
	}
	took := time.Since(start)
	after := m.snapshot()
	return reconcileCost{method: res.Method, trips: after[0] - before[0], bytes: after[1] - before[1] + after[2] - before[2],
		seconds: took.Seconds(), pulled: res.Pulled, expected: reconcileDiffs, mark: res.Mark}, nil
}

// reconcileOnWeb5 is P4 on a real web5 pair: A seeded, B a byte copy of A's store, then the
// differences written on B.
func reconcileOnWeb5(ctx context.Context, cfg config) (reconcileCost, error) {
	dir, err := engineDir(cfg, "p4")
	if err != nil {
		return reconcileCost{}, err
	}
	stores, err := seedPair(ctx, dir+"/seed", cfg.p4Web5Messages, 0)
	if err != nil {
		return reconcileCost{}, err
	}
	twins := seededStores{Identity: stores.Identity, dir: stores.dir}
	a, b := dir+"/run/a", dir+"/run/b"
	for _, to := range []string{a, b} {
		if err := copyDir(twins.dirA(), to); err != nil {
			return reconcileCost{}, err
		}
	}
	p, err := startPair(ctx, a, b)
	if err != nil {
		return reconcileCost{}, err
	}
	defer p.stop()
	client, err := dwnserver.NewClientProcess(ctx)
	if err != nil {
		return reconcileCost{}, err
	}
	defer client.Close()
	for i := range reconcileDiffs {
		if _, err := client.Write(p.b.URL, stores.Identity, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: fmt.Appendf(nil, `{"p4":%d}`, i)}); err != nil {
			return reconcileCost{}, err
		}
	}
	pool, m := newMeteredPool()
	defer pool.Close()
	tenants, _, err := openTenants(ctx, pool, stores.Identity, p.a.URL, p.b.URL)
	if err != nil {
		return reconcileCost{}, err
	}
	return measureReconcile(ctx, m, tenants[0], tenants[1], nil)
}
