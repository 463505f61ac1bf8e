package linkstate

import (
	"fmt"
	"testing"
	"time"
)

func TestTrackerCommitsContiguously(t *testing.T) {
	tr := NewTracker()
	o0 := tr.Deliver(cur("s", "e", 1))
	o1 := tr.Deliver(nil) // no cursor (web5 mid-page)
	o2 := tr.Deliver(cur("s", "e", 3))
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
	for i := 0; i < 25000; i++ {
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

// Push timing: the first write in a quiet window goes at once; writes during the flight wait
// and go out one debounce (100 ms) after it; then the window is quiet again.
func TestPushImmediateFirstThenDebounce(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	eff := h.deliver(Push, "a", 1)
	if fp := find[FlushPush](eff); len(fp) != 1 || len(fp[0].Items) != 1 {
		t.Fatalf("first write not pushed at once: %s", describe(eff))
	}
	for i := 2; i <= 4; i++ {
		if eff := h.deliver(Push, fmt.Sprint("w", i), i); has[FlushPush](eff) {
			t.Fatal("pushed during an in-flight flush")
		}
	}
	h.advance(40 * time.Millisecond)
	h.step(PushFlushed{Epoch: h.m.Epoch(Push), Results: []PushItemResult{{Ordinal: 0, Outcome: OutcomeOK}}})
	if got := h.m.TimerAt(TimerPushFlush).Sub(h.now); got != 100*time.Millisecond {
		t.Fatalf("debounce %v, want 100ms", got)
	}
	if eff := h.deliver(Push, "w5", 5); has[FlushPush](eff) {
		t.Fatal("pushed while the debounce timer is armed")
	}
	eff = h.fire(TimerPushFlush)
	fp := find[FlushPush](eff)
	if len(fp) != 1 || len(fp[0].Items) != 4 {
		t.Fatalf("debounced batch: %s", describe(eff))
	}
	var res []PushItemResult
	for _, it := range fp[0].Items {
		res = append(res, PushItemResult{Ordinal: it.Ordinal, Outcome: OutcomeOK})
	}
	eff = h.step(PushFlushed{Epoch: fp[0].Epoch, Results: res})
	if c := lastCommit(eff, Push); c == nil || c.Position != "5" {
		t.Fatalf("commit after batch: %s", describe(eff))
	}
	if !h.m.TimerAt(TimerPushFlush).IsZero() {
		t.Fatal("timer armed with nothing queued")
	}
	if eff := h.deliver(Push, "w6", 6); !has[FlushPush](eff) {
		t.Fatal("quiet window: not immediate")
	}
}

// Retries at +250 ms, +1 s, +2 s; the fourth failure gives up.
func TestPushRetrySchedule(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.deliver(Push, "a", 1)
	var delays []time.Duration
	for i := 0; i < 4; i++ {
		if i > 0 {
			delays = append(delays, h.m.TimerAt(TimerPushFlush).Sub(h.now))
			h.fire(TimerPushFlush)
		}
		h.step(PushFlushed{Epoch: h.m.Epoch(Push), Err: "500"})
	}
	want := []time.Duration{250 * time.Millisecond, time.Second, 2 * time.Second}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	if !h.m.NeedsReconcile || len(published(h.last, EvReconcileNeeded)) != 1 {
		t.Fatalf("give-up: %s", describe(h.last))
	}
	if got := h.m.TimerAt(TimerReconcile).Sub(h.now); got != 1500*time.Millisecond {
		t.Fatalf("reconcile in %v", got)
	}
	// The reconcile clears it.
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if h.m.NeedsReconcile {
		t.Fatal("converged reconcile did not clear needsReconcile")
	}
}

func TestReconcileEarliestDeadlineWins(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	o := &out{}
	env := Env{Now: h.now}
	h.m.requestReconcile(env, o, 5*time.Second, "a")
	h.m.requestReconcile(env, o, 500*time.Millisecond, "b")
	h.m.requestReconcile(env, o, 3*time.Second, "c")
	if got := h.m.TimerAt(TimerReconcile).Sub(h.now); got != 500*time.Millisecond {
		t.Fatalf("armed in %v, want the earliest 500ms", got)
	}
	if n := len(find[SetTimer](o.effects)); n != 2 {
		t.Fatalf("%d SetTimer effects, want 2 (the later request arms nothing)", n)
	}
}
