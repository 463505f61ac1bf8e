package linkstate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Arithmetic and small units. Behaviour is in the scenarios (testdata/); these check the
// numbers of longer sequences and the parts the machine is built from.

func cur(stream string, pos int) *dwn.Cursor {
	return &dwn.Cursor{StreamID: stream, Epoch: "e", Position: fmt.Sprint(pos)}
}

// fire moves the clock to timer tm's deadline and fires it.
func (d *driver) fire(tm Timer) []Effect {
	d.tb.Helper()
	at := d.m.TimerAt(tm)
	if at.IsZero() {
		d.tb.Fatalf("timer %v is not armed", tm)
	}
	d.now = at
	return d.step(TimerFired{Timer: tm, At: at})
}

// in is how long from now timer tm fires (0 when it is not armed).
func (d *driver) in(tm Timer) time.Duration {
	if at := d.m.TimerAt(tm); !at.IsZero() {
		return at.Sub(d.now)
	}
	return 0
}

func liveDriver(t *testing.T) *driver {
	d := newDriver(t, liveConfig())
	d.step(Start{Checkpoints: [2]*dwn.Cursor{cur("s", 0), cur("l", 0)}})
	for _, dir := range Dirs {
		d.step(FeedOpened{Dir: dir, Epoch: d.m.Epoch(dir)})
	}
	if p := d.m.Snapshot().Phase; p != Live {
		t.Fatalf("setup: phase %s", p)
	}
	return d
}

// repairing ends the pull feed twice (a reopen, then a repair).
func (d *driver) repairing() {
	for range 2 {
		d.step(FeedFailed{Dir: Pull, Epoch: d.m.Epoch(Pull), Err: "x"})
		d.step(FeedOpened{Dir: Pull, Epoch: d.m.Epoch(Pull)})
	}
}

// Repair retries wait 1s then 3s; the third failure, 4s after the first, enters degraded_poll
// with the attempt count kept, and it counts on through degraded-poll attempts.
func TestRepairBackoffSequence(t *testing.T) {
	d := liveDriver(t)
	d.repairing()
	start := d.now
	var gaps []time.Duration
	for range 2 {
		d.step(RepairDone{Seq: d.repairSeq, Err: "down"})
		gaps = append(gaps, d.in(TimerRepairRetry))
		d.fire(TimerRepairRetry)
	}
	if !slices.Equal(gaps, []time.Duration{time.Second, 3 * time.Second}) {
		t.Fatalf("repair retry delays = %v, want [1s 3s]", gaps)
	}
	d.step(RepairDone{Seq: d.repairSeq, Err: "down"})
	if s := d.m.Snapshot(); s.Phase != DegradedPoll || d.now.Sub(start) != 4*time.Second || s.RepairAttempts != 3 {
		t.Fatalf("phase %s after %v with %d attempts, want degraded_poll after 4s with 3", s.Phase, d.now.Sub(start), s.RepairAttempts)
	}
	d.fire(TimerDegradedPoll)
	d.step(RepairDone{Seq: d.repairSeq, Err: "down"})
	if n := d.m.Snapshot().RepairAttempts; n != 4 {
		t.Fatalf("attempts after a failed degraded-poll attempt = %d, want 4", n)
	}
}

// The degraded-poll interval is 15s plus the drawn fraction of the 15s jitter.
func TestDegradedIntervalDrawnOnEntry(t *testing.T) {
	for _, c := range []struct {
		rand float64
		want time.Duration
	}{{0, 15 * time.Second}, {0.5, 22500 * time.Millisecond}, {0.999, 15*time.Second + 14985*time.Millisecond}} {
		d := liveDriver(t)
		d.rand = c.rand
		d.repairing()
		for i := range 3 {
			if i > 0 {
				d.fire(TimerRepairRetry)
			}
			d.step(RepairDone{Seq: d.repairSeq, Err: "down"})
		}
		if got := d.m.DegradedInterval(); got != c.want {
			t.Errorf("rand %v: interval %v, want %v", c.rand, got, c.want)
		}
		if got := d.in(TimerDegradedPoll); got != c.want {
			t.Errorf("rand %v: timer in %v, want %v", c.rand, got, c.want)
		}
	}
}

// Failed passes back off exponentially from 5s up to the verify interval and stay there; a
// settled pass resets the backoff.
func TestReconcileRetryBackoffCappedAtVerifyInterval(t *testing.T) {
	d := liveDriver(t)
	d.step(RetryNow{})
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		d.fire(TimerReconcile)
		d.step(ReconcileCompleted{Seq: d.recSeq, Err: "remote 503"})
		if got := d.in(TimerReconcile); got != w {
			t.Fatalf("retry %d armed in %v, want %v", i+1, got, w)
		}
	}
	d.fire(TimerReconcile)
	d.step(ReconcileCompleted{Seq: d.recSeq, Converged: true})
	if got := d.in(TimerReconcile); got != 0 {
		t.Fatalf("a settled pass left a retry armed in %v", got)
	}
	d.step(RetryNow{})
	d.fire(TimerReconcile)
	d.step(ReconcileCompleted{Seq: d.recSeq, Err: "remote 503"})
	if got := d.in(TimerReconcile); got != 5*time.Second {
		t.Fatalf("first retry after a settled pass in %v, want 5s (backoff reset)", got)
	}
}

