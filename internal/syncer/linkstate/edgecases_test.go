package linkstate

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// One test per edge case of spec §10 that can occur in this design. The ones that cannot
// are argued in docs/decisions.md.

// E1: deliveries while the link is still initializing (one feed open, the other not yet) are
// applied and committed like live ones; nothing piles up into an overflow.
func TestE01_CatchUpBeforeLiveCommits(t *testing.T) {
	for _, stored := range []Phase{Initializing, Repairing, DegradedPoll, Live} {
		h := newHarness(t, both())
		h.step(Start{StoredPhase: stored, Checkpoints: [2]*dwn.Cursor{cur("s", "e", 0), cur("l", "e", 0)}})
		h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
		h.mustPhase(Initializing)
		for i := 1; i <= 150; i++ {
			eff := h.deliver(Pull, "c", i)
			ap := find[ApplyPull](eff)
			if len(ap) != 1 {
				t.Fatalf("stored %s: delivery %d not applied: %s", stored, i, describe(eff))
			}
			eff = h.step(DeliveryDone{Epoch: ap[0].Epoch, Ordinal: ap[0].Ordinal, Outcome: OutcomeOK})
			if c := lastCommit(eff, Pull); c == nil || c.Position != itoa(i) {
				t.Fatalf("stored %s: delivery %d did not commit: %s", stored, i, describe(eff))
			}
		}
		h.mustPhase(Initializing)
		if h.m.Pending(Pull) != 0 {
			t.Fatalf("pending = %d", h.m.Pending(Pull))
		}
	}
}

// E2: a completion from the subscription before a repair carries the old epoch and cannot
// mark the new subscription's ordinal 0 as committed.
func TestE02_StaleCompletionAfterRepairDropped(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	old := find[ApplyPull](h.deliver(Pull, "old", 1))[0]
	h.failPull()
	h.step(RepairDone{Seq: h.m.repair.seq})
	h.openAll()
	h.mustPhase(Live)
	fresh := find[ApplyPull](h.deliver(Pull, "new", 7))[0]
	if fresh.Ordinal != old.Ordinal {
		t.Fatalf("test premise: ordinals %d/%d should collide", fresh.Ordinal, old.Ordinal)
	}
	eff := h.step(DeliveryDone{Epoch: old.Epoch, Ordinal: old.Ordinal, Outcome: OutcomeOK})
	if len(eff) != 0 {
		t.Fatalf("stale completion produced effects: %s", describe(eff))
	}
	if h.m.Pending(Pull) != 1 {
		t.Fatalf("new delivery lost its slot: pending %d", h.m.Pending(Pull))
	}
	eff = h.step(DeliveryDone{Epoch: fresh.Epoch, Ordinal: fresh.Ordinal, Outcome: OutcomeOK})
	if c := lastCommit(eff, Pull); c == nil || c.Position != "7" {
		t.Fatalf("fresh completion did not commit: %s", describe(eff))
	}
}

// E3: an out-of-scope delivery goes through the tracker, so it cannot commit ahead of an
// earlier delivery still in flight, and the checkpoint never goes back.
func TestE03_OutOfScopeCommitsInOrder(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	a := find[ApplyPull](h.deliver(Pull, "a", 1))[0]
	eff := h.step(Delivered{Dir: Pull, Epoch: h.m.Epoch(Pull), Entry: entry("b", cur("s", "e", 2)), OutOfScope: true})
	if has[CommitCheckpoint](eff) || has[ApplyPull](eff) {
		t.Fatalf("out-of-scope delivery committed or applied ahead of #1: %s", describe(eff))
	}
	eff = h.step(DeliveryDone{Epoch: a.Epoch, Ordinal: a.Ordinal, Outcome: OutcomeOK})
	commits := find[CommitCheckpoint](eff)
	if len(commits) != 1 || commits[0].Cursor.Position != "2" || commits[0].Drained != 2 {
		t.Fatalf("want one commit to 2 covering both: %s", describe(eff))
	}
}

