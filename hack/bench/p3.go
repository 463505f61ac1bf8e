package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// idleBudgetPerLinkMinute is issue 12's limit for an idle link: nothing beyond keepalive, and
// at most one verify per 5 minutes. A verify asks each of the two servers for its digest (a
// fingerprint, an SMT root or a listing): two requests, one on each.
const (
	requestsPerVerify       = 2
	idleBudgetPerLinkMinute = requestsPerVerify / 5.0
)

// benchIdle (P3) counts what idle live links cost the servers: cfg.p3Links links (one tenant
// each) between two in-process enbox nodes, and one link between a real web5 pair, over an
// idle window of cfg.p3Window once every link is live.
func benchIdle(ctx context.Context, cfg config) error {
	nodes, closeNodes, err := launchNodes(2, dwntest.ModeEnbox)
	if err != nil {
		return err
	}
	defer closeNodes()
	dir, err := engineDir(cfg, "p3")
	if err != nil {
		return err
	}
	eng, err := startEngine(ctx, dir)
	if err != nil {
		return err
	}
	defer eng.stop()
	var keys []string
	for i := range cfg.p3Links {
		id, err := dwntest.NewIdentity()
		if err != nil {
			return err
		}
		key, err := eng.Apply(nodeLink(fmt.Sprintf("bench/idle-%d", i), id, nodes[0], nodes[1]))
		if err != nil {
			return err
		}
		keys = append(keys, key)
	}
	if err := eng.allLive(ctx, keys); err != nil {
		return err
	}
	before := mergedCounts(nodes)
	perLink, err := idleWindow(ctx, cfg.p3Window, func() int { r, _ := nodeRequests(nodes); return r }, len(keys))
	if err != nil {
		return err
	}
	inWindow := map[string]int{}
	for k, v := range mergedCounts(nodes) {
		if d := v - before[k]; d != 0 {
			inWindow[k] = d
		}
	}
	logf("P3 dwntest: what the nodes received in the window, by kind (a digest is a MessagesQuery): %v", inWindow)
	emitIdle("idle_requests_per_link_minute_enbox", perLink, map[string]int{"links": len(keys), "window_s": int(cfg.p3Window.Seconds())})

	web5, err := idleWeb5(ctx, cfg)
	if err != nil {
		return fmt.Errorf("web5 pair: %w", err)
	}
	emitIdle("idle_requests_per_link_minute_web5", web5, map[string]int{"links": 1, "window_s": int(cfg.p3Window.Seconds())})
	return nil
}

func emitIdle(metric string, perLink float64, sizes map[string]int) {
	emit(figure{Figure: "P3", Metric: metric, Unit: "requests/link/min", Dwnsync: round(perLink, 3), Baseline: idleBudgetPerLinkMinute,
		Ratio:   round(perLink/idleBudgetPerLinkMinute, 3),
		Meaning: "dwnsync/limit: requests an idle live link sends beyond keepalive, over the limit of one verify (a digest of each server: 2 requests) per 5 minutes (≤ 1 meets it)", Sizes: sizes})
}

// idleWindow waits out window and returns the requests counted in it per link and minute.
func idleWindow(ctx context.Context, window time.Duration, count func() int, links int) (float64, error) {
	before := count()
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	n := count() - before
	logf("P3: %d requests in %v over %d links", n, window, links)
	return float64(n) / float64(links) / window.Minutes(), nil
}

// idleWeb5 is P3 for one link between two real servers: the engine's own requests, counted
// by its HTTP transport.
func idleWeb5(ctx context.Context, cfg config) (float64, error) {
	dir, err := engineDir(cfg, "p3")
	if err != nil {
		return 0, err
	}
	p, err := startPair(ctx, dir+"/a", dir+"/b")
	if err != nil {
		return 0, err
	}
	defer p.stop()
	client, err := dwnserver.NewClientProcess(ctx)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	id, err := client.NewTenant()
	if err != nil {
		return 0, err
	}
	if _, err := client.Seed(p.a.URL, id, dwnserver.SeedSpec{Records: 1, Prefix: "a"}); err != nil {
		return 0, err
	}
	pool, m := newMeteredPool()
	eng, key, err := startLinkedEngineWith(ctx, dir+"/engine", p, id, pool)
	if err != nil {
		return 0, err
	}
	defer eng.stop()
	if err := eng.waitLive(ctx, key); err != nil {
		return 0, err
	}
	return idleWindow(ctx, cfg.p3Window, func() int { return int(m.requests.Load()) }, 1)
}
