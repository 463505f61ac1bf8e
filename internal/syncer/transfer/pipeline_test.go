package transfer

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// concurrencyProbe watches the Reads and Applies of two tenants (sides 0 and 1) and records
// how they overlapped. Applies wait at a gate until the overlap a test looks for has happened,
// and Reads beyond the first readsAhead wait until some Apply has started (as a real source
// is slower than a map), each until a generous deadline at most, so that a copier without the
// overlap fails the assertions instead of hanging, and one with it cannot miss it by timing.
type concurrencyProbe struct {
	mu                  sync.Mutex
	reads               int
	applies             [2]int // in flight now, per side
	maxApplies          [2]int
	readsWhileApplying  int // Reads started while some Apply was in flight
	sidesApplyingAtOnce int // most sides with an Apply in flight at the same time
	gate                func(p *concurrencyProbe) bool
	opened              chan struct{}
	readsAhead          int           // Reads that need not wait for an Apply
	readsStarted        int           // Reads so far
	applyStarted        chan struct{} // closed at the first Apply
	deadline            <-chan struct{}
}

func newConcurrencyProbe(t *testing.T, readsAhead int, gate func(p *concurrencyProbe) bool) *concurrencyProbe {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &concurrencyProbe{gate: gate, opened: make(chan struct{}), readsAhead: readsAhead,
		applyStarted: make(chan struct{}), deadline: ctx.Done()}
}

func (p *concurrencyProbe) openGateIfDueLocked() {
	select {
	case <-p.opened:
	default:
		if p.gate(p) {
			close(p.opened)
		}
	}
}

type probedTenant struct {
	*fakeTenant
	side  int
	probe *concurrencyProbe
}

func (t probedTenant) Read(ctx context.Context, cid string) (dwn.ReadResult, error) {
	p := t.probe
	p.mu.Lock()
	p.readsStarted++
	if p.readsStarted > p.readsAhead {
		p.mu.Unlock()
		select {
		case <-p.applyStarted:
		case <-p.deadline:
		}
		p.mu.Lock()
	}
	if p.applies[0]+p.applies[1] > 0 {
		p.readsWhileApplying++
	}
	p.reads++
	p.openGateIfDueLocked()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.reads--
		p.mu.Unlock()
	}()
	return t.fakeTenant.Read(ctx, cid)
}

func (t probedTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	p := t.probe
	p.mu.Lock()
	p.applies[t.side]++
	select {
	case <-p.applyStarted:
	default:
		close(p.applyStarted)
	}
	p.maxApplies[t.side] = max(p.maxApplies[t.side], p.applies[t.side])
	p.sidesApplyingAtOnce = max(p.sidesApplyingAtOnce, btoi(p.applies[0] > 0)+btoi(p.applies[1] > 0))
	p.openGateIfDueLocked()
	p.mu.Unlock()
	select {
	case <-p.opened:
	case <-p.deadline:
	}
	defer func() {
		p.mu.Lock()
		p.applies[t.side]--
		p.mu.Unlock()
	}()
	return t.fakeTenant.Apply(ctx, message, data)
}

// configuredPair is two fake tenants that both hold proto's configure.
func configuredPair(t *testing.T) (local, remote *fakeTenant, f *factory) {
	local, remote = newFakeTenant("local"), newFakeTenant("remote")
	f = newFactory(t)
	cfg := f.configure(proto)
	local.seed(t, cfg)
	remote.seed(t, cfg)
	return local, remote, f
}

// seedNotes gives a tenant n notes of proto.
func seedNotes(t *testing.T, f *factory, to *fakeTenant, n int, seed byte) {
	for i := range n {
		to.seed(t, f.write(proto, "note", "", payload(50, seed+byte(i))))
	}
}

