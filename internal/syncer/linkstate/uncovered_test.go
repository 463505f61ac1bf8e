package linkstate

import (
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Issue 10 §1: a feed that opens without a checkpoint subscribes live only, so what was
// written while it was closed is the reconcile's. Each row drives a link to one of the paths
// that open a feed from nothing and checks, at that step: the link is dirty, persisted before
// the OpenFeed; and once the feed reaches its EOSE, a reconcile is armed that clears the flag.

// quietLive brings a link live and clean with no checkpoint on direction d (the other
// direction has one): a new link whose d side never delivered anything.
func quietLive(h *harness, d Dir) {
	h.t.Helper()
	cps := [2]*dwn.Cursor{cur("s", "e", 3), cur("l", "e", 3)}
	cps[d] = nil
	h.step(Start{Checkpoints: cps})
	h.openAll()
	for _, dir := range Dirs {
		h.step(EOSE{Dir: dir, Epoch: h.m.Epoch(dir)}) // no head: nothing to commit
	}
	h.passConverges()
	h.mustPhase(Live)
	if h.m.NeedsReconcile || h.m.Checkpoint(d) != nil {
		h.t.Fatalf("setup: needsReconcile=%v checkpoint=%v", h.m.NeedsReconcile, h.m.Checkpoint(d))
	}
}

// passConverges runs the armed reconcile, which converges.
func (h *harness) passConverges() {
	h.t.Helper()
	h.fire(TimerReconcile)
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
}

func TestFeedOpenedWithoutCheckpointMarksDirty(t *testing.T) {
	gap := &dwn.GapError{Reason: "epoch_mismatch"}
	rows := []struct {
		name string
		dir  Dir
		// drive returns the effects of the step that reopened the feed from nothing.
		drive     func(h *harness, d Dir) []Effect
		wantEvent bool // reconcile:needed (the link was clean before)
	}{
		{
			name: "start with a direction that never had a checkpoint", wantEvent: true,
			drive: func(h *harness, d Dir) []Effect {
				return h.step(Start{Checkpoints: [2]*dwn.Cursor{nil, cur("l", "e", 1)}})
			},
		},
		{
			name: "quiet pull feed dropped and reopened", dir: Pull, wantEvent: true,
			drive: func(h *harness, d Dir) []Effect {
				quietLive(h, d)
				return h.step(FeedFailed{Dir: d, Epoch: h.m.Epoch(d), Err: "websocket: close 1006"})
			},
		},
		{
			name: "quiet push feed dropped and reopened", dir: Push, wantEvent: true,
			drive: func(h *harness, d Dir) []Effect {
				quietLive(h, d)
				return h.step(FeedFailed{Dir: d, Epoch: h.m.Epoch(d), Err: "websocket: close 1006"})
			},
		},
		{
			name: "resume after suspend", dir: Push, wantEvent: true,
			drive: func(h *harness, d Dir) []Effect {
				quietLive(h, d)
				h.step(Suspend{})
				return h.step(Resume{})
			},
		},
		{
			name: "repair that reset the checkpoint",
			drive: func(h *harness, d Dir) []Effect {
				quietLive(h, d)
				h.step(FeedFailed{Dir: d, Epoch: h.m.Epoch(d), Gap: gap, Err: "gone"})
				return h.step(RepairDone{Seq: h.m.repair.seq})
			},
		},
		{
			name: "E30 fresh reopen after a 410 on the repair's reopen", wantEvent: true,
			drive: func(h *harness, d Dir) []Effect {
				h.startLive()
				h.failPull()
				h.step(RepairDone{Seq: h.m.repair.seq})
				h.m.NeedsReconcile = false // isolate the E30 step: it alone must make the link dirty
				return h.step(FeedFailed{Dir: d, Epoch: h.m.Epoch(d), Gap: gap, Err: "gone"})
			},
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			h := newHarness(t, both())
			eff := r.drive(h, r.dir)
			if h.m.Checkpoint(r.dir) != nil {
				t.Fatalf("test premise: %v has a checkpoint", r.dir)
			}
			if !h.m.NeedsReconcile {
				t.Fatalf("the feed opens from nothing and the link is clean: %s", describe(eff))
			}
			dirtyAt, openAt := -1, -1
			for i, e := range eff {
				switch v := e.(type) {
				case Persist:
					if v.NeedsReconcile && dirtyAt < 0 {
						dirtyAt = i
					}
				case OpenFeed:
					if v.Dir == r.dir {
						openAt = i
					}
				}
			}
			if openAt < 0 || dirtyAt < 0 || dirtyAt > openAt {
				t.Fatalf("want a dirty Persist before the OpenFeed of %v: %s", r.dir, describe(eff))
			}
			if got := len(published(eff, EvReconcileNeeded)) > 0; got != r.wantEvent {
				t.Fatalf("reconcile:needed published = %v, want %v: %s", got, r.wantEvent, describe(eff))
			}
			// The feeds open and reach their EOSE (no head): a reconcile is armed and, once
			// it converges, the link is clean.
			h.openAll()
			for _, d := range Dirs {
				h.step(EOSE{Dir: d, Epoch: h.m.Epoch(d)})
			}
			h.mustPhase(Live)
			if h.m.TimerAt(TimerReconcile).IsZero() && !h.m.ReconcileInFlight() {
				t.Fatal("no reconcile armed after the EOSE of a feed opened from nothing")
			}
			if h.m.ReconcileInFlight() {
				h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
			}
			for h.m.NeedsReconcile && !h.m.TimerAt(TimerReconcile).IsZero() { // the pass, and a trailing one
				h.passConverges()
			}
			if h.m.NeedsReconcile {
				t.Fatal("still dirty after converged passes")
			}
		})
	}
}

