package syncer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwndialect "github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// flakyDialer refuses every tenant until up is set, then resolves them through a real pool.
type flakyDialer struct {
	up   atomic.Bool
	pool *dwndialect.Pool
}

func (d *flakyDialer) Tenant(ctx context.Context, endpoint string, dialect dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	if !d.up.Load() {
		return nil, errors.New("dial tcp: connection refused")
	}
	return d.pool.Tenant(ctx, endpoint, dialect, did, signer)
}

// The supervisor's timers run on the injected clock with the spec's own delays: repairs after
// 1 s and 3 s, degraded_poll after the third failure, the poll tick 15 s (+ jitter, 0 here)
// later brings the link live once the remote answers.
func TestEngineRepairTimersOnFakeClock(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	fake := waittest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := dwndialect.NewPool(dwndialect.Options{})
	dialer := &flakyDialer{pool: pool}
	eng, err := New(Options{Ledger: store, Dialer: dialer, Clock: fake, Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		pool.Close()
		_ = store.Close()
	})
	var events []Event
	count := func(typ, to string) int {
		for {
			select {
			case ev := <-eng.Events():
				events = append(events, ev)
				continue
			default:
			}
			break
		}
		n := 0
		for _, ev := range events {
			if ev.Type == typ && (to == "" || ev.To == to) {
				n++
			}
		}
		return n
	}
	key, err := eng.Apply(LinkConfig{Name: "fake-clock", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer})
	if err != nil {
		t.Fatal(err)
	}
	// Each step waits for the very timer it fires (the repair retry after 1 s, then 3 s, the
	// degraded poll tick after 15 s): other timers of the link may be armed on the clock too.
	waitArmed := func(what string, cond func() bool, timer time.Duration) {
		t.Helper()
		eventually(t, 10*time.Second, what, cond)
		fake.AwaitTimer(t, timer, what)
	}
	waitArmed("first repair failed", func() bool { return count("repair:failed", "") == 1 }, time.Second)
	fake.Step(999 * time.Millisecond)
	if count("repair:started", "") != 1 {
		t.Fatal("retried before 1 s")
	}
	fake.Step(time.Millisecond)
	waitArmed("second repair failed", func() bool { return count("repair:failed", "") == 2 }, 3*time.Second)
	fake.Step(3 * time.Second)
	waitArmed("degraded_poll", func() bool { return count("degraded-poll:entered", "") == 1 }, 15*time.Second)
	if s, _ := eng.Snapshot(key); s.Phase != "degraded_poll" || s.Connectivity != "offline" {
		t.Fatalf("phase %s connectivity %s", s.Phase, s.Connectivity)
	}
	dialer.up.Store(true)
	fake.Step(14 * time.Second)
	if count("repair:started", "") != 3 {
		t.Fatalf("degraded tick before 15 s: %d repairs started", count("repair:started", ""))
	}
	fake.Step(time.Second)
	eventually(t, 10*time.Second, "live after the degraded tick", func() bool {
		s, _ := eng.Snapshot(key)
		return s.Phase == "live" && count("repair:completed", "") == 1
	})
}

// StopTimeout bounds the whole stop: with several supervisors that never finish stopping,
// Start returns once one StopTimeout of the engine's clock has passed (it used to wait for
// the first one only and then for every other one without a bound).
func TestEngineStopBoundedByOneStopTimeout(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	fake := waittest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := dwndialect.NewPool(dwndialect.Options{})
	const links = 3
	// Every link's pull subscription (on remote) holds its Close: its supervisor cannot stop.
	dialer := &slowCloseDialer{pool: pool, slow: remote.URL(), subscribed: make(chan struct{}, links),
		closing: make(chan struct{}, links), release: make(chan struct{})}
	t.Cleanup(func() {
		close(dialer.release)
		pool.Close()
		_ = store.Close()
	})
	eng, err := New(Options{Ledger: store, Dialer: dialer, Clock: fake, Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- eng.Start(ctx) }()
	for i := 0; i < links; i++ {
		id := dwntest.MustIdentity(t)
		if _, err := eng.Apply(LinkConfig{Name: fmt.Sprintf("slow-stop-%d", i), Tenant: id.DID, LocalEndpoint: local.URL(),
			RemoteEndpoint: remote.URL(), LocalSigner: id.Signer, RemoteSigner: id.Signer}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "every pull feed subscribed", func() bool { return len(dialer.subscribed) == links })
	cancel()
	fake.AwaitTimer(t, StopTimeout, "the stop deadline")
	select {
	case err := <-done:
		t.Fatalf("Start returned (%v) before its stop deadline, with every supervisor stuck", err)
	default:
	}
	fake.Step(StopTimeout)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Start did not return after one StopTimeout with slow supervisors")
	}
}
