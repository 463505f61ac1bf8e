package controllers_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

var (
	statusBenchLinks  = flag.Int("status-bench-links", 10_000, "BenchmarkStatusWritesManyLinks: links")
	statusBenchWindow = flag.Duration("status-bench-window", 30*time.Second, "BenchmarkStatusWritesManyLinks: the busy window (counters moving on every link)")
)

// BenchmarkStatusWritesManyLinks is P5's status-write figure (issue 12) on envtest: the
// reconciler with its defaults and, like the operator, no client-side rate limit, over a fake
// engine holding N links. It measures the status writes the API server receives (counted at
// the transport, the phases polled every 5 s with a List of them all) in three stages: the N links created until every one shows initializing;
// the engine reporting all of them live until every one shows live; then a busy window in
// which every link's counters move four times a second. Baselines: one write per link and
// transition, and the counter budget (CounterWritesPerSecond). BENCHMARKS.md gives the method.
func BenchmarkStatusWritesManyLinks(b *testing.B) {
	n, window := *statusBenchLinks, *statusBenchWindow
	for range b.N {
		ns := newNamespace(b)
		eng := newFakeEngine()
		counting := rest.CopyConfig(cfg)
		writes := &statusWrites{}
		counting.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { writes.base = rt; return writes }
		counting.QPS = -1 // as the operator's config: the API server's fairness, no client throttle
		rec := startReconcilerWith(b, counting, ns, eng, nil)
		secret, did := signerSecret(b, ns, "bulk-signer")
		if err := k8sClient.Create(context.Background(), secret); err != nil {
			b.Fatal(err)
		}
		stage := func(what string, from time.Time, api0 int64, p v1alpha1.Phase) (time.Duration, float64) {
			eventuallyEvery(b, 5*time.Second, 30*time.Minute, "every link "+string(p), countLinksIn(ns, n, p))
			took := time.Since(from)
			api := writes.n.Load() - api0
			rate := float64(api) / took.Seconds()
			fmt.Printf("status-writes links=%d stage=%s seconds=%.1f api_status_writes=%d per_link=%.2f writes_per_s=%.1f\n",
				n, what, took.Seconds(), api, float64(api)/float64(n), rate)
			return took, rate
		}
		created := time.Now()
		createBulkLinks(b, ns, did, "bulk-signer", n)
		fmt.Printf("status-writes links=%d created in %v\n", n, time.Since(created).Round(time.Millisecond))
		_, initRate := stage("created-to-initializing", created, 0, v1alpha1.PhaseInitializing)

		liveAt, api0 := time.Now(), writes.n.Load()
		for _, k := range eng.keys() {
			eng.update(k, "link:status-change", func(s *syncer.LinkStatus) { s.Phase, s.Connectivity, s.NeedsReconcile = "live", "online", false })
		}
		resyncs := rec.EventLossResyncs()
		liveTook, liveRate := stage("engine-live-to-api-live", liveAt, api0, v1alpha1.PhaseLive)
		liveWrites := writes.n.Load() - api0
		fmt.Printf("status-writes links=%d passes over every link after dropped engine events: %d\n", n, rec.EventLossResyncs()-resyncs)

		keys := eng.keys()
		tr0, c0 := rec.StatusWrites()
		api0 = writes.n.Load()
		start := time.Now()
		tick := time.NewTicker(250 * time.Millisecond)
		for time.Since(start) < window {
			<-tick.C
			for _, k := range keys {
				eng.update(k, "checkpoint:pull-advance", func(s *syncer.LinkStatus) { s.Pull.Applied++; s.Pull.LastEventTime = time.Now() })
			}
		}
		tick.Stop()
		busy := time.Since(start)
		tr1, c1 := rec.StatusWrites()
		busyRate := float64(writes.n.Load()-api0) / busy.Seconds()
		fmt.Printf("status-writes links=%d stage=busy seconds=%.1f writes_per_s=%.1f counter_writes=%d transition_writes=%d budget_per_s=%.0f ratio=%.2f\n",
			n, busy.Seconds(), busyRate, c1-c0, tr1-tr0, controllers.DefaultCounterWritesPerSecond, busyRate/controllers.DefaultCounterWritesPerSecond)

		sizes := map[string]int{"links": n, "window_s": int(window.Seconds())}
		emitFigure("seconds_engine_live_to_api_live", "s", liveTook.Seconds(), 60,
			"seconds from the engine's live to every link showing live in the API, over P5's 60 s limit for all live (≤ 1 meets it)", sizes)
		emitFigure("status_writes_per_link_going_live", "writes", float64(liveWrites)/float64(n), 1,
			"status writes per link for one transition, over one (1: nothing written twice)", sizes)
		emitFigure("status_writes_per_second_going_live", "writes/s", liveRate, 0,
			"what the API server took while every link went live (informative: the API server's pace; no baseline)", sizes)
		// The budget is a token bucket: its rate, plus one second's burst over the window.
		budgetBound := controllers.DefaultCounterWritesPerSecond * (1 + 1/busy.Seconds())
		emitFigure("status_writes_per_second_busy", "writes/s", busyRate, math.Round(budgetBound*10)/10,
			"counter-only writes per second while every link's counters move, over the budget's bound: CounterWritesPerSecond plus its one-second burst spread over the window (≤ 1 meets it)", sizes)
		b.ReportMetric(initRate, "init-writes/s")
		b.ReportMetric(liveRate, "live-writes/s")
		b.ReportMetric(liveTook.Seconds(), "engine-live-to-api-live-s")
		b.ReportMetric(busyRate, "busy-writes/s")
		b.ReportMetric(busyRate/controllers.DefaultCounterWritesPerSecond, "busy/budget")
	}
}

// emitFigure prints one figure as a JSON line in hack/bench's format (make bench-e2e keeps
// these lines of the benchmark's output).
func emitFigure(metric, unit string, value, baseline float64, meaning string, sizes map[string]int) {
	ratio := 0.0
	if baseline != 0 {
		ratio = math.Round(value/baseline*100) / 100
	}
	line, _ := json.Marshal(map[string]any{"figure": "P5", "metric": metric, "unit": unit,
		"dwnsync": math.Round(value*10) / 10, "baseline": baseline, "ratio": ratio, "ratio_meaning": meaning, "sizes": sizes})
	fmt.Println(string(line))
}
