package linkstate

import "testing"

// D22: a pushed entry refused as Unauthorized (OutcomeError) is not retried through the push
// backoff: the first answer gives the batch up to a reconcile (dirty, persisted, scheduled),
// as exhausted retries do; a transient answer still retries.
func TestPushUnauthorizedGivesUpAtOnce(t *testing.T) {
	for _, c := range []struct {
		outcome Outcome
		giveUp  bool
	}{{OutcomeError, true}, {OutcomeTransient, false}} {
		h := newHarness(t, both())
		h.startLive()
		h.deliver(Push, "p1", 1)
		fp := find[FlushPush](h.last)
		if len(fp) != 1 {
			t.Fatalf("no flush of the pushed entry: %s", describe(h.last))
		}
		eff := h.step(PushFlushed{Epoch: fp[0].Epoch, Results: []PushItemResult{{Ordinal: fp[0].Items[0].Ordinal, CID: "p1", Outcome: c.outcome, Reason: "refused"}}})
		gaveUp := h.m.NeedsReconcile && has[StartReconcile](eff) || len(published(eff, EvReconcileNeeded)) == 1
		if gaveUp != c.giveUp {
			t.Fatalf("outcome %d: gave up %v, want %v: %s", c.outcome, gaveUp, c.giveUp, describe(eff))
		}
		if c.giveUp {
			if cc := lastCommit(eff, Push); cc == nil || cc.Position != "1" {
				t.Fatalf("the given-up entry is not left to the reconcile: %s", describe(eff))
			}
			continue
		}
		if h.m.NeedsReconcile || h.m.TimerAt(TimerPushFlush).IsZero() {
			t.Fatalf("a transient refusal is not retried: %s", describe(eff))
		}
	}
}