// A failed push batch is retried after 250ms, 1s and 2s; the fourth failure gives up to a
// reconcile 1.5s later.
func TestPushRetrySchedule(t *testing.T) {
	d := liveDriver(t)
	d.step(Delivered{Dir: Push, Epoch: d.m.Epoch(Push), Entry: dwn.Entry{CID: "a", Cursor: cur("l", 1)}})
	var delays []time.Duration
	for i := range 4 {
		if i > 0 {
			delays = append(delays, d.in(TimerPushFlush))
			d.fire(TimerPushFlush)
		}
		d.step(PushFlushed{Epoch: d.m.Epoch(Push), Err: "500"})
	}
	if want := []time.Duration{250 * time.Millisecond, time.Second, 2 * time.Second}; !slices.Equal(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	if got := d.in(TimerReconcile); got != 1500*time.Millisecond || !d.m.Snapshot().NeedsReconcile {
		t.Fatalf("after giving up: reconcile in %v, dirty %v; want 1.5s, dirty", got, d.m.Snapshot().NeedsReconcile)
	}
}

func TestTrackerCommitsContiguously(t *testing.T) {
	tr := NewTracker()
	o0 := tr.Deliver(cur("s", 1))
	o1 := tr.Deliver(nil) // no cursor (web5 mid-page)
	o2 := tr.Deliver(cur("s", 3))
	o3 := tr.Deliver(nil)
	if c, n := tr.Complete(o2); c != nil || n != 0 {
		t.Fatalf("out-of-order completion drained %d (%v)", n, c)
	}
	if c, n := tr.Complete(o1); c != nil || n != 0 {
		t.Fatalf("drained before ordinal 0: %d", n)
	}
	c, n := tr.Complete(o0)
	if c == nil || c.Position != "3" || n != 3 {
		t.Fatalf("drain = %v,%d; want position 3, 3 entries", c, n)
	}
	if c, n := tr.Complete(o3); c != nil || n != 1 {
		t.Fatalf("cursorless tail: %v,%d; want nil,1", c, n)
	}
	if c, n := tr.Complete(o3); c != nil || n != 0 {
		t.Fatal("a repeated completion drained again")
	}
	if tr.Pending() != 0 || tr.Delivered() != 4 {
		t.Fatalf("pending %d delivered %d", tr.Pending(), tr.Delivered())
	}
}

func TestEchoTTLAndCap(t *testing.T) {
	e := NewEcho(60*time.Second, 3)
	e.Add(t0, "a")
	e.Add(t0.Add(time.Second), "b")
	if !e.Has(t0.Add(59*time.Second), "a") || e.Has(t0.Add(60*time.Second), "a") {
		t.Fatal("TTL boundary wrong")
	}
	e.Add(t0.Add(2*time.Second), "c")
	e.Add(t0.Add(3*time.Second), "d")
	e.Add(t0.Add(4*time.Second), "e")
	if e.Len() != 3 || e.Has(t0.Add(5*time.Second), "b") || !e.Has(t0.Add(5*time.Second), "e") {
		t.Fatalf("cap eviction wrong: len %d", e.Len())
	}
	// Re-adding refreshes and makes it newest.
	e.Add(t0.Add(6*time.Second), "c")
	e.Add(t0.Add(7*time.Second), "f")
	if !e.Has(t0.Add(8*time.Second), "c") || e.Has(t0.Add(8*time.Second), "d") {
		t.Fatal("refresh did not move the entry")
	}
	big := NewEcho(time.Minute, 10000)
	for i := range 25000 {
		big.Add(t0, fmt.Sprint(i))
	}
	if big.Len() != 10000 || !big.Has(t0, "24999") || big.Has(t0, "14999") {
		t.Fatalf("10k cap: len %d", big.Len())
	}
	big.Add(t0.Add(2*time.Minute), "late")
	if big.Len() != 1 {
		t.Fatalf("expired entries not dropped on insert: %d", big.Len())
	}
}

// One pull delivery through the machine: Delivered → ApplyPull, DeliveryDone → CommitCheckpoint.
func BenchmarkPullDeliveryStep(b *testing.B) {
	m := New(liveConfig(), DefaultTiming())
	env := Env{Now: t0}
	m.Step(env, Start{})
	m.Step(env, FeedOpened{Dir: Pull, Epoch: m.Epoch(Pull)})
	m.Step(env, FeedOpened{Dir: Push, Epoch: m.Epoch(Push)})
	ep := m.Epoch(Pull)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		eff := m.Step(env, Delivered{Dir: Pull, Epoch: ep, Entry: dwn.Entry{CID: "c", Cursor: cur("s", i+1)}})
		ap := eff[len(eff)-1].(ApplyPull)
		m.Step(env, DeliveryDone{Epoch: ep, Ordinal: ap.Ordinal, CID: "c", Outcome: OutcomeOK})
		env.Now = env.Now.Add(time.Microsecond)
	}
}
