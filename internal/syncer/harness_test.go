package syncer

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/ledger"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// fastTiming keeps the spec's shape (ordering, ratios, budgets) but shrinks the delays so
// end-to-end tests on real servers finish quickly.
func fastTiming() *ls.Timing {
	t := ls.DefaultTiming()
	t.PushDebounce = 20 * time.Millisecond
	t.PushRetryBackoff = []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}
	t.RepairBackoff = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	t.DegradedPollBase = 300 * time.Millisecond
	t.DegradedPollJitter = 300 * time.Millisecond
	t.ReconcileDefault = 150 * time.Millisecond
	t.ReconcileStartupDirty = 100 * time.Millisecond
	t.ReconcileEOSEDirty = 50 * time.Millisecond
	t.ReconcilePostRepair = 50 * time.Millisecond
	t.ReconcileRetry = 300 * time.Millisecond
	t.VerifyInterval = time.Minute
	return &t
}

type testEngine struct {
	*Engine
	t      testing.TB
	store  *ledger.Store
	pool   *dialect.Pool
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry

	evMu   sync.Mutex
	events []Event
}

type engineOpts struct {
	ledgerPath string
	timing     *ls.Timing
	pool       *dialect.Pool
	// beforeCommit is the ledger's Options.BeforeCommit (a simulated full disk).
	beforeCommit func() error
	// dialer, when set, resolves tenants instead of the pool (wrappers that inject faults).
	dialer Dialer
}

func startEngine(t testing.TB, o engineOpts) *testEngine {
	t.Helper()
	if o.ledgerPath == "" {
		o.ledgerPath = filepath.Join(t.TempDir(), "ledger.db")
	}
	if o.timing == nil {
		o.timing = fastTiming()
	}
	store, err := ledger.Open(o.ledgerPath, ledger.Options{BeforeCommit: o.beforeCommit})
	if err != nil {
		t.Fatalf("ledger.Open: %v", err)
	}
	if o.pool == nil {
		o.pool = dialect.NewPool(dialect.Options{})
	}
	reg := prometheus.NewRegistry()
	eng, err := New(Options{Ledger: store, Pool: o.pool, Dialer: o.dialer, Registerer: reg, Timing: o.timing, Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	te := &testEngine{Engine: eng, t: t, store: store, pool: o.pool, cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { te.done <- eng.Start(ctx) }()
	go func() {
		for {
			select {
			case ev := <-eng.Events():
				te.evMu.Lock()
				te.events = append(te.events, ev)
				te.evMu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := eng.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(te.stop)
	return te
}

func (te *testEngine) stop() {
	if te.cancel == nil {
		return
	}
	te.cancel()
	te.cancel = nil
	select {
	case err := <-te.done:
		if err != nil {
			te.t.Errorf("engine Start returned %v", err)
		}
	case <-time.After(10 * time.Second):
		te.t.Errorf("engine did not stop")
	}
	te.pool.Close()
	_ = te.store.Close()
}

func (te *testEngine) eventTypes(key string) []string {
	te.evMu.Lock()
	defer te.evMu.Unlock()
	var out []string
	for _, ev := range te.events {
		if ev.Key == key && ev.Type != "checkpoint:pull-advance" && ev.Type != "checkpoint:push-advance" {
			s := ev.Type
			if ev.To != "" {
				s += "→" + ev.To
			}
			if ev.To == "repairing" || ev.Type == "repair:failed" {
				s += "(" + ev.Reason + " " + ev.Message + ")"
			}
			out = append(out, s)
		}
	}
	return out
}

func (te *testEngine) sawEvent(key, typ, to string) bool {
	te.evMu.Lock()
	defer te.evMu.Unlock()
	for _, ev := range te.events {
		if ev.Key == key && ev.Type == typ && (to == "" || ev.To == to) {
			return true
		}
	}
	return false
}

// sawDeadLetter says whether the engine announced a dead letter of cid (in the event's message)
// with a reason starting with reason.
func (te *testEngine) sawDeadLetter(key, cid, reason string) bool {
	te.evMu.Lock()
	defer te.evMu.Unlock()
	for _, ev := range te.events {
		if ev.Key == key && ev.Type == EventDeadLetter && strings.HasPrefix(ev.Reason, reason) && strings.HasSuffix(ev.Message, " "+cid) {
			return true
		}
	}
	return false
}

// minWait is the least time any wait here gets before it fails. A wait's deadline bounds a
// hang; it asserts no timing. Under make test-stress (-race beside CPU hogs and other builds,
// load average ~20) a 200-message bootstrap on dwntest outran a 30 s wait, so the deadlines
// written at each call are floors raised to this.
const minWait = 2 * time.Minute

// eventually polls cond until it holds or the deadline (at least minWait) passes (no fixed
// sleeps).
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, max(within, minWait), 10*time.Millisecond, what, cond)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
