package syncer

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

func TestTimingMatchesSpec(t *testing.T) {
	d := DefaultTiming()
	checks := []struct {
		name      string
		got, want time.Duration
	}{
		{"PUSH_DEBOUNCE_MS", d.PushDebounce, 100 * time.Millisecond},
		{"echo TTL", d.EchoTTL, 60 * time.Second},
		{"degraded-poll base", d.DegradedPollBase, 15 * time.Second},
		{"degraded-poll jitter", d.DegradedPollJitter, 15 * time.Second},
		{"reconcile default", d.ReconcileDefault, 1500 * time.Millisecond},
		{"reconcile start-up dirty", d.ReconcileStartupDirty, 1000 * time.Millisecond},
		{"reconcile EOSE dirty", d.ReconcileEOSEDirty, 500 * time.Millisecond},
		{"reconcile post-repair", d.ReconcilePostRepair, 500 * time.Millisecond},
		{"reconcile retry", d.ReconcileRetry, 5000 * time.Millisecond},
		{"live interval", d.VerifyInterval, 5 * time.Minute},
		{"poll interval", DefaultPollInterval, 2 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if d.EchoCap != 10000 || d.MaxPending != 100 || d.MaxRepairAttempts != 3 || MaxBackoffMultiplier != 4 {
		t.Errorf("caps: echo %d pending %d repairs %d backoff %d", d.EchoCap, d.MaxPending, d.MaxRepairAttempts, MaxBackoffMultiplier)
	}
	if got := d.PushRetryBackoff; len(got) != 4 || got[1] != 250*time.Millisecond || got[2] != time.Second || got[3] != 2*time.Second {
		t.Errorf("PUSH_RETRY_BACKOFF_MS = %v", got)
	}
	if got := d.RepairBackoff; len(got) != 3 || got[0] != time.Second || got[1] != 3*time.Second || got[2] != 10*time.Second {
		t.Errorf("REPAIR_BACKOFF_MS = %v", got)
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

// A changed config restarts the link (one supervisor, one subscription per feed: E15) and
// keeps its checkpoints; an unchanged one is a no-op.
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
	cfg.Mode, cfg.Dialect = ModeLive, "enbox" // pinning the dialect is a change
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
			Mode: ModePoll, PollInterval: 200 * time.Millisecond, LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer})
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
		"dwnsync_reconciles_total", "dwnsync_events_dropped_total"} {
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
			if mf.GetName() != "dwnsync_checkpoint_lag" {
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
}

// Teardown: removing a link while its push feed is busy leaves no record behind and no
// subscription open; late results of its workers change nothing.
func TestRemoveDuringActivityLeavesNothing(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 2, 2, engineOpts{})
	p.waitLiveConverged(t)
	p.remote.SetLatency(10 * time.Millisecond)
	p.write(t, p.local, 60, "busy")
	eventually(t, 20*time.Second, "pushes under way", func() bool {
		return len(p.remote.CIDs(p.id.DID)) > 6
	})
	if err := p.te.Remove(p.key); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "subscriptions closed", func() bool {
		return p.remote.Subscriptions() == 0 && p.local.Subscriptions() == 0
	})
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
	pool := dwn.NewPool(dwn.Options{})
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