// E4: EOSE moves no checkpoint.
func TestE04_EOSEDoesNotAdvanceCheckpoint(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.deliver(Pull, "a", 1)
	eff := h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull), Cursor: cur("s", "e", 5)})
	if has[CommitCheckpoint](eff) || has[ResetCheckpoint](eff) {
		t.Fatalf("EOSE moved the checkpoint: %s", describe(eff))
	}
	if h.m.Checkpoint(Pull).Position != "0" {
		t.Fatalf("checkpoint = %v", h.m.Checkpoint(Pull))
	}
}

// E5: a failed apply never advances; Invalid is dead-lettered and the feed moves on.
func TestE05_ApplyStatusChecked(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	bad := find[ApplyPull](h.deliver(Pull, "bad", 1))[0]
	eff := h.step(DeliveryDone{Epoch: bad.Epoch, Ordinal: bad.Ordinal, CID: "bad", Outcome: OutcomeDeadLetter, Reason: "cid-mismatch"})
	if dl := find[DeadLetter](eff); len(dl) != 1 || dl[0].CID != "bad" || dl[0].Reason != "cid-mismatch" {
		t.Fatalf("no dead letter: %s", describe(eff))
	}
	if c := lastCommit(eff, Pull); c == nil || c.Position != "1" {
		t.Fatalf("feed did not move on past the invalid message: %s", describe(eff))
	}
	h.mustPhase(Live)

	fail := find[ApplyPull](h.deliver(Pull, "fail", 2))[0]
	eff = h.step(DeliveryDone{Epoch: fail.Epoch, Ordinal: fail.Ordinal, CID: "fail", Outcome: OutcomeRepair, Reason: "500"})
	if has[CommitCheckpoint](eff) {
		t.Fatalf("advanced past a failure: %s", describe(eff))
	}
	h.mustPhase(Repairing)
}

// E6: a push give-up hands every entry it drops (failed and queued) to a reconcile; the dirty
// flag is persisted before the push checkpoint moves past them; an already dirty link still
// gets a reconcile scheduled.
func TestE06_PushGiveUpMarksDirtyBeforeCommit(t *testing.T) {
	for _, alreadyDirty := range []bool{false, true} {
		h := newHarness(t, both())
		h.startLive()
		h.m.NeedsReconcile = alreadyDirty
		h.deliver(Push, "p1", 1)
		h.deliver(Push, "p2", 2) // queued behind the in-flight flush
		var eff []Effect
		for i := 0; i < 4; i++ {
			if i > 0 {
				h.fire(TimerPushFlush)
			}
			eff = h.step(PushFlushed{Epoch: h.m.Epoch(Push), Err: "503"})
		}
		if !h.m.NeedsReconcile {
			t.Fatal("not dirty after give-up")
		}
		persistAt, commitAt := -1, -1
		for i, e := range eff {
			switch v := e.(type) {
			case Persist:
				if v.NeedsReconcile && persistAt < 0 {
					persistAt = i
				}
			case CommitCheckpoint:
				if commitAt < 0 {
					commitAt = i
				}
			}
		}
		if c := lastCommit(eff, Push); commitAt < 0 || c.Position != "2" {
			t.Fatalf("given-up entries never committed: %s", describe(eff))
		}
		if !alreadyDirty && (persistAt < 0 || persistAt > commitAt) {
			t.Fatalf("dirty flag not persisted before the commit: %s", describe(eff))
		}
		if got := len(published(eff, EvReconcileNeeded)); got != map[bool]int{false: 1, true: 0}[alreadyDirty] {
			t.Fatalf("dirty=%v: %d reconcile:needed events", alreadyDirty, got)
		}
		if h.m.TimerAt(TimerReconcile).IsZero() {
			t.Fatalf("dirty=%v: no reconcile scheduled", alreadyDirty)
		}
	}
}

