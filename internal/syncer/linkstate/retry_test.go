package linkstate

import "testing"

// RetryNow (a person retrying dead letters) arms the reconcile timer for now, so a live link
// reconciles at once instead of at its next verify; a paused link stays paused.
func TestRetryNowReconcilesAtOnce(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	if !h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatal("a reconcile is armed before RetryNow: the test would prove nothing")
	}
	h.step(RetryNow{})
	if at := h.m.TimerAt(TimerReconcile); !at.Equal(h.now) {
		t.Fatalf("after RetryNow the reconcile timer is at %v; want now (%v)", at, h.now)
	}
	eff := h.fire(TimerReconcile)
	if s := find[StartReconcile](eff); len(s) != 1 || s[0].Reason != "dead letters retried" {
		t.Fatalf("RetryNow did not start a reconcile: %s", describe(eff))
	}

	p := newHarness(t, both())
	p.startLive()
	p.step(Suspend{})
	if eff := p.step(RetryNow{}); len(eff) != 0 {
		t.Fatalf("RetryNow on a paused link: %s", describe(eff))
	}
}
