package syncer

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwndialect "github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// slowCloseDialer resolves tenants through a real pool; subscriptions on the slow endpoint
// hold Close until release is closed, as a server slow to answer rpc.subscribe.close does
// (dwntest answers close at once, so the delay is injected here).
type slowCloseDialer struct {
	pool       *dwndialect.Pool
	slow       string
	subscribed chan struct{}
	closing    chan struct{}
	release    chan struct{}
}

func (d *slowCloseDialer) Tenant(ctx context.Context, endpoint string, dialect dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	t, err := d.pool.Tenant(ctx, endpoint, dialect, did, signer)
	if err != nil || endpoint != d.slow {
		return t, err
	}
	return slowCloseTenant{Tenant: t, d: d}, nil
}

type slowCloseTenant struct {
	dwn.Tenant
	d *slowCloseDialer
}

func (t slowCloseTenant) Subscribe(ctx context.Context, scope dwn.Scope, from *dwn.Cursor) (dwn.Subscription, error) {
	s, err := t.Tenant.Subscribe(ctx, scope, from)
	if err != nil {
		return nil, err
	}
	select {
	case t.d.subscribed <- struct{}{}:
	default:
	}
	return slowCloseSub{Subscription: s, d: t.d}, nil
}

type slowCloseSub struct {
	dwn.Subscription
	d *slowCloseDialer
}

func (s slowCloseSub) Close() error {
	select {
	case s.d.closing <- struct{}{}:
	default:
	}
	<-s.d.release
	return s.Subscription.Close()
}

// within runs f in the background and fails t unless it returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// Restarting a link whose feed is slow to close must not freeze the engine: Snapshot,
// Snapshots and Apply of other links go on while the old supervisor is waited for, and a
// second Apply of the same link waits for the first and wins.
func TestApplyRestartDoesNotBlockOtherLinks(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remoteA := dwntest.Start(t, dwntest.Options{})
	remoteB := dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	store, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := dwndialect.NewPool(dwndialect.Options{})
	d := &slowCloseDialer{pool: pool, slow: remoteA.URL(), subscribed: make(chan struct{}, 1),
		closing: make(chan struct{}, 1), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(d.release) }) }
	eng, err := New(Options{Ledger: store, Dialer: d, Timing: fastTiming(), Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Start(ctx) }()
	t.Cleanup(func() {
		release()
		cancel()
		<-stopped
		pool.Close()
		_ = store.Close()
	})

	cfgA := LinkConfig{Name: "a", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remoteA.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer}
	cfgB := cfgA
	cfgB.Name, cfgB.RemoteEndpoint = "b", remoteB.URL()
	keyA, err := eng.Apply(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := eng.Apply(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.subscribed:
	case <-time.After(20 * time.Second):
		t.Fatal("link a never subscribed to its remote")
	}

	cfgA2, cfgA3 := cfgA, cfgA
	cfgA2.PollInterval, cfgA3.PollInterval = 3*time.Minute, 4*time.Minute
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { _, err := eng.Apply(cfgA2); first <- err }()
	select {
	case <-d.closing:
	case <-time.After(20 * time.Second):
		t.Fatal("the restart never closed link a's subscription")
	}
	go func() { _, err := eng.Apply(cfgA3); second <- err }()

	// Link a's old supervisor is stuck closing; the rest of the engine answers.
	within(t, 20*time.Second, "Snapshots", func() {
		if got := eng.Snapshots(); len(got) != 2 {
			t.Errorf("Snapshots listed %d links during the restart, want 2 (a stays visible)", len(got))
		}
	})
	within(t, 20*time.Second, "Snapshot of b", func() {
		if _, ok := eng.Snapshot(keyB); !ok {
			t.Error("link b missing")
		}
	})
	within(t, 20*time.Second, "Apply of unchanged b", func() {
		if _, err := eng.Apply(cfgB); err != nil {
			t.Error(err)
		}
	})
	select {
	case err := <-first:
		t.Fatalf("Apply returned (%v) while the old supervisor was still closing", err)
	case err := <-second:
		t.Fatalf("second Apply of the same link returned (%v) before the first restart finished", err)
	default:
	}

	release()
	for _, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Apply did not return after the close was released")
		}
	}
	eng.mu.Lock()
	got := eng.links[keyA].cfg.PollInterval
	eng.mu.Unlock()
	if got != cfgA3.PollInterval {
		t.Fatalf("link a runs with poll interval %v, want the last Apply's %v", got, cfgA3.PollInterval)
	}
}

// stuckDigestDialer's remote tenants never answer Digest until the caller gives up, as a
// server that stalls mid-pass would (below any transport timeout).
type stuckDigestDialer struct {
	pool   *dwndialect.Pool
	remote string
	calls  atomic.Int32
}

func (d *stuckDigestDialer) Tenant(ctx context.Context, endpoint string, dialect dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	t, err := d.pool.Tenant(ctx, endpoint, dialect, did, signer)
	if err != nil || endpoint != d.remote {
		return t, err
	}
	return stuckDigestTenant{Tenant: t, d: d}, nil
}

type stuckDigestTenant struct {
	dwn.Tenant
	d *stuckDigestDialer
}

func (t stuckDigestTenant) Digest(ctx context.Context, scope dwn.Scope) (dwn.Digest, error) {
	t.d.calls.Add(1)
	<-ctx.Done()
	return dwn.Digest{}, ctx.Err()
}

// A pass stuck on a server is abandoned at the pass timeout and reported as failed, so the
// link's in-flight marker clears and the pass is tried again.
func TestStuckPassIsAbandonedAndRetried(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	store, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := dwndialect.NewPool(dwndialect.Options{})
	d := &stuckDigestDialer{pool: pool, remote: remote.URL()}
	eng, err := New(Options{Ledger: store, Dialer: d, Timing: fastTiming(), Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	eng.passTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
		pool.Close()
		_ = store.Close()
	})
	key, err := eng.Apply(LinkConfig{Name: "stuck", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer})
	if err != nil {
		t.Fatal(err)
	}
	sawAbandoned := false
	eventually(t, 30*time.Second, "a stuck pass abandoned and a new one started", func() bool {
		s, _ := eng.Snapshot(key)
		if strings.Contains(s.LastError, "abandoned") {
			sawAbandoned = true
		}
		return sawAbandoned && d.calls.Load() >= 2
	})
}
