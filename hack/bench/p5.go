package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// Issue 12's limits for P5.
const (
	manyLinksLiveLimit = 60 * time.Second
	manyLinksRSSLimit  = 512 << 20
)

// benchManyLinks (P5) applies cfg.p5Links links (one tenant each) from one local enbox node to
// cfg.p5Endpoints remote ones, round robin, and measures the time until all are live, the RSS
// and goroutines of this process, and the WebSockets the nodes hold (one per endpoint is the
// target). The nodes run in this process: the RSS and goroutines include theirs (the figures
// are upper bounds of the engine's).
func benchManyLinks(ctx context.Context, cfg config) error {
	nodes, closeNodes, err := launchNodes(cfg.p5Endpoints+1, dwntest.ModeEnbox)
	if err != nil {
		return err
	}
	defer closeNodes()
	local, remotes := nodes[0], nodes[1:]
	ids := make([]*dwntest.Identity, cfg.p5Links)
	for i := range ids {
		if ids[i], err = dwntest.NewIdentity(); err != nil {
			return err
		}
	}
	dir, err := engineDir(cfg, "p5")
	if err != nil {
		return err
	}
	goroutinesBefore := runtime.NumGoroutine()
	eng, err := startEngine(ctx, dir)
	if err != nil {
		return err
	}
	defer eng.stop()
	start := time.Now()
	keys := make([]string, len(ids))
	for i, id := range ids {
		if keys[i], err = eng.Apply(nodeLink(fmt.Sprintf("bench/many-%d", i), id, local, remotes[i%len(remotes)])); err != nil {
			return err
		}
	}
	if err := eng.allLive(ctx, keys); err != nil {
		return err
	}
	took := time.Since(start)
	rss, goroutines, sockets := rssBytes(), runtime.NumGoroutine()-goroutinesBefore, webSockets(nodes)
	logf("P5: %d links live in %v; RSS %.1f MiB, goroutines +%d, sockets %d", len(keys), took, mib(rss), goroutines, sockets)
	sizes := map[string]int{"links": len(keys), "endpoints": len(nodes)}
	emit(figure{Figure: "P5", Metric: "seconds_until_all_live", Unit: "s", Dwnsync: round(took.Seconds(), 1), Baseline: manyLinksLiveLimit.Seconds(),
		Ratio: round(took.Seconds()/manyLinksLiveLimit.Seconds(), 2), Meaning: "dwnsync/limit (≤ 1 meets it)", Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "rss_mib", Unit: "MiB", Dwnsync: mib(rss), Baseline: mib(manyLinksRSSLimit),
		Ratio: round(float64(rss)/manyLinksRSSLimit, 2), Meaning: "dwnsync/limit (≤ 1 meets it); includes the in-process nodes", Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "goroutines", Unit: "goroutines", Dwnsync: float64(goroutines), Baseline: float64(len(keys)),
		Ratio: round(float64(goroutines)/float64(len(keys)), 2), Meaning: "goroutines added by the engine and the nodes' connections, per link", Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "websockets", Unit: "sockets", Dwnsync: float64(sockets), Baseline: float64(len(nodes)),
		Ratio: round(float64(sockets)/float64(len(nodes)), 2), Meaning: "dwnsync/endpoints: WebSockets the nodes hold, over one per endpoint (1 meets it)", Sizes: sizes})
	return nil
}
