package syncer

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwndialect "github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// The engine's own numbers; the machine's are checked by linkstate's TestDefaultTimingMatchesSpec.
func TestEngineTimingMatchesSpec(t *testing.T) {
	if DefaultPollInterval != 2*time.Minute || MaxBackoffMultiplier != 4 {
		t.Errorf("poll interval %v, backoff multiplier %d; want 2m and 4", DefaultPollInterval, MaxBackoffMultiplier)
	}
}

func TestApplySameKeyOtherLocalEndpointRefused(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 1, 1, engineOpts{})
	other := dwntest.Start(t, dwntest.Options{})
	_, err := p.te.Apply(LinkConfig{Name: "ns/second", Tenant: p.id.DID, LocalEndpoint: other.URL(), RemoteEndpoint: p.remote.URL(),
		LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer})
	if err == nil || !strings.Contains(err.Error(), "ns/second") || !strings.Contains(err.Error(), p.local.URL()) {
		t.Fatalf("want an error naming the link and the other local endpoint, got %v", err)
	}
}

func TestApplyValidation(t *testing.T) {
	te := startEngine(t, engineOpts{})
	id := dwntest.MustIdentity(t)
	for _, c := range []struct {
		cfg  LinkConfig
		want string
	}{
		{LinkConfig{Name: "x", LocalEndpoint: "http://a", RemoteEndpoint: "http://b", LocalSigner: id.Signer, RemoteSigner: id.Signer}, "tenant"},
		{LinkConfig{Name: "x", Tenant: id.DID, LocalEndpoint: "http://a", RemoteEndpoint: "http://a/", LocalSigner: id.Signer, RemoteSigner: id.Signer}, "local endpoint"},
		{LinkConfig{Name: "x", Tenant: id.DID, LocalEndpoint: "http://a", RemoteEndpoint: "http://b^c", LocalSigner: id.Signer, RemoteSigner: id.Signer}, "^"},
		{LinkConfig{Name: "x", Tenant: id.DID, LocalEndpoint: "http://a", RemoteEndpoint: "http://b", Direction: "sideways", LocalSigner: id.Signer, RemoteSigner: id.Signer}, "direction"},
		{LinkConfig{Name: "x", Tenant: id.DID, LocalEndpoint: "http://a", RemoteEndpoint: "http://b"}, "signer"},
	} {
		if _, err := te.Apply(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to mention %q", c.cfg, err, c.want)
		}
	}
}

// A changed config restarts the link (one supervisor, one subscription per feed:
// docs/engine-behaviour.md#e15) and keeps its checkpoints; an unchanged one is a no-op.
func TestE15_ApplyChangeRestartsOneSupervisorKeepingCheckpoints(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 20, 20, engineOpts{})
	p.waitLiveConverged(t)
	p.write(t, p.remote, 5, "before-change")
	eventually(t, 10*time.Second, "pulled", func() bool { return p.converged() })
	eventually(t, 10*time.Second, "both checkpoints at their feed's head", func() bool {
		rec, _, _ := p.te.store.Get(p.key)
		return rec.Pull.Contiguous != nil && rec.Push.Contiguous != nil &&
			rec.Pull.Contiguous.Position == fmt.Sprint(p.remote.Head(p.id.DID)) &&
			rec.Push.Contiguous.Position == fmt.Sprint(p.local.Head(p.id.DID))
	})
	before, _ := p.te.Snapshot(p.key)
	events := len(p.te.eventTypes(p.key))
	cfg := LinkConfig{Name: "ns/" + string(dwntest.ModeEnbox), Tenant: p.id.DID, LocalEndpoint: p.local.URL(), RemoteEndpoint: p.remote.URL(),
		LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer}
	if _, err := p.te.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if n := len(p.te.eventTypes(p.key)); n != events {
		t.Fatalf("unchanged Apply restarted the link: %v", p.te.eventTypes(p.key)[events:])
	}
	applies := p.local.Count("dwn.applyReplicatedMessage")
	cfg.Mode, cfg.Dialect = ls.ModeLive, "enbox" // pinning the dialect is a change
	if _, err := p.te.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "live again", func() bool {
		return len(p.te.eventTypes(p.key)) > events && p.phase() == "live"
	})
	after, _ := p.te.Snapshot(p.key)
	if after.Pull.Checkpoint == "" || after.Pull.Checkpoint != before.Pull.Checkpoint {
		t.Fatalf("pull checkpoint %q → %q", before.Pull.Checkpoint, after.Pull.Checkpoint)
	}
	eventually(t, 10*time.Second, "one subscription per feed", func() bool {
		return p.remote.Subscriptions() == 1 && p.local.Subscriptions() == 1
	})
	if got := p.local.Count("dwn.applyReplicatedMessage") - applies; got != 0 {
		t.Fatalf("restart re-applied %d messages", got)
	}
}