// E7: a request made while a reconcile is in flight becomes a trailing pass, and the retry of
// a failed or non-converged pass is armed after the in-flight marker is gone.
func TestE07_ReconcileRetryNotLost(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.m.NeedsReconcile = true
	h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	h.fire(TimerReconcile)
	if !h.m.ReconcileInFlight() {
		t.Fatal("reconcile not started")
	}
	// Non-converged: the 5 s retry must be armed.
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: false})
	if got := h.m.TimerAt(TimerReconcile).Sub(h.now); got != 5*time.Second {
		t.Fatalf("retry armed in %v, want 5s", got)
	}
	h.fire(TimerReconcile)
	// A request during the flight → exactly one trailing pass after it.
	h.m.NeedsReconcile = true
	h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	if !h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatal("a timer was armed while in flight")
	}
	eff := h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if got := h.m.TimerAt(TimerReconcile).Sub(h.now); got != 500*time.Millisecond {
		t.Fatalf("trailing pass in %v, want 500ms; %s", got, describe(eff))
	}
	// A failure that throws: also retried.
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Err: "remote 503"})
	if h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatal("retry after an error was dropped")
	}
}

// E7 (continued): a converged pass that started before the link got dirty must not clear the
// flag.
func TestE07_DirtyDuringFlightNotCleared(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.fire(TimerVerify)
	h.fire(TimerReconcile)
	h.deliver(Push, "p", 1)
	for i := 0; i < 4; i++ {
		if i > 0 {
			h.fire(TimerPushFlush)
		}
		h.step(PushFlushed{Epoch: h.m.Epoch(Push), Err: "503"})
	}
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if !h.m.NeedsReconcile {
		t.Fatal("a pass that began before the push give-up cleared needsReconcile")
	}
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if h.m.NeedsReconcile {
		t.Fatal("the trailing pass did not clear needsReconcile")
	}
}

// E8: a fresh link (nothing replicated yet) is dirty from the start, so the bootstrap
// reconcile runs once the feeds are open and survives a crash.
func TestE08_FreshLinkBootstrapReconcile(t *testing.T) {
	h := newHarness(t, both())
	eff := h.step(Start{NeedsBootstrap: true})
	if p := find[Persist](eff); len(p) == 0 || !p[len(p)-1].NeedsReconcile {
		t.Fatalf("fresh link not persisted dirty: %s", describe(eff))
	}
	h.openAll()
	if got := h.m.TimerAt(TimerReconcile).Sub(h.now); got != time.Second {
		t.Fatalf("bootstrap reconcile in %v, want 1s", got)
	}
	// A direction enabled later (pull-only → both) has no push checkpoint: dirty as well.
	h2 := newHarness(t, both())
	h2.step(Start{Checkpoints: [2]*dwn.Cursor{cur("s", "e", 9), nil}})
	if !h2.m.NeedsReconcile {
		t.Fatal("a feed without a checkpoint did not make the link dirty")
	}
	h3 := newHarness(t, Config{Mode: ModeLive, Pull: true})
	h3.step(Start{Checkpoints: [2]*dwn.Cursor{cur("s", "e", 9), nil}})
	if h3.m.NeedsReconcile {
		t.Fatal("a disabled direction's missing checkpoint made the link dirty")
	}
}

// E9: a non-410 failure to open is retried through repair, not dropped.
func TestE09_InitFailureRetried(t *testing.T) {
	h := newHarness(t, both())
	h.step(Start{})
	h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "connection refused"})
	h.mustPhase(Repairing)
	h.step(RepairDone{Seq: h.m.repair.seq, Err: "connection refused"})
	if h.m.TimerAt(TimerRepairRetry).IsZero() {
		t.Fatal("no retry armed")
	}
	eff := h.fire(TimerRepairRetry)
	if !has[StartRepair](eff) {
		t.Fatalf("retry did not start a repair: %s", describe(eff))
	}
}