// A reconcile that started before the EOSE of a feed reopened from nothing cannot vouch for
// the outage (its snapshot may predate the writes the feed skipped): its success leaves the
// link dirty and one more pass follows.
func TestReconcileBeforeUncoveredEOSEDoesNotClean(t *testing.T) {
	h := newHarness(t, both())
	quietLive(h, Pull)
	h.fire(TimerVerify)
	h.fire(TimerReconcile) // a pass in flight
	h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket: close 1006"})
	h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if !h.m.NeedsReconcile {
		t.Fatal("a pass that began before the reopened feed's EOSE cleaned the link")
	}
	if h.m.TimerAt(TimerReconcile).IsZero() {
		t.Fatal("no trailing pass armed")
	}
	h.passConverges()
	if h.m.NeedsReconcile {
		t.Fatal("the pass after the EOSE did not clean the link")
	}
}

// At the EOSE of a feed that opened from nothing, the head the dialect names becomes the
// checkpoint when nothing is pending, so the next reopen replays from it; not while a
// delivery is pending, and never over an existing checkpoint.
func TestEOSEHeadCommittedWhenNothingPending(t *testing.T) {
	head := cur("s", "e", 7)
	rows := []struct {
		name       string
		checkpoint *dwn.Cursor
		pending    bool
		eoseCursor *dwn.Cursor
		want       *dwn.Cursor // the commit expected at EOSE (nil: none)
	}{
		{name: "no checkpoint, nothing pending: head committed", eoseCursor: head, want: head},
		{name: "no checkpoint, a delivery pending: not committed", eoseCursor: head, pending: true},
		{name: "no checkpoint, no head (enbox-smt): nothing to commit"},
		{name: "invalid head: not committed", eoseCursor: &dwn.Cursor{StreamID: "s", Epoch: "e"}},
		{name: "existing checkpoint: EOSE moves nothing", checkpoint: cur("s", "e", 2), eoseCursor: head},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			h := newHarness(t, Config{Mode: ModeLive, Pull: true})
			h.step(Start{Checkpoints: [2]*dwn.Cursor{r.checkpoint, nil}})
			h.openAll()
			if r.pending {
				h.deliver(Pull, "a", 5)
			}
			eff := h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull), Cursor: r.eoseCursor})
			got := lastCommit(eff, Pull)
			switch {
			case r.want == nil && got != nil:
				t.Fatalf("committed %v at EOSE: %s", got, describe(eff))
			case r.want != nil && (got == nil || *got != *r.want):
				t.Fatalf("commit %v, want %v: %s", got, r.want, describe(eff))
			case r.want != nil && h.m.Checkpoint(Pull) == nil:
				t.Fatal("machine checkpoint not moved")
			}
			if r.want != nil {
				// The next reopen starts from the head: once the link is clean, a drop does
				// not make it dirty.
				h.passConverges()
				h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket: close 1006"})
				if h.m.NeedsReconcile {
					t.Fatal("a reopen from the committed head made the link dirty")
				}
			}
		})
	}
}

// A pass that starts after a feed reopened from nothing but ends before that feed's EOSE
// cannot vouch for the outage either: the subscription may not have reached the server when
// the pass listed the sides, so writes in between are on neither. The link stays dirty (it
// used to say clean until the EOSE dirtied it again: live, clean and no checkpoint while
// writes were missing) and the pass after the EOSE cleans it.
func TestReconcileEndingBeforeUncoveredEOSEDoesNotClean(t *testing.T) {
	h := newHarness(t, both())
	quietLive(h, Pull)
	h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket: close 1006"})
	h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	h.fire(TimerVerify)
	h.fire(TimerReconcile) // starts after the reopen, before its EOSE
	h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if !h.m.NeedsReconcile {
		t.Fatal("a pass that ended before the reopened feed's EOSE cleaned the link")
	}
	h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
	h.passConverges()
	if h.m.NeedsReconcile {
		t.Fatal("the pass after the EOSE did not clean the link")
	}
}
