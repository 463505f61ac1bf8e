package linkstate

import (
	"testing"
	"time"
)

// Failed passes back off exponentially up to the verify interval and stay there: a lasting
// failure costs a compare per verify interval, not one every 20 s forever.
func TestReconcileRetryBackoffCappedAtVerifyInterval(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.m.NeedsReconcile = true
	h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		h.fire(TimerReconcile)
		h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Err: "remote 503"})
		if got := h.m.TimerAt(TimerReconcile).Sub(h.now); got != w {
			t.Fatalf("retry %d armed in %v, want %v", i+1, got, w)
		}
	}
	// A settled pass resets the backoff and clears the flag.
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if h.m.NeedsReconcile || h.m.reconcile.failures != 0 || !h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatalf("after a settled pass: needsReconcile=%v failures=%d timer=%v", h.m.NeedsReconcile, h.m.reconcile.failures, h.m.TimerAt(TimerReconcile))
	}
}

// A one-way link whose pass settled (the transfer reports Converged for the link's direction
// even though the digests differ) is converged: needsReconcile is cleared and no retry is armed.
func TestOneWayReconcileSettledClearsNeedsReconcile(t *testing.T) {
	h := newHarness(t, Config{Mode: ModeLive, Pull: true})
	h.startLive()
	h.m.NeedsReconcile = true
	h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	h.fire(TimerReconcile)
	eff := h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true, Pulled: 3})
	if h.m.NeedsReconcile || !h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatalf("one-way settled pass left needsReconcile=%v, retry at %v; %s", h.m.NeedsReconcile, h.m.TimerAt(TimerReconcile), describe(eff))
	}
}