// E10: a repair that outlasts the degraded-poll interval does not stop the poll, and its
// failure leaves the timer armed.
func TestE10_DegradedPollSurvivesLongRepair(t *testing.T) {
	h := newHarness(t, both())
	enterDegraded(h)
	h.fire(TimerDegradedPoll)
	seq := h.m.repair.seq
	eff := h.fire(TimerDegradedPoll) // the repair is still running
	if has[StartRepair](eff) {
		t.Fatal("a second repair started over a running one")
	}
	if h.m.TimerAt(TimerDegradedPoll).IsZero() {
		t.Fatal("the poll stopped while a repair was running")
	}
	h.step(RepairDone{Seq: seq, Err: "slow and failed"})
	h.mustPhase(DegradedPoll)
	if h.m.TimerAt(TimerDegradedPoll).IsZero() {
		t.Fatal("the poll is gone after the long repair failed")
	}
	eff = h.fire(TimerDegradedPoll)
	if !has[StartRepair](eff) {
		t.Fatal("next tick did not try again")
	}
}

// E11: a push flush that finishes after teardown (or after the push feed was reopened) arms
// nothing and commits nothing.
func TestE11_PushFlushAfterTeardownIgnored(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.deliver(Push, "p", 1)
	epoch := h.m.Epoch(Push)
	h.failPull() // repair closes both feeds
	if eff := h.step(PushFlushed{Epoch: epoch, Err: "503"}); len(eff) != 0 {
		t.Fatalf("stale flush after repair: %s", describe(eff))
	}
	h2 := newHarness(t, both())
	h2.startLive()
	h2.deliver(Push, "p", 1)
	h2.step(Stop{})
	if eff := h2.step(PushFlushed{Epoch: h2.m.Epoch(Push), Err: "503"}); len(eff) != 0 {
		t.Fatalf("flush after stop: %s", describe(eff))
	}
}

// E12: after Stop, no input mutates anything.
func TestE12_NoWritesAfterStop(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	ap := find[ApplyPull](h.deliver(Pull, "a", 1))[0]
	h.step(Stop{})
	for _, in := range []Input{
		DeliveryDone{Epoch: ap.Epoch, Ordinal: ap.Ordinal, Outcome: OutcomeOK},
		EOSE{Dir: Pull, Epoch: ap.Epoch},
		FeedFailed{Dir: Pull, Epoch: ap.Epoch, Err: "x"},
		Delivered{Dir: Pull, Epoch: ap.Epoch, Entry: entry("b", cur("s", "e", 2))},
		ReconcileCompleted{Seq: 1, Converged: true},
		RepairDone{Seq: 1},
		PollTick{},
	} {
		if eff := h.step(in); len(eff) != 0 {
			t.Fatalf("%T after stop: %s", in, describe(eff))
		}
	}
}

// E13: a stale durable status from an earlier run does not change how this run behaves; the
// status is overwritten when the feeds open.
func TestE13_StaleDurableStatusOverwritten(t *testing.T) {
	h := newHarness(t, both())
	h.step(Start{StoredPhase: Repairing})
	h.mustPhase(Initializing)
	h.openAll()
	sc := published(h.last, EvStatusChange)
	if len(sc) != 1 || sc[0].From != string(Repairing) || sc[0].To != string(Live) {
		t.Fatalf("status change = %+v", sc)
	}
	if p := find[Persist](h.last); len(p) == 0 || p[len(p)-1].Phase != Live {
		t.Fatal("live not persisted")
	}
}

