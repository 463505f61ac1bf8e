package syncer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// stallDialer wraps the engine's dialer: every Digest of a tenant on endpoint slow blocks
// until its pass ends (a server that stopped answering mid-reconcile).
type stallDialer struct {
	inner   Dialer
	slow    string
	stalled *atomic.Int32 // passes blocked in a Digest of the slow endpoint
}

func (d stallDialer) Tenant(ctx context.Context, endpoint string, dialect dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	t, err := d.inner.Tenant(ctx, endpoint, dialect, did, signer)
	if err != nil || endpoint != d.slow {
		return t, err
	}
	return stallTenant{Tenant: t, stalled: d.stalled}, nil
}

type stallTenant struct {
	dwn.Tenant
	stalled *atomic.Int32
}

func (t stallTenant) Digest(ctx context.Context, s dwn.Scope) (dwn.Digest, error) {
	t.stalled.Add(1)
	defer t.stalled.Add(-1)
	<-ctx.Done()
	return dwn.Digest{}, ctx.Err()
}

// Issue 10 §2: the engine's reconcile slots (4) are shared fairly per remote endpoint. Five
// links to a server that stalls every pass never hold more than half of them, and a link to
// another server bootstraps meanwhile.
func TestStalledEndpointCannotStarveOtherLinks(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	slow := dwntest.Start(t, dwntest.Options{})
	fast := dwntest.Start(t, dwntest.Options{})
	te := startEngine(t, engineOpts{})
	var stalled atomic.Int32
	te.dialer = stallDialer{inner: te.dialer, slow: slow.URL(), stalled: &stalled}
	apply := func(name string, remote *dwntest.Node) string {
		t.Helper()
		id := dwntest.MustIdentity(t)
		w, err := id.Write(dwntest.WriteOpts{Data: []byte(name)})
		if err != nil {
			t.Fatal(err)
		}
		if r := remote.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("seeding %s: %+v", name, r)
		}
		key, err := te.Apply(LinkConfig{Name: name, Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
			LocalSigner: id.Signer, RemoteSigner: id.Signer})
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	const slowLinks = 5
	for i := 0; i < slowLinks; i++ {
		apply(fmt.Sprintf("ns/slow-%d", i), slow)
	}
	// Every slow link's bootstrap pass holds a slot or waits for one (a free slot is taken at
	// once, so the split is final now).
	eventually(t, 20*time.Second, "every slow pass holds or awaits a slot", func() bool {
		held, waiting := slotsOf(te.reconcileSlots, slow.URL())
		return held+waiting == slowLinks
	})
	held, _ := slotsOf(te.reconcileSlots, slow.URL())
	if want := (DefaultMaxConcurrentReconciles + 1) / 2; held != want {
		t.Fatalf("%d passes against one endpoint hold slots, want %d", held, want)
	}
	key := apply("ns/fast", fast)
	eventually(t, 20*time.Second, "the link to the other server bootstrapped", func() bool {
		s, _ := te.Snapshot(key)
		return !s.NeedsReconcile && !s.LastConvergedTime.IsZero()
	})
	if stalled.Load() == 0 {
		t.Fatal("the slow passes ended early: the test proved nothing")
	}
}

// The slot rule itself: at most total at once, at most ceil(total/2) per endpoint, and a
// waiter gives up when its context ends.
func TestReconcileSlotsPerEndpointCap(t *testing.T) {
	s := newReconcileSlots(4)
	ctx := context.Background()
	var releases []func()
	for i := 0; i < 2; i++ {
		r, err := s.acquire(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.acquire(short, "a"); err == nil {
		t.Fatal("a third slot for one endpoint of four slots")
	}
	for i := 0; i < 2; i++ {
		r, err := s.acquire(ctx, fmt.Sprintf("b%d", i))
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := s.acquire(ctx, "c")
		if err == nil {
			got <- r
		}
	}()
	eventually(t, 10*time.Second, "a waiter for c", func() bool { _, w := slotsOf(s, "c"); return w == 1 })
	select {
	case <-got:
		t.Fatal("a fifth pass ran with four slots")
	default:
	}
	releases[0]() // an "a" slot frees: "c" takes it
	releases[0]() // a second call is a no-op
	select {
	case r := <-got:
		r()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not get the freed slot")
	}
	if one := newReconcileSlots(1); one.perEndpoint != 1 {
		t.Fatalf("one slot: per-endpoint cap %d, want 1", one.perEndpoint)
	}
}

// slotsOf is how many passes against endpoint hold a slot and how many wait for one.
func slotsOf(s *reconcileSlots, endpoint string) (held, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byEndpoint[endpoint], s.waiting[endpoint]
}

// A freed slot goes to the pass that has waited longest for it, and to no other: waiters are
// not woken to race for it.
func TestReconcileSlotsGoToTheLongestWaiter(t *testing.T) {
	s := newReconcileSlots(1)
	ctx := context.Background()
	held, err := s.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 3)
	releases := make([]func(), 3)
	for i := range 3 {
		go func() {
			r, err := s.acquire(ctx, fmt.Sprintf("e%d", i))
			if err == nil {
				releases[i] = r
				got <- i
			}
		}()
		eventually(t, 10*time.Second, fmt.Sprintf("waiter %d queued", i), func() bool { _, w := slotsOf(s, fmt.Sprintf("e%d", i)); return w == 1 })
	}
	for want := range 3 {
		held()
		select {
		case i := <-got:
			if i != want {
				t.Fatalf("the freed slot went to waiter %d, want %d (the longest waiting)", i, want)
			}
			held = releases[i]
		case <-time.After(10 * time.Second):
			t.Fatalf("waiter %d did not get the freed slot", want)
		}
		select {
		case i := <-got:
			t.Fatalf("waiter %d got a slot too: one slot, two holders", i)
		default:
		}
	}
	held()
}
