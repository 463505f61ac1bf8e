package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/engineruntime"
)

var (
	p5Profile     = flag.String("p5-profile", "", "P5: write the CPU profile from the first link to all live (<prefix>.cpu), then heap and goroutine profiles (<prefix>.heap, <prefix>.goroutine)")
	p5InProcessNd = flag.Bool("p5-nodes-in-process", false, "P5: run the dwntest nodes in the bench's process (the figures then include theirs), not in a child process")
	p5PodLimitMiB = flag.Int("p5-pod-memory-limit", 512, "P5: the pod memory limit (MiB) to run under: the Go memory limit is set from it as the operator sets it from its container's (0: none; GOMEMLIMIT, when set, wins)")
)

// Issue 12's limits for P5.
const (
	manyLinksLiveLimit = 60 * time.Second
	manyLinksRSSLimit  = 512 << 20
)

// benchManyLinks (P5) applies cfg.p5Links links (one tenant each) from one local enbox node to
// cfg.p5Endpoints remote ones, round robin, and measures the time until all are live, the RSS
// and goroutines of this process, and the WebSockets the nodes hold (one per endpoint is the
// target). The nodes run in a child process (nodeschild.go), so the RSS and goroutines are the
// engine's; with -p5-nodes-in-process they run here and the figures include theirs.
func benchManyLinks(ctx context.Context, cfg config) error {
	urls, sockets, stopNodes, err := manyLinksNodes(ctx, cfg.p5Endpoints+1)
	if err != nil {
		return err
	}
	defer stopNodes()
	local, remotes := urls[0], urls[1:]
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
	memLimit := "none"
	if *p5PodLimitMiB > 0 {
		memLimit = engineruntime.SetMemoryLimit(memlimit.Limit(uint64(*p5PodLimitMiB) << 20))
	}
	logf("P5: Go memory limit %s (as the operator sets it in a pod limited to %d MiB)", memLimit, *p5PodLimitMiB)
	goroutinesBefore := runtime.NumGoroutine()
	eng, err := startEngine(ctx, dir)
	if err != nil {
		return err
	}
	defer eng.stop()
	stopCPUProfile := func() {}
	if *p5Profile != "" {
		if stopCPUProfile, err = startCPUProfile(*p5Profile + ".cpu"); err != nil {
			return err
		}
		defer stopCPUProfile() // a run that fails is profiled up to its end
	}
	cpuBefore := cpuTime()
	start := time.Now()
	keys := make([]string, len(ids))
	for i, id := range ids {
		if keys[i], err = eng.Apply(urlLink(fmt.Sprintf("bench/many-%d", i), id.DID, id.Signer, local, remotes[i%len(remotes)])); err != nil {
			return err
		}
	}
	if err := eng.allLive(ctx, keys); err != nil {
		return err
	}
	took, cpu := time.Since(start), cpuTime()-cpuBefore
	stopCPUProfile()
	rss, hwm, goroutines := rssBytes(), peakRSS(), runtime.NumGoroutine()-goroutinesBefore
	if *p5Profile != "" {
		if err := writeProfiles(*p5Profile); err != nil {
			return err
		}
	}
	socketCount, err := sockets()
	if err != nil {
		return err
	}
	where := "the nodes in a child process: the engine's own"
	if *p5InProcessNd {
		where = "includes the in-process nodes"
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms) // before a GC: what the RSS above held
	logf("P5: RSS %.1f MiB (peak %.1f MiB): Go heap in use %.1f MiB, heap idle not returned %.1f MiB, goroutine stacks %.1f MiB, other runtime %.1f MiB",
		mib(rss), mib(hwm), mib(int64(ms.HeapInuse)), mib(int64(ms.HeapIdle-ms.HeapReleased)), mib(int64(ms.StackInuse)),
		mib(int64(ms.MSpanInuse+ms.MCacheInuse+ms.BuckHashSys+ms.GCSys+ms.OtherSys)))
	runtime.GC()
	runtime.ReadMemStats(&ms)
	logf("P5: Go heap live after a GC %.1f MiB", mib(int64(ms.HeapAlloc)))
	logf("P5: %d links live in %v (%v of CPU); RSS %.1f MiB, goroutines +%d, sockets %d (%s)", len(keys), took, cpu, mib(rss), goroutines, socketCount, where)
	sizes := map[string]int{"links": len(keys), "endpoints": len(urls)}
	emit(figure{Figure: "P5", Metric: "seconds_until_all_live", Unit: "s", Dwnsync: round(took.Seconds(), 1), Baseline: manyLinksLiveLimit.Seconds(),
		Ratio: round(took.Seconds()/manyLinksLiveLimit.Seconds(), 2), Meaning: "dwnsync/limit (≤ 1 meets it)", Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "cpu_seconds_until_all_live", Unit: "s", Dwnsync: round(cpu.Seconds(), 1), Baseline: manyLinksLiveLimit.Seconds(),
		Ratio: round(cpu.Seconds()/manyLinksLiveLimit.Seconds(), 2), Meaning: "CPU time (user+system) of this process until all live, over the wall-time limit: what the figure would take on one idle core; " + where, Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "rss_mib", Unit: "MiB", Dwnsync: mib(rss), Baseline: mib(manyLinksRSSLimit),
		Ratio: round(float64(rss)/manyLinksRSSLimit, 2), Meaning: "dwnsync/limit (≤ 1 meets it); " + where, Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "peak_rss_mib", Unit: "MiB", Dwnsync: mib(hwm), Baseline: mib(manyLinksRSSLimit),
		Ratio: round(float64(hwm)/manyLinksRSSLimit, 2), Meaning: "dwnsync/limit (≤ 1 meets it): the most this process held from its start; Go memory limit " + memLimit + "; " + where, Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "goroutines", Unit: "goroutines", Dwnsync: float64(goroutines), Baseline: float64(len(keys)),
		Ratio: round(float64(goroutines)/float64(len(keys)), 2), Meaning: "goroutines added, per link; " + where, Sizes: sizes})
	emit(figure{Figure: "P5", Metric: "websockets", Unit: "sockets", Dwnsync: float64(socketCount), Baseline: float64(len(urls)),
		Ratio: round(float64(socketCount)/float64(len(urls)), 2), Meaning: "dwnsync/endpoints: WebSockets the nodes hold, over one per endpoint (1 meets it)", Sizes: sizes})
	return nil
}

// manyLinksNodes starts n enbox nodes (in a child process unless -p5-nodes-in-process) and
// returns their URLs and how to count the WebSockets they hold.
func manyLinksNodes(ctx context.Context, n int) ([]string, func() (int, error), func(), error) {
	if *p5InProcessNd {
		nodes, closeNodes, err := launchNodes(n, dwntest.ModeEnbox)
		if err != nil {
			return nil, nil, nil, err
		}
		urls := make([]string, len(nodes))
		for i, nd := range nodes {
			urls[i] = nd.URL()
		}
		return urls, func() (int, error) { return webSockets(nodes), nil }, closeNodes, nil
	}
	child, err := startNodesChild(ctx, n, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	sockets := func() (int, error) {
		c, err := child.counts()
		return c.WebSockets, err
	}
	return child.URLs, sockets, child.stop, nil
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeProfiles writes the heap (after a GC) and goroutine profiles of this process.
func writeProfiles(prefix string) error {
	runtime.GC()
	for _, name := range []string{"heap", "goroutine"} {
		f, err := os.Create(prefix + "." + name)
		if err != nil {
			return err
		}
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("-p5-profile: %w", err)
		}
	}
	return nil
}

// startCPUProfile profiles the CPU into path until the returned stop.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-p5-profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