// E14: what a reconcile copied is recorded like a live transfer, so the feeds do not send it
// back; a message that still comes back (e.g. delivered before the reconcile finished) is
// pushed, and the remote's Duplicate counts as success.
func TestE14_ReconcileEchoSuppressedOrDuplicate(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.fire(TimerVerify)
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true, Crossed: [2][]string{{"pulled-by-reconcile"}, {"pushed-by-reconcile"}}})
	if eff := h.deliver(Push, "pulled-by-reconcile", 1); has[FlushPush](eff) || lastCommit(eff, Push) == nil {
		t.Fatalf("reconcile-pulled message pushed back: %s", describe(eff))
	}
	if eff := h.deliver(Pull, "pushed-by-reconcile", 1); has[ApplyPull](eff) || lastCommit(eff, Pull) == nil {
		t.Fatalf("reconcile-pushed message pulled back: %s", describe(eff))
	}
	eff := h.deliver(Push, "from-reconcile", 2)
	fp := find[FlushPush](eff)
	if len(fp) != 1 {
		t.Fatalf("not pushed: %s", describe(eff))
	}
	eff = h.step(PushFlushed{Epoch: fp[0].Epoch, Results: []PushItemResult{{Ordinal: fp[0].Items[0].Ordinal, CID: "from-reconcile", Outcome: OutcomeOK, Reason: "Duplicate"}}})
	if lastCommit(eff, Push) == nil {
		t.Fatalf("duplicate not treated as success: %s", describe(eff))
	}
}

// E16 documents the seed: there, an entry the push could not read (gone locally: deleted or
// superseded before the push) came back transient, burned the retry budget, and then the link
// was dirty and the feed moved on. The machine still behaves so when told "transient"; dwnsync
// never tells it that for this case: the Copier reports SourceGone, which the engine maps to
// OutcomeOK (decision D8; engine test TestPushOfMessageGoneLocallyCommitsWithoutDirty).
func TestE16_SeedTransientNotFoundBurnsRetries_DwnsyncMapsSourceGoneToOK(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.deliver(Push, "gone", 1)
	for i := 0; i < 4; i++ {
		if i > 0 {
			h.fire(TimerPushFlush)
		}
		h.step(PushFlushed{Epoch: h.m.Epoch(Push), Results: []PushItemResult{{Ordinal: 0, CID: "gone", Outcome: OutcomeTransient, Reason: "not found locally"}}})
	}
	if !h.m.NeedsReconcile || h.m.Pending(Push) != 0 {
		t.Fatalf("seed behaviour: dirty=%v pending=%d", h.m.NeedsReconcile, h.m.Pending(Push))
	}

	// What dwnsync reports for the same entry: OK on the first flush, committed, not dirty.
	h = newHarness(t, both())
	h.startLive()
	h.deliver(Push, "gone", 1)
	eff := h.step(PushFlushed{Epoch: h.m.Epoch(Push), Results: []PushItemResult{{Ordinal: 0, CID: "gone", Outcome: OutcomeOK, Reason: "SourceGone"}}})
	if h.m.NeedsReconcile || h.m.Pending(Push) != 0 || lastCommit(eff, Push) == nil {
		t.Fatalf("SourceGone as OK: dirty=%v pending=%d; %s", h.m.NeedsReconcile, h.m.Pending(Push), describe(eff))
	}
}

// E17: a reconcile that could not fetch everything does not converge; it is retried and the
// link stays dirty.
func TestE17_PartialReconcileRetried(t *testing.T) {
	h := newHarness(t, both())
	h.step(Start{NeedsReconcile: true, Checkpoints: [2]*dwn.Cursor{cur("s", "e", 1), cur("l", "e", 1)}})
	h.openAll()
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: false, Pulled: 3})
	if !h.m.NeedsReconcile || h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatalf("dirty=%v retry=%v", h.m.NeedsReconcile, h.m.TimerAt(TimerReconcile))
	}
}

// E21: the same CID delivered twice (diff over-report, replay after repair) completes twice.
func TestE21_DuplicateDeliveriesIdempotent(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	a := find[ApplyPull](h.deliver(Pull, "same", 1))[0]
	b := find[ApplyPull](h.deliver(Pull, "same", 2))[0]
	h.step(DeliveryDone{Epoch: b.Epoch, Ordinal: b.Ordinal, CID: "same", Outcome: OutcomeOK})
	eff := h.step(DeliveryDone{Epoch: a.Epoch, Ordinal: a.Ordinal, CID: "same", Outcome: OutcomeOK})
	if c := lastCommit(eff, Pull); c == nil || c.Position != "2" {
		t.Fatalf("commit: %s", describe(eff))
	}
}