func TestSuspendResumeAndRemove(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 3, 3, engineOpts{})
	p.waitLiveConverged(t)
	cfg := LinkConfig{Name: "ns/" + string(dwntest.ModeEnbox), Tenant: p.id.DID, LocalEndpoint: p.local.URL(), RemoteEndpoint: p.remote.URL(),
		LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer, Suspend: true}
	if _, err := p.te.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "paused with no subscriptions", func() bool {
		return p.phase() == "paused" && p.remote.Subscriptions() == 0 && p.local.Subscriptions() == 0
	})
	w := p.write(t, p.remote, 1, "while-paused")
	cfg.Suspend = false
	if _, err := p.te.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "live and caught up", func() bool {
		return p.phase() == "live" && contains(p.local.CIDs(p.id.DID), w[0])
	})
	if err := p.te.Remove(p.key); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.te.Snapshot(p.key); ok {
		t.Fatal("removed link still has a snapshot")
	}
	if _, ok, _ := p.te.store.Get(p.key); ok {
		t.Fatal("ledger record survived Remove")
	}
	eventually(t, 10*time.Second, "subscriptions closed", func() bool {
		return p.remote.Subscriptions() == 0 && p.local.Subscriptions() == 0
	})
}

// Poll mode: links to one endpoint form a group; when the endpoint is down the first failure
// skips the rest of the group; when it is back every link converges.
func TestPollModeGroups(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	te := startEngine(t, engineOpts{})
	var ps []*pair
	for i := 0; i < 2; i++ {
		p := &pair{local: local, remote: remote, id: dwntest.MustIdentity(t), te: te}
		p.write(t, local, 3, "l")
		p.write(t, remote, 3, "r")
		key, err := te.Apply(LinkConfig{Name: "poll", Tenant: p.id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
			Mode: ls.ModePoll, PollInterval: 200 * time.Millisecond, LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer})
		if err != nil {
			t.Fatal(err)
		}
		p.key = key
		ps = append(ps, p)
	}
	for _, p := range ps {
		eventually(t, 20*time.Second, "poll link converged", func() bool { return p.phase() == "live" && p.converged() })
	}
	if remote.Subscriptions() != 0 {
		t.Fatalf("poll links opened %d subscriptions", remote.Subscriptions())
	}
	remote.SetRefusing(true)
	eventually(t, 20*time.Second, "one link offline", func() bool {
		a, _ := te.Snapshot(ps[0].key)
		b, _ := te.Snapshot(ps[1].key)
		return a.Connectivity == "offline" || b.Connectivity == "offline"
	})
	// Whichever is polled first fails and the other is skipped, so exactly one goes offline.
	a, _ := te.Snapshot(ps[0].key)
	b, _ := te.Snapshot(ps[1].key)
	if (a.Connectivity == "offline") == (b.Connectivity == "offline") {
		t.Fatalf("connectivity %s / %s: the rest of the group was not skipped", a.Connectivity, b.Connectivity)
	}
	remote.SetRefusing(false)
	for _, p := range ps {
		p.write(t, remote, 1, "after")
	}
	for _, p := range ps {
		eventually(t, 20*time.Second, "converged after the outage", func() bool {
			s, _ := te.Snapshot(p.key)
			return s.Connectivity == "online" && p.converged()
		})
	}
}

