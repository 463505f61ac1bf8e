package syncer

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// noisyDialer resolves tenants through a real pool and wraps each notifying subscription so
// that its notify callback is also called, concurrently, from a goroutine of its own, over
// and over until the subscription is closed: spurious and racing notifies.
type noisyDialer struct {
	pool *dialect.Pool
	late bool // wrap with lateSub instead
}

func (d noisyDialer) Tenant(ctx context.Context, endpoint string, di dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	t, err := d.pool.Tenant(ctx, endpoint, di, did, signer)
	if err != nil {
		return nil, err
	}
	return noisyTenant{Tenant: t, late: d.late}, nil
}

type noisyTenant struct {
	dwn.Tenant
	late bool
}

func (t noisyTenant) Subscribe(ctx context.Context, scope dwn.Scope, from *dwn.Cursor) (dwn.Subscription, error) {
	s, err := t.Tenant.Subscribe(ctx, scope, from)
	if err != nil {
		return nil, err
	}
	n, ok := s.(interface {
		dwn.Subscription
		dwn.EventNotifier
	})
	if !ok {
		return nil, errNotNotifier
	}
	if t.late {
		return &lateSub{notifier: n}, nil
	}
	return &noisySub{inner: n, stop: make(chan struct{})}, nil
}

var errNotNotifier = &dwn.Error{Op: "test", Kind: dwn.Permanent, Detail: "the pool's subscription does not notify"}

type noisySub struct {
	inner interface {
		dwn.Subscription
		dwn.EventNotifier
	}
	stop chan struct{}
	once sync.Once
}

func (s *noisySub) Events() <-chan dwn.Event                   { return s.inner.Events() }
func (s *noisySub) Ack(c dwn.Cursor)                           { s.inner.Ack(c) }
func (s *noisySub) Next(ctx context.Context) (dwn.Event, bool) { return s.inner.Next(ctx) }
func (s *noisySub) TryNext() (ev dwn.Event, ok, open bool)     { return s.inner.TryNext() }
func (s *noisySub) Close() error                               { s.once.Do(func() { close(s.stop) }); return s.inner.Close() }
func (s *noisySub) Notify(fn func()) {
	s.inner.Notify(fn)
	go func() { // bounded: ends with the subscription
		for {
			select {
			case <-s.stop:
				return
			default:
				fn()
				runtime.Gosched()
			}
		}
	}()
}

type notifier = interface {
	dwn.Subscription
	dwn.EventNotifier
}

// lateSub makes every event arrive just too late: the first TryNext that would return it says
// "nothing yet" and notifies, on the drain's own goroutine, exactly where a frame landing
// between the drain's last look and its end would. A drain that ends there strands the event.
type lateSub struct {
	notifier
	fn   func()
	held *dwn.Event
}

func (s *lateSub) Notify(fn func()) {
	s.fn = fn
	s.notifier.Notify(fn)
}

func (s *lateSub) TryNext() (dwn.Event, bool, bool) {
	if s.held != nil {
		ev := *s.held
		s.held = nil
		return ev, true, true
	}
	ev, ok, open := s.notifier.TryNext()
	if !ok {
		return ev, ok, open
	}
	s.held = &ev
	s.fn()
	return dwn.Event{}, false, true
}

// startWrappedPair starts two enbox nodes and one engine whose subscriptions are wrapped by
// noisyDialer (lateSub when late), applies one link between them and waits until it is live
// and converged on a first write.
func startWrappedPair(t *testing.T, late bool) *pair {
	t.Helper()
	p := &pair{
		local:  dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox}),
		remote: dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox}),
		id:     dwntest.MustIdentity(t),
	}
	pool := dialect.NewPool(dialect.Options{})
	t.Cleanup(pool.Close)
	p.te = startEngine(t, engineOpts{pool: pool, dialer: noisyDialer{pool: pool, late: late}})
	key, err := p.te.Apply(LinkConfig{Name: fmt.Sprintf("ns/wrapped-late-%v", late), Tenant: p.id.DID,
		LocalEndpoint: p.local.URL(), RemoteEndpoint: p.remote.URL(), LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer})
	if err != nil {
		t.Fatal(err)
	}
	p.key = key
	p.write(t, p.local, 1, "first")
	p.waitLiveConverged(t)
	return p
}

// A notify that lands after the drain's last look and before it ends starts another look: no
// event waits for the next frame to be noticed. Every write crosses although each of its
// events is announced only after the drain found nothing.
func TestFeedDrainLooksAgainAfterALateNotify(t *testing.T) {
	p := startWrappedPair(t, true)
	local, remote := p.local, p.remote
	for i := range 5 { // one write at a time: each is the last event of its burst
		l := p.write(t, local, 1, fmt.Sprintf("late-l%d", i))[0]
		r := p.write(t, remote, 1, fmt.Sprintf("late-r%d", i))[0]
		eventually(t, 30*time.Second, "the write crossed", func() bool {
			return contains(remote.CIDs(p.id.DID), l) && contains(local.CIDs(p.id.DID), r)
		})
	}
}

// A feed drained on notify loses and repeats nothing when notifies are spurious and race with
// the socket's own: every write on either side arrives once, and the link settles live.
func TestFeedDrainSurvivesRacingNotifies(t *testing.T) {
	p := startWrappedPair(t, false)
	local, remote, key := p.local, p.remote, p.key
	before, _ := p.te.Snapshot(key)
	const n = 150
	want := append(p.write(t, local, n, "l"), p.write(t, remote, n, "r")...)
	eventually(t, 2*time.Minute, "every write on both sides", func() bool {
		l, r := local.CIDs(p.id.DID), remote.CIDs(p.id.DID)
		for _, c := range want {
			if !contains(l, c) || !contains(r, c) {
				return false
			}
		}
		return true
	})
	p.settle(t)
	s, _ := p.te.Snapshot(key)
	if s.Phase != "live" || s.NeedsReconcile {
		t.Fatalf("after racing notifies the link is %s (needsReconcile %v); want live", s.Phase, s.NeedsReconcile)
	}
	// Each write crossed exactly once: a repeated delivery would be applied, and counted, twice.
	pulled, pushed := s.Pull.Applied-before.Pull.Applied, s.Push.Applied-before.Push.Applied
	if pulled != n+1 || pushed != n+1 {
		t.Fatalf("applied pull %d push %d after the first sync; want %d each (the writes and settle's marker, once)", pulled, pushed, n+1)
	}
}