// E22: an empty checkpoint accepts any domain; the first cursor then fixes it.
func TestE22_EmptyCheckpointFixesDomainOnFirstCursor(t *testing.T) {
	h := newHarness(t, both())
	h.step(Start{})
	h.openAll()
	eff := h.step(Delivered{Dir: Pull, Epoch: h.m.Epoch(Pull), Entry: entry("a", cur("s", "epoch-9", 1))})
	if !has[ApplyPull](eff) {
		t.Fatalf("first domain refused: %s", describe(eff))
	}
	h.step(Delivered{Dir: Pull, Epoch: h.m.Epoch(Pull), Entry: entry("b", cur("s", "epoch-10", 2))})
	h.mustPhase(Repairing)
}

// E23: after a 410 the feed resumes from the gap's latestAvailable, after the reconcile.
func TestE23_ResumeFromLatestAvailable(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	latest := cur("s", "e", 77)
	h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Gap: &dwn.GapError{Reason: "token_too_old", LatestAvailable: latest}})
	eff := h.step(RepairDone{Seq: h.m.repair.seq})
	var order []string
	for _, e := range eff {
		switch v := e.(type) {
		case ResetCheckpoint:
			if v.Dir == Pull {
				if v.To == nil || v.To.Position != "77" {
					t.Fatalf("pull reset to %v, want 77", v.To)
				}
				order = append(order, "reset")
			} else if v.To == nil || v.To.Position != "0" {
				t.Fatalf("push reset to %v, want its own checkpoint", v.To)
			}
		case OpenFeed:
			order = append(order, "open")
		}
	}
	if len(order) < 2 || order[0] != "reset" {
		t.Fatalf("reset must precede reopen: %v", order)
	}
}

// E24: a reconcile never starts while a repair runs; the request is not lost, the repair's
// own post-repair reconcile covers it. A poll tick during a running pass is answered by it.
func TestE24_ConcurrentPathsSerialised(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.step(TimerFired{Timer: TimerVerify, At: h.m.TimerAt(TimerVerify)})
	h.failPull()
	eff := h.fire(TimerReconcile)
	if has[StartReconcile](eff) {
		t.Fatal("reconcile ran during a repair")
	}
	h.step(RepairDone{Seq: h.m.repair.seq})
	h.openAll()
	if h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatal("reconcile lost after repair")
	}

	p := newHarness(t, Config{Mode: ModePoll, Pull: true, Push: true})
	p.step(Start{})
	p.step(PollTick{})
	if eff := p.step(PollTick{}); has[StartReconcile](eff) || has[PollResult](eff) {
		t.Fatalf("second tick during a pass: %s", describe(eff))
	}
	eff = p.step(ReconcileCompleted{Seq: p.m.reconcile.seq, Converged: true})
	if len(find[PollResult](eff)) != 1 {
		t.Fatalf("tick not answered: %s", describe(eff))
	}
}

// E25: entries that join a retrying batch share its budget; one success resets it.
func TestE25_PerRuntimeRetryBudget(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	fp := find[FlushPush](h.deliver(Push, "a", 1))[0]
	h.step(PushFlushed{Epoch: fp.Epoch, Err: "503"})
	if got := h.m.TimerAt(TimerPushFlush).Sub(h.now); got != 250*time.Millisecond {
		t.Fatalf("first retry in %v, want 250ms", got)
	}
	h.deliver(Push, "b", 2) // joins the retry batch
	eff := h.fire(TimerPushFlush)
	fp = find[FlushPush](eff)[0]
	if len(fp.Items) != 2 || fp.Attempt != 1 {
		t.Fatalf("retry batch = %+v", fp)
	}
	h.step(PushFlushed{Epoch: fp.Epoch, Err: "503"})
	if got := h.m.TimerAt(TimerPushFlush).Sub(h.now); got != time.Second {
		t.Fatalf("second retry in %v, want 1s", got)
	}
	fp = find[FlushPush](h.fire(TimerPushFlush))[0]
	eff = h.step(PushFlushed{Epoch: fp.Epoch, Results: []PushItemResult{{Ordinal: 0, Outcome: OutcomeOK}, {Ordinal: 1, Outcome: OutcomeOK}}})
	if c := lastCommit(eff, Push); c == nil || c.Position != "2" {
		t.Fatalf("no commit: %s", describe(eff))
	}
	fp = find[FlushPush](h.deliver(Push, "c", 3))[0]
	if fp.Attempt != 0 {
		t.Fatalf("budget not reset after success: attempt %d", fp.Attempt)
	}
}