func TestMetricsExported(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 4, 4, engineOpts{})
	p.waitLiveConverged(t)
	p.write(t, p.remote, 2, "m")
	eventually(t, 10*time.Second, "pulled", func() bool { return p.converged() })
	mfs, err := p.te.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	for _, name := range []string{"dwnsync_link_phase", "dwnsync_messages_applied_total", "dwnsync_pending_deliveries",
		"dwnsync_reconciles_total", "dwnsync_events_dropped_total", "dwnsync_last_converged_timestamp_seconds",
		"dwnsync_build_info", "dwnsync_checkpoint_behind_seconds", "dwnsync_progress_applied_messages"} {
		if got[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	live := 0.0
	for _, m := range got["dwnsync_link_phase"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" && l.GetValue() == "live" {
				live = m.GetGauge().GetValue()
			}
		}
	}
	if live != 1 {
		t.Fatalf("dwnsync_link_phase{phase=live} = %v", live)
	}
	applied := 0.0
	for _, m := range got["dwnsync_messages_applied_total"].GetMetric() {
		applied += m.GetCounter().GetValue()
	}
	if applied < 8 {
		t.Fatalf("applied counter %v, want ≥ 8", applied)
	}
	// enbox numbers feed positions per tenant, so the checkpoint lag is measurable: present for
	// the pull feed once it delivered, and back to 0 once its checkpoint is durable.
	eventually(t, 10*time.Second, "pull checkpoint lag back to 0", func() bool {
		mfs, err := p.te.reg.Gather()
		if err != nil {
			return false
		}
		for _, mf := range mfs {
			if mf.GetName() != "dwnsync_checkpoint_lag_positions" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "direction" && l.GetValue() == "pull" {
						return m.GetGauge().GetValue() == 0
					}
				}
			}
		}
		return false
	})
	// A live, converged link's own series: what TestMetricsSeriesAt10kLinks multiplies.
	own := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labelValue(m, "name") == "enbox" {
				own++
			}
		}
	}
	t.Logf("a live enbox link has %d series of its own", own)
	if own > MaxSeriesPerLink {
		t.Errorf("%d series for one link, more than MaxSeriesPerLink %d", own, MaxSeriesPerLink)
	}
	// Labels are namespace and name, never a joined link label.
	for _, m := range got["dwnsync_messages_applied_total"].GetMetric() {
		if labelValue(m, "namespace") != "ns" || labelValue(m, "name") != "enbox" {
			t.Fatalf("applied series labels %v, want namespace=ns name=enbox", m.GetLabel())
		}
	}

	// Removing the link deletes every one of its series.
	if err := p.te.Remove(p.key); err != nil {
		t.Fatal(err)
	}
	mfs, err = p.te.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); v == "enbox" || v == "ns/enbox" {
					t.Errorf("series of the removed link survives: %s%v", mf.GetName(), m.GetLabel())
				}
			}
		}
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Teardown: removing a link while its push feed is busy leaves no record behind, no
// subscription open, no goroutine of the engine's running, and no request ever sent again; late
// results of its workers change nothing.
func TestRemoveDuringActivityLeavesNothing(t *testing.T) {
	p := newPairNoLink(t, 2, 2)
	baseline := engineGoroutines()
	p.apply(t, LinkConfig{Name: "ns/remove"})
	p.waitLiveConverged(t)
	p.remote.SetLatency(10 * time.Millisecond)
	p.write(t, p.local, 60, "busy")
	eventually(t, 20*time.Second, "pushes under way", func() bool {
		return len(p.remote.CIDs(p.id.DID)) > 6
	})
	if engineGoroutines() <= baseline {
		t.Fatal("no link goroutines while the link is busy: the goroutine check cannot see anything")
	}
	if err := p.te.Remove(p.key); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "subscriptions closed", func() bool {
		return p.remote.Subscriptions() == 0 && p.local.Subscriptions() == 0
	})
	eventually(t, 10*time.Second, "the link's goroutines (supervisor, feeds, workers, timers) ended", func() bool {
		return engineGoroutines() <= baseline
	})
	// Requests sent before Remove returned are counted by the node only after its injected
	// latency (10 ms): let those land, i.e. wait for 5 unchanged ticks (100 ms) in a row.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	counts := func() [2]map[string]int { return [2]map[string]int{requestCounts(p.local), requestCounts(p.remote)} }
	same := func(a, b [2]map[string]int) bool { return maps.Equal(a[0], b[0]) && maps.Equal(a[1], b[1]) }
	before, quiet := counts(), 0
	for deadline := time.Now().Add(5 * time.Second); quiet < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("requests keep arriving after Remove: %v", counts())
		}
		<-tick.C
		if now := counts(); same(now, before) {
			quiet++
		} else {
			before, quiet = now, 0
		}
	}
	// Nothing of the link talks to either server any more: writes a live link would copy
	// within PushDebounce plus a round trip stay where they are, and no request arrives.
	after := p.write(t, p.local, 1, "after-remove")
	p.write(t, p.remote, 1, "after-remove")
	for i := 0; i < 15; i++ { // a 300 ms window, 15× the push debounce
		<-tick.C
		if now := counts(); !same(now, before) {
			t.Fatalf("requests after Remove: local %v → %v, remote %v → %v", before[0], now[0], before[1], now[1])
		}
	}
	if contains(p.remote.CIDs(p.id.DID), after[0]) {
		t.Fatal("a write made after Remove was pushed")
	}
	if err := p.te.store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := p.te.store.Get(p.key); ok {
		t.Fatal("a worker of the removed link re-created its record")
	}
	recs, _ := p.te.store.List()
	if len(recs) != 0 {
		t.Fatalf("ledger holds %d records after Remove", len(recs))
	}
}

