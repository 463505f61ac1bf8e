package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// statusWrites counts the status writes the API server receives, independently of the
// reconciler's own bookkeeping.
type statusWrites struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (s *statusWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/replicationlinks/") && strings.HasSuffix(r.URL.Path, "/status") {
		s.n.Add(1)
	}
	return s.base.RoundTrip(r)
}

// 1,000 busy links (every link's counters change 4 times a second, each change an engine
// event) must not turn into a write storm: phase changes are written at once, counters at
// most every few seconds per link and CounterWritesPerSecond for all links together.
// A bounded test: 1,000 links, a 10 s busy window, then it stops.
func TestStatusWriteRateThousandLinks(t *testing.T) {
	const (
		links       = 1000
		budget      = 100.0 // counter-only writes per second, all links
		minInterval = 2 * time.Second
		window      = 10 * time.Second
	)
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	counting := rest.CopyConfig(cfg)
	writes := &statusWrites{}
	counting.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { writes.base = rt; return writes }
	counting.QPS, counting.Burst = 1000, 2000 // measure our coalescing, not client-go's throttle
	rec := startReconcilerWith(t, counting, ns, eng, func(r *controllers.ReplicationLinkReconciler) {
		r.MinCounterInterval, r.CounterWritesPerSecond, r.MaxConcurrentReconciles = minInterval, budget, 8
	})

	secret, did := signerSecret(t, ns, "bulk-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	createBulkLinks(t, ns, did, "bulk-signer", links)
	t.Logf("created %d links in %v", links, time.Since(created).Round(time.Millisecond))
	countPhase := func(p v1alpha1.Phase) func() (bool, string) { return countLinksIn(ns, links, p) }
	// Generous bounds: 1000 status writes through an envtest API server take ~1.5 min on a
	// loaded 2-core machine, and more than 3 min under test-stress.
	eventuallyEvery(t, time.Second, 10*time.Minute, "every link initializing", countPhase(v1alpha1.PhaseInitializing))
	t.Logf("all %d initializing after %v", links, time.Since(created).Round(time.Millisecond))

	keys := eng.keys()
	liveAt := time.Now()
	for _, k := range keys {
		eng.update(k, "link:status-change", func(s *syncer.LinkStatus) { s.Phase, s.Connectivity, s.NeedsReconcile = "live", "online", false })
	}
	eventuallyEvery(t, time.Second, 10*time.Minute, "every link live", countPhase(v1alpha1.PhaseLive))
	t.Logf("all %d live %v after the engine said so", links, time.Since(liveAt).Round(time.Millisecond))

	// The busy window: counters move on every link four times a second.
	tr0, c0 := rec.StatusWrites()
	api0 := writes.n.Load()
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	events := 0
	for time.Since(start) < window {
		<-tick.C
		for _, k := range keys {
			eng.update(k, "checkpoint:pull-advance", func(s *syncer.LinkStatus) { s.Pull.Applied++; s.Pull.LastEventTime = time.Now() })
			events++
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	tr1, c1 := rec.StatusWrites()
	api := writes.n.Load() - api0
	rate := float64(api) / elapsed.Seconds()
	t.Logf("busy window %v: %d engine events (%.0f/s) → %d status writes at the API server (%.1f/s; %d counter-only, %d transitions); budget %.0f/s, per-link interval max(%v, links/budget = %v)",
		elapsed.Round(time.Millisecond), events, float64(events)/elapsed.Seconds(), api, rate, c1-c0, tr1-tr0, budget, minInterval, time.Duration(links/budget*float64(time.Second)))

	if tr1 != tr0 {
		t.Errorf("%d transition writes while only counters changed", tr1-tr0)
	}
	if limit := int64(budget*elapsed.Seconds()) + int64(budget) + 8; api > limit {
		t.Fatalf("%d status writes in %v exceed the budget bound %d", api, elapsed, limit)
	}
	if c1-c0 == 0 {
		t.Fatal("no counter was written at all during the busy window")
	}
}

// createBulkLinks creates n links named bulk-NNNN in ns for tenant did, 16 at a time, each to a
// remote endpoint of its own.
func createBulkLinks(t testing.TB, ns, did, secret string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l := newLink(ns, fmt.Sprintf("bulk-%05d", i), did, fmt.Sprintf("https://remote-%05d.dwn.test", i), secret)
			if err := k8sClient.Create(context.Background(), l); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// countLinksIn is a condition for eventually: all n links of ns show phase p in the API.
func countLinksIn(ns string, n int, p v1alpha1.Phase) func() (bool, string) {
	return func() (bool, string) {
		var list v1alpha1.ReplicationLinkList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		got := 0
		for _, l := range list.Items {
			if l.Status.Phase == p {
				got++
			}
		}
		return got == n, fmt.Sprintf("%d of %d %s", got, n, p)
	}
}

// When the engine drops events (its channel was full: many links changing at once), the
// status still catches up: the lost-events signal reconciles every link again, so a link whose
// only event was dropped does not keep showing its old phase.
func TestStatusCatchesUpAfterTheEngineDroppedEvents(t *testing.T) {
	const links = 200
	ns := newNamespace(t)
	eng := newFakeEngineBuffered(8) // 200 transitions at once cannot fit
	rec := startReconciler(t, ns, eng, nil)
	secret, did := signerSecret(t, ns, "bulk-signer")
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	createBulkLinks(t, ns, did, "bulk-signer", links)
	eventuallyEvery(t, time.Second, 10*time.Minute, "every link initializing", countLinksIn(ns, links, v1alpha1.PhaseInitializing))
	resyncs := rec.EventLossResyncs()
	for _, k := range eng.keys() {
		eng.update(k, "link:status-change", func(s *syncer.LinkStatus) { s.Phase, s.Connectivity, s.NeedsReconcile = "live", "online", false })
	}
	eventuallyEvery(t, time.Second, 10*time.Minute, "every link live although most of their events were dropped", countLinksIn(ns, links, v1alpha1.PhaseLive))
	if rec.EventLossResyncs() == resyncs {
		t.Fatal("every link went live without a resync: no event was dropped, so the test proved nothing")
	}
}