// While the target applies one batch, the source is already read for the next one, and the
// target sees exactly the configured number of applies in flight.
func TestReconcileOverlapsReadsWithAppliesAtTheConfiguredConcurrency(t *testing.T) {
	const applyConcurrency = 4
	local, remote, f := configuredPair(t)
	seedNotes(t, f, remote, 60, 0)
	c := Copier{ApplyConcurrency: applyConcurrency, FetchConcurrency: 2, ReconcileChunk: 40}
	// A batch is half the chunk: the first one is read before anything can be applied.
	probe := newConcurrencyProbe(t, 20, func(p *concurrencyProbe) bool {
		return p.maxApplies[0] == applyConcurrency && p.readsWhileApplying > 0
	})
	res, err := c.Reconcile(context.Background(), probedTenant{local, 0, probe}, probedTenant{remote, 1, probe}, dwn.Scope{}, linkstate.PullOnly)
	if err != nil || res.Pulled != 60 || !res.DigestsEqual {
		t.Fatalf("%v %+v", err, res)
	}
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if probe.readsWhileApplying == 0 {
		t.Errorf("no Read of the source started while an Apply was in flight: reading and writing never overlapped")
	}
	if probe.maxApplies[0] != applyConcurrency {
		t.Errorf("at most %d Applies in flight on the target, want the configured %d", probe.maxApplies[0], applyConcurrency)
	}
}

// A reconcile both ways writes to both servers at the same time, and ends identical.
func TestReconcileCopiesBothDirectionsAtOnce(t *testing.T) {
	local, remote, f := configuredPair(t)
	seedNotes(t, f, local, 30, 0)
	seedNotes(t, f, remote, 30, 100)
	probe := newConcurrencyProbe(t, 1<<20, func(p *concurrencyProbe) bool { return p.sidesApplyingAtOnce == 2 })
	c := Copier{ReconcileChunk: 20}
	res, err := c.Reconcile(context.Background(), probedTenant{local, 0, probe}, probedTenant{remote, 1, probe}, dwn.Scope{}, linkstate.Both)
	if err != nil || res.Pulled != 30 || res.Pushed != 30 || !res.DigestsEqual {
		t.Fatalf("%v %+v", err, res)
	}
	assertIdentical(t, local, remote)
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if probe.sidesApplyingAtOnce != 2 {
		t.Errorf("the two directions never applied at the same time")
	}
}

// slowTarget holds the Apply of one message until another has been applied (or a generous
// deadline passed, so that a copier that waits for the slow one first fails instead of
// hanging).
type slowTarget struct {
	*fakeTenant
	slow, until string
	released    chan struct{}
	deadline    <-chan struct{}
	mu          sync.Mutex
	timedOut    bool
}

func (t *slowTarget) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	cid, _ := msg.MessageCID(message)
	if cid == t.slow {
		select {
		case <-t.released:
		case <-t.deadline:
			t.mu.Lock()
			t.timedOut = true
			t.mu.Unlock()
		}
	}
	res, err := t.fakeTenant.Apply(ctx, message, data)
	if cid == t.until {
		close(t.released)
	}
	return res, err
}

// A message waits only for its own dependencies in the batch: an update starts as soon as
// its initial write is in, while an unrelated write of the same depth is still being applied.
func TestCopyStartsAMessageOnceItsOwnDependenciesAreDone(t *testing.T) {
	f := newFactory(t)
	src := newFakeTenant("src")
	cfg := f.configure(proto)
	first := f.write(proto, "note", "", payload(40, 1))
	update := f.update(first, payload(40, 2))
	unrelated := f.write(proto, "note", "", payload(40, 3))
	src.seed(t, cfg, first, update, unrelated)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dst := &slowTarget{fakeTenant: newFakeTenant("dst"), slow: unrelated.CID, until: update.CID, released: make(chan struct{}), deadline: ctx.Done()}
	dst.seed(t, cfg)
	res, err := (&Copier{}).Copy(context.Background(), src, dst, entries(first, unrelated, update))
	if err != nil || res.FirstFailure() != -1 {
		t.Fatalf("%v %v", err, res.Failed())
	}
	if got := kinds(res); !reflect.DeepEqual(got, []string{"Applied", "Applied", "Applied"}) {
		t.Fatalf("outcomes %v, want every message Applied (the update after its initial write)", got)
	}
	if dst.timedOut {
		t.Fatal("the update waited for the unrelated write: it started only after its whole dependency level was done")
	}
}