// requestCounts is a node's request counters without WebSocket keep-alive (the shared
// connection's pings belong to the pool, not to any link).
func requestCounts(n *dwntest.Node) map[string]int {
	c := n.Counts()
	delete(c, "websocket:pong")
	return c
}

// engineGoroutines counts goroutines running code of the engine's non-test files (the
// supervisor, feed pumps, workers, timers of links; the engine's own loops).
func engineGoroutines() int {
	n, _ := codeGoroutines("/internal/syncer/")
	return n
}

// The operator applies links before it is elected; they start with the engine.
func TestApplyBeforeStart(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	p := &pair{local: local, remote: remote, id: id}
	p.write(t, remote, 3, "r")
	store, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := dwndialect.NewPool(dwndialect.Options{})
	eng, err := New(Options{Ledger: store, Pool: pool, Timing: fastTiming()})
	if err != nil {
		t.Fatal(err)
	}
	key, err := eng.Apply(LinkConfig{Name: "early", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := eng.Snapshot(key); !ok || s.Phase != "initializing" {
		t.Fatalf("before Start: %+v %v", s, ok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Start(ctx) }()
	eventually(t, 20*time.Second, "live after Start", func() bool {
		s, _ := eng.Snapshot(key)
		return s.Phase == "live" && len(local.CIDs(id.DID)) == 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Apply(LinkConfig{Name: "late", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL() + "/x",
		LocalSigner: id.Signer, RemoteSigner: id.Signer}); err == nil {
		t.Fatal("Apply after stop succeeded")
	}
	pool.Close()
	_ = store.Close()
}

// newPairNoLink starts two nodes and an engine without applying a link, so a test can wrap
// the engine's dialer or take baselines first.
func newPairNoLink(t *testing.T, seedLocal, seedRemote int) *pair {
	t.Helper()
	p := &pair{
		local:  dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox}),
		remote: dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox}),
		id:     dwntest.MustIdentity(t),
	}
	p.write(t, p.local, seedLocal, "local-seed")
	p.write(t, p.remote, seedRemote, "remote-seed")
	p.te = startEngine(t, engineOpts{})
	return p
}

func (p *pair) apply(t *testing.T, cfg LinkConfig) {
	t.Helper()
	cfg.Tenant, cfg.LocalEndpoint, cfg.RemoteEndpoint = p.id.DID, p.local.URL(), p.remote.URL()
	cfg.LocalSigner, cfg.RemoteSigner = p.id.Signer, p.id.Signer
	key, err := p.te.Apply(cfg)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	p.key = key
}

func counterSum(t *testing.T, te *testEngine, name string) float64 {
	t.Helper()
	mfs, err := te.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// A pull-only link whose local holds messages the remote lacks can never have equal digests;
// once everything the remote had crossed, it is converged for its direction: needsReconcile is
// cleared and lastConvergedTime set (it used to re-compare every few seconds forever).
func TestOneWayLinkConvergesForItsDirection(t *testing.T) {
	p := newPairNoLink(t, 2, 3)
	p.apply(t, LinkConfig{Name: "ns/pull-only", Direction: ls.PullOnly})
	eventually(t, 20*time.Second, "pull-only link settled", func() bool {
		s, _ := p.te.Snapshot(p.key)
		return !s.NeedsReconcile && !s.LastConvergedTime.IsZero() && len(p.local.CIDs(p.id.DID)) == 5
	})
	if n := len(p.remote.CIDs(p.id.DID)); n != 3 {
		t.Fatalf("a pull-only link wrote to the remote: it holds %d", n)
	}
	if got := counterSum(t, p.te, "dwnsync_reconciles_total"); got < 1 {
		t.Fatalf("reconciles_total %v", got)
	}
}

// A bootstrap reconcile that dead-letters a message (served with a wrong CID once) but copies
// everything else is settled: the link is converged with one dead letter, and it does not
// re-compare at the retry delay (a retry would have copied the message intact and cleared the
// dead letter, which is what happened before).
func TestDeadLetteringReconcileSettles(t *testing.T) {
	p := newPairNoLink(t, 1, 3)
	p.remote.CorruptNextRead()
	p.apply(t, LinkConfig{Name: "ns/dead-letter"})
	var s LinkStatus
	eventually(t, 20*time.Second, "bootstrap reconcile settled", func() bool {
		s, _ = p.te.Snapshot(p.key)
		return !s.NeedsReconcile && !s.LastConvergedTime.IsZero()
	})
	if p.remote.Corrupted() != 1 {
		t.Fatalf("the remote served %d corrupted reads, want 1", p.remote.Corrupted())
	}
	rec, _, _ := p.te.store.Get(p.key)
	if s.DeadLetters != 1 || len(rec.DeadLetters) != 1 || !strings.HasPrefix(rec.DeadLetters[0].Reason, "cid-mismatch") {
		t.Fatalf("settled with %d dead letters (ledger %+v), want the cid-mismatch one", s.DeadLetters, rec.DeadLetters)
	}
	if contains(p.local.CIDs(p.id.DID), rec.DeadLetters[0].CID) {
		t.Fatal("the dead-lettered message crossed: a retry ran although the pass was settled")
	}
	if n := len(p.local.CIDs(p.id.DID)); n != 3 { // 1 own + 2 of the remote's 3
		t.Fatalf("local holds %d messages, want 3", n)
	}
}

// A dead letter already recorded for the same CID and direction (the next reconcile refuses
// the same message again) is not re-counted, re-staged or re-published.
func TestDeadLetterRecordedOnce(t *testing.T) {
	p := newPairNoLink(t, 1, 1)
	p.apply(t, LinkConfig{Name: "ns/dl-once"})
	p.waitLiveConverged(t)
	p.te.mu.Lock()
	l := p.te.links[p.key]
	p.te.mu.Unlock()
	o := transfer.Outcome{CID: "bafy-refused", Kind: dwn.Invalid, Reason: "cid-mismatch: test"}
	for i := 0; i < 3; i++ { // the reconcile pass's path, refusing it again and again
		l.deadLetter(ls.Pull, o.CID, o.Reason)
	}
	l.deadLetter(ls.Push, o.CID, o.Reason) // the other direction is a different dead letter
	// The machine's path (a feed refusing it again): its DeadLetter effect. The link is idle
	// and converged, so its supervisor emits nothing meanwhile.
	l.do(ls.DeadLetter{Dir: ls.Pull, CID: o.CID, Reason: o.Reason})
	eventually(t, 20*time.Second, "dead-letter events delivered", func() bool {
		return len(deadLetterEvents(p.te, p.key)) >= 2
	})
	rec, _, _ := p.te.store.Get(p.key)
	if len(rec.DeadLetters) != 2 || rec.Counters.Failed != 2 {
		t.Fatalf("ledger: %d dead letters, failed=%d; want 2 and 2", len(rec.DeadLetters), rec.Counters.Failed)
	}
	if got := counterSum(t, p.te, "dwnsync_dead_letters_total"); got != 2 {
		t.Fatalf("dwnsync_dead_letters_total = %v, want 2", got)
	}
	if s, _ := p.te.Snapshot(p.key); s.DeadLetters != 2 {
		t.Fatalf("status.deadLetters = %d", s.DeadLetters)
	}
	// Events are delivered in order: a third one would be there by the time a marker event is.
	p.te.publish(Event{Key: p.key, Type: "test:marker"})
	eventually(t, 20*time.Second, "marker event", func() bool { return p.te.sawEvent(p.key, "test:marker", "") })
	if evs := deadLetterEvents(p.te, p.key); len(evs) != 2 {
		t.Fatalf("%d dead-letter events, want 2: %v", len(evs), evs)
	}
}

func deadLetterEvents(te *testEngine, key string) []string {
	te.evMu.Lock()
	defer te.evMu.Unlock()
	var out []string
	for _, ev := range te.events {
		if ev.Key == key && ev.Type == ls.EvDeadLetter {
			out = append(out, ev.Message)
		}
	}
	return out
}

// hookDialer wraps the engine's dialer: onRead runs before every Read of the local tenant,
// onDigest before every Digest of it.
type hookDialer struct {
	inner    Dialer
	local    string
	onRead   func(cid string)
	onDigest func(ctx context.Context)
}

func (h hookDialer) Tenant(ctx context.Context, endpoint string, dialect dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	t, err := h.inner.Tenant(ctx, endpoint, dialect, did, signer)
	if err != nil || endpoint != h.local {
		return t, err
	}
	return hookTenant{Tenant: t, h: h}, nil
}

type hookTenant struct {
	dwn.Tenant
	h hookDialer
}

func (t hookTenant) Read(ctx context.Context, cid string) (dwn.ReadResult, error) {
	if t.h.onRead != nil {
		t.h.onRead(cid)
	}
	return t.Tenant.Read(ctx, cid)
}

func (t hookTenant) Digest(ctx context.Context, s dwn.Scope) (dwn.Digest, error) {
	if t.h.onDigest != nil {
		t.h.onDigest(ctx)
	}
	return t.Tenant.Digest(ctx, s)
}

// Decision D8 at engine level: a pushed write that local superseded (pruned) before the push read
// its data is SourceGone, which counts as done: the push commits past it and the link is not marked
// dirty (the seed burned its retries and set needsReconcile: docs/engine-behaviour.md#e16).
func TestPushOfMessageGoneLocallyCommitsWithoutDirty(t *testing.T) {
	p := newPairNoLink(t, 1, 1)
	big := func(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 40000)) } // not inline: read at push
	first, err := p.id.Write(dwntest.WriteOpts{Data: big(0)})
	if err != nil {
		t.Fatal(err)
	}
	update, err := p.id.Update(first, big(1))
	if err != nil {
		t.Fatal(err)
	}
	newest, err := p.id.Update(update, big(2))
	if err != nil {
		t.Fatal(err)
	}
	superseded := make(chan struct{})
	var once sync.Once
	p.te.dialer = hookDialer{inner: p.te.dialer, local: p.local.URL(), onRead: func(cid string) {
		if cid == update.CID {
			once.Do(func() { // local supersedes the update just before the push reads it
				if r := p.local.Write(p.id.DID, newest.Message, newest.Data); !r.Kind.Succeeded() {
					t.Errorf("superseding write: %+v", r)
				}
				close(superseded)
			})
		}
	}}
	p.apply(t, LinkConfig{Name: "ns/source-gone"})
	p.waitLiveConverged(t)
	for _, w := range []dwntest.Written{first, update} {
		if r := p.local.Write(p.id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("write %s: %+v", w, r)
		}
	}
	eventually(t, 20*time.Second, "the newest write crossed", func() bool {
		return contains(p.remote.CIDs(p.id.DID), newest.CID)
	})
	select {
	case <-superseded:
	default:
		t.Fatal("the push never read the superseded update: the SourceGone path was not exercised")
	}
	p.settle(t)
	// The pulled marker shows up on local's feed too (an echo, dropped): let it drain.
	eventually(t, 10*time.Second, "push feed drained", func() bool {
		s, _ := p.te.Snapshot(p.key)
		return s.Push.Pending == 0
	})
	s, _ := p.te.Snapshot(p.key)
	if s.NeedsReconcile || s.DeadLetters != 0 {
		t.Fatalf("after a SourceGone push: needsReconcile=%v deadLetters=%d; events %v",
			s.NeedsReconcile, s.DeadLetters, p.te.eventTypes(p.key))
	}
	if p.te.sawEvent(p.key, "reconcile:needed", "") {
		t.Fatalf("the link was marked dirty: %v", p.te.eventTypes(p.key))
	}
	if contains(p.remote.CIDs(p.id.DID), update.CID) {
		t.Fatal("the remote holds the superseded update")
	}
}