// E27: a corrupted stored cursor is reset and the link reconciles.
func TestE27_CorruptedCursorReset(t *testing.T) {
	h := newHarness(t, both())
	eff := h.step(Start{Checkpoints: [2]*dwn.Cursor{{StreamID: "s", Epoch: "", Position: "3"}, cur("l", "e", 1)}})
	rs := find[ResetCheckpoint](eff)
	if len(rs) != 1 || rs[0].Dir != Pull || rs[0].To != nil {
		t.Fatalf("resets = %+v", rs)
	}
	if !h.m.NeedsReconcile {
		t.Fatal("not dirty")
	}
}

// E29: echo suppression is per link (= per remote endpoint) and both ways.
func TestE29_EchoPerEndpointBothWays(t *testing.T) {
	a := newHarness(t, both()) // link to remote A
	b := newHarness(t, both()) // link to remote B, same tenant and local
	a.startLive()
	b.startLive()
	ap := find[ApplyPull](a.deliver(Pull, "m", 1))[0]
	a.step(DeliveryDone{Epoch: ap.Epoch, Ordinal: ap.Ordinal, CID: "m", Outcome: OutcomeOK})
	// Local's feed now shows m on both links: A must not push it back, B must push it.
	if eff := a.deliver(Push, "m", 1); has[FlushPush](eff) || lastCommit(eff, Push) == nil {
		t.Fatalf("link A pushed an echo or did not move on: %s", describe(eff))
	}
	if eff := b.deliver(Push, "m", 1); !has[FlushPush](eff) {
		t.Fatalf("link B did not fan out: %s", describe(eff))
	}
	// Pushed to B, then B's feed shows it: not pulled back.
	b.step(PushFlushed{Epoch: b.m.Epoch(Push), Results: []PushItemResult{{Ordinal: 0, CID: "m", Outcome: OutcomeOK}}})
	if eff := b.deliver(Pull, "m", 1); has[ApplyPull](eff) {
		t.Fatalf("link B pulled back its own push: %s", describe(eff))
	}
	// After the TTL, no suppression.
	a.advance(61 * time.Second)
	if eff := a.deliver(Push, "m", 2); !has[FlushPush](eff) {
		t.Fatalf("expired echo still suppressed: %s", describe(eff))
	}
}

// E30: a 410 on the reopen during repair resets the token and retries once; a second 410
// fails the repair.
func TestE30_GapOnReopenRetriedOnce(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.failPull()
	h.step(RepairDone{Seq: h.m.repair.seq})
	gap := &dwn.GapError{Reason: "token_too_old"}
	eff := h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Gap: gap})
	rs := find[ResetCheckpoint](eff)
	if len(rs) != 1 || rs[0].To != nil || !has[OpenFeed](eff) {
		t.Fatalf("no fresh reopen: %s", describe(eff))
	}
	h.mustPhase(Repairing)
	eff = h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Gap: gap})
	if len(published(eff, EvRepairFailed)) != 1 {
		t.Fatalf("second 410 did not fail the repair: %s", describe(eff))
	}
	// A later successful attempt gets its own one retry again.
	h.fire(TimerRepairRetry)
	h.step(RepairDone{Seq: h.m.repair.seq})
	eff = h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Gap: gap})
	if !has[OpenFeed](eff) {
		t.Fatalf("next attempt did not get its retry: %s", describe(eff))
	}
	h.openAll()
	h.mustPhase(Live)
}

func itoa(i int) string { return cur("", "", i).Position }