// Reconcile passes of all links share the engine's slots: with one slot, never two passes at
// once (the local Digest opens and closes every pass, and blocks here until released).
func TestReconcilesShareEngineSlots(t *testing.T) {
	p := newPairNoLink(t, 0, 0)
	p.te.reconcileSlots = newReconcileSlots(1)
	var mu sync.Mutex
	inside, peak := 0, 0
	gate := make(chan struct{})
	entered := make(chan struct{}, 64)
	p.te.dialer = hookDialer{inner: p.te.dialer, local: p.local.URL(), onDigest: func(ctx context.Context) {
		mu.Lock()
		inside++
		peak = max(peak, inside)
		mu.Unlock()
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		mu.Lock()
		inside--
		mu.Unlock()
	}}
	var keys []string
	for i := 0; i < 3; i++ {
		id := dwntest.MustIdentity(t)
		w, err := id.Write(dwntest.WriteOpts{Data: []byte(fmt.Sprintf("slot-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		p.remote.Write(id.DID, w.Message, w.Data)
		key, err := p.te.Apply(LinkConfig{Name: fmt.Sprintf("ns/slot-%d", i), Tenant: id.DID, LocalEndpoint: p.local.URL(),
			RemoteEndpoint: p.remote.URL(), LocalSigner: id.Signer, RemoteSigner: id.Signer})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	allSettled := func() bool {
		for _, k := range keys {
			if s, _ := p.te.Snapshot(k); s.NeedsReconcile || s.LastConvergedTime.IsZero() {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !allSettled() {
		if time.Now().After(deadline) {
			t.Fatal("links did not settle")
		}
		select {
		case <-entered:
			// Give other passes the chance to pile up (they could, without the slots), then
			// let this one go.
			select {
			case <-entered:
			case <-time.After(100 * time.Millisecond):
			}
			mu.Lock()
			n := inside
			mu.Unlock()
			for i := 0; i < n; i++ {
				gate <- struct{}{}
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if peak != 1 {
		t.Fatalf("%d reconcile passes ran at once with one slot", peak)
	}
}
