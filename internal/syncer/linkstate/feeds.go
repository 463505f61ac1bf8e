package linkstate

import "github.com/dwnsync/dwnsync/internal/dwn"

// openFeeds starts every enabled feed under a new epoch.
func (m *Machine) openFeeds(o *out) {
	for _, d := range Dirs {
		if m.cfg.enabled(d) {
			m.openFeed(o, d)
		}
	}
	if m.cfg.Mode == ModePoll && m.phase == Initializing {
		// Poll links have no feeds; they go live with their first successful poll.
		return
	}
}

func (m *Machine) openFeed(o *out, d Dir) {
	f := &m.feeds[d]
	if f.running {
		o.add(CloseFeed{Dir: d})
	}
	reopened := f.reopened
	f.epoch++
	f.running, f.open, f.eose, f.domain = true, false, false, ""
	f.reopened = reopened
	f.tracker = NewTracker()
	if d == Push {
		m.batch.reset()
		m.cancelTimer(o, TimerPushFlush)
	}
	f.fromNothing = m.checkpoint[d] == nil
	if f.fromNothing {
		m.dirtyForUncoveredFeed(o, d)
	}
	o.add(OpenFeed{Dir: d, Epoch: f.epoch})
}

// dirtyForUncoveredFeed: feed d opens without a checkpoint, so the server subscribes it live only
// and whatever was written while it was closed (and every delivery that was in flight) is skipped.
// Only a reconcile can cover that, so the link is dirty (persisted before the feed opens) until one
// that starts after this feed's EOSE converges (issue 10 §1). Every path that opens a feed comes
// through here: a new link, a quiet direction reopened after a drop, a repair or a retry of
// docs/engine-behaviour.md#e30 that reset the checkpoint, a resume after a suspend.
func (m *Machine) dirtyForUncoveredFeed(o *out, d Dir) {
	wasDirty := m.needsReconcile
	m.markDirty(o)
	if !wasDirty {
		o.add(Publish{Type: EvReconcileNeeded, Reason: "feed-resumed-without-checkpoint", Message: d.String()})
	}
}

// uncoveredFeedOpen reports whether a feed that opened without a checkpoint has not reached
// its EOSE yet: no pass that ends before then can vouch for the writes that feed skipped.
func (m *Machine) uncoveredFeedOpen() bool {
	for _, d := range Dirs {
		if f := m.feeds[d]; f.running && f.fromNothing {
			return true
		}
	}
	return false
}

// closeFeeds closes every running feed; their epochs move on so late results are stale.
func (m *Machine) closeFeeds(o *out) {
	for _, d := range Dirs {
		f := &m.feeds[d]
		if f.running {
			o.add(CloseFeed{Dir: d})
		}
		f.epoch++
		f.running, f.open, f.eose, f.domain = false, false, false, ""
		f.reopened, f.fromNothing = false, false
		f.tracker = NewTracker()
	}
	m.batch.reset()
	m.cancelTimer(o, TimerPushFlush)
}

func (m *Machine) current(d Dir, epoch uint64) bool {
	f := m.feeds[d]
	return f.running && f.epoch == epoch
}

func (m *Machine) allOpen() bool {
	for _, d := range Dirs {
		if m.cfg.enabled(d) && !m.feeds[d].open {
			return false
		}
	}
	return true
}

func (m *Machine) feedOpened(env Env, o *out, v FeedOpened) {
	if !m.current(v.Dir, v.Epoch) {
		return
	}
	m.feeds[v.Dir].open = true
	if !m.allOpen() {
		return
	}
	switch {
	case m.repair.active && m.repair.reopening:
		m.repairSucceeded(env, o)
	case m.phase == Initializing:
		m.goLive(env, o)
	}
}

// goLive: every feed of a starting link is open.
func (m *Machine) goLive(env Env, o *out) {
	from := m.storedPhase
	m.phase = Live
	m.setConnectivity(o, Online, true)
	m.persist(o)
	o.add(Publish{Type: EvStatusChange, From: string(from), To: string(Live)})
	m.storedPhase = Live
	if m.needsReconcile {
		m.requestReconcile(env, o, m.t.ReconcileStartupDirty, "startup-dirty")
	}
	m.resumeDeferred(env, o, 0)
	m.armVerify(env, o)
}

func (m *Machine) armVerify(env Env, o *out) {
	if m.cfg.Mode == ModeLive && m.t.VerifyInterval > 0 {
		if _, ok := m.timers[TimerVerify]; !ok {
			m.setTimer(o, TimerVerify, env.Now.Add(m.t.VerifyInterval))
		}
	}
}

func (m *Machine) feedFailed(env Env, o *out, v FeedFailed) {
	if !m.current(v.Dir, v.Epoch) {
		return
	}
	m.setError(v.Dir.String()+" feed: "+v.Err, v.ErrKind)
	if m.repair.active && m.repair.reopening {
		// docs/engine-behaviour.md#e30: a 410 on the reopen means the resume token is stale: reset
		// it and open once more from nothing (the repair's reconcile covered the history).
		if v.Gap != nil && !m.repair.retried[v.Dir] {
			m.repair.retried[v.Dir] = true
			m.checkpoint[v.Dir] = nil
			o.add(ResetCheckpoint{Dir: v.Dir, To: nil})
			m.openFeed(o, v.Dir)
			return
		}
		m.repairFailed(env, o, m.lastError, m.lastErrorKind)
		return
	}
	if f := &m.feeds[v.Dir]; v.Gap == nil && f.open && !f.reopened && m.phase == Live {
		// An open feed that ends (a dropped WebSocket, a server closing a slow subscription) is
		// first just reopened from its contiguous checkpoint, as the seed's resubscribe did;
		// if it ends again before reaching its EOSE, the link repairs.
		m.openFeed(o, v.Dir)
		m.feeds[v.Dir].reopened = true
		return
	}
	var resume *dwn.Cursor
	reason := "feed-failed"
	if v.Gap != nil {
		reason = "ProgressGap"
		resume = v.Gap.LatestAvailable
		o.add(Publish{Type: EvGapDetected, Reason: "ProgressGap", Message: v.Dir.String() + ": " + v.Gap.Reason})
	}
	// Any failure of a feed, at start-up or later, goes through repair: it is retried with backoff
	// and ends in degraded_poll, never silently dropped (fixes docs/engine-behaviour.md#e9).
	m.enterRepairing(env, o, v.Dir, reason, resume, v.Gap != nil)
}

func (m *Machine) eose(env Env, o *out, v EOSE) {
	if !m.current(v.Dir, v.Epoch) {
		return
	}
	if v.Cursor != nil && !m.domainOK(v.Dir, *v.Cursor) {
		m.enterRepairing(env, o, v.Dir, "token-domain-mismatch", nil, false)
		return
	}
	f := &m.feeds[v.Dir]
	f.eose = true
	if f.reopened && m.phase == Live {
		m.setError("", "") // the reopened feed caught up: its end is resolved
	}
	f.reopened = false
	if f.fromNothing {
		// Everything after this EOSE is live; what came before it is the reconcile's. Marking
		// dirty again here keeps a pass that started earlier from clearing the flag.
		f.fromNothing = false
		m.markDirty(o)
		m.commitHead(o, v.Dir, v.Cursor)
	}
	if m.phase == Live || m.phase == Initializing {
		m.setConnectivity(o, Online, true)
	}
	if m.needsReconcile && m.phase == Live {
		m.requestReconcile(env, o, m.t.ReconcileEOSEDirty, "eose-dirty")
	}
}

// commitHead gives a feed that opened without a checkpoint the position its EOSE names (the head,
// for a live-only subscription, where the dialect reports one), so the next reopen replays from
// there instead of skipping the outage. Only when nothing is pending: otherwise a delivery before
// the EOSE may still be in flight and the head would pass it (docs/engine-behaviour.md#e4).
func (m *Machine) commitHead(o *out, d Dir, head *dwn.Cursor) {
	f := &m.feeds[d]
	if head == nil || !head.Valid() || m.checkpoint[d] != nil || f.tracker.Pending() > 0 {
		return
	}
	cp := *head
	m.checkpoint[d] = &cp
	o.add(CommitCheckpoint{Dir: d, Epoch: f.epoch, Cursor: cp})
}

// domainOK: a cursor must be in the checkpoint's domain, or in the domain of the first cursor
// this epoch saw when there is no checkpoint yet (docs/engine-behaviour.md#e22).
func (m *Machine) domainOK(d Dir, c dwn.Cursor) bool {
	f := &m.feeds[d]
	want := ""
	if cp := m.checkpoint[d]; cp != nil && cp.Valid() {
		want = cp.Domain()
	} else if f.domain != "" {
		want = f.domain
	}
	if want == "" {
		f.domain = c.Domain()
		return true
	}
	return c.Domain() == want
}

func (m *Machine) delivered(env Env, o *out, v Delivered) {
	if !m.current(v.Dir, v.Epoch) {
		return
	}
	if v.Entry.Cursor != nil && !m.domainOK(v.Dir, *v.Entry.Cursor) {
		m.enterRepairing(env, o, v.Dir, "token-domain-mismatch", nil, false)
		return
	}
	f := &m.feeds[v.Dir]
	ord := f.tracker.Deliver(v.Entry.Cursor)
	if f.tracker.Pending() > m.t.MaxUncommitted {
		m.enterRepairing(env, o, v.Dir, "overflow", nil, false)
		return
	}
	// Out of scope, or an echo of what just crossed the other way: commit in order, skip.
	if v.OutOfScope || (v.Entry.CID != "" && m.echo[1-v.Dir].Has(env.Now, v.Entry.CID)) {
		m.complete(o, v.Dir, ord)
		return
	}
	if v.Dir == Pull {
		// Recorded when the apply starts, not when it ends: local's feed can show the message
		// before the apply's answer is back, and it must not be pushed back
		// (docs/engine-behaviour.md#e29). Local then holds it, or the apply failed and repair takes
		// over; either way not an echo.
		m.noteEcho(env, Pull, v.Entry.CID)
		o.add(ApplyPull{Epoch: v.Epoch, Ordinal: ord, Entry: v.Entry})
		return
	}
	m.batch.queue = append(m.batch.queue, PushItem{Ordinal: ord, Entry: v.Entry})
	if !m.batch.flushing && !m.batch.timerArmed {
		m.flushPush(env, o) // immediate-first
	}
}

func (m *Machine) noteEcho(env Env, d Dir, cid string) {
	if cid != "" {
		m.echo[d].Add(env.Now, cid)
	}
}

// complete marks a delivery done and commits the checkpoint if it advanced contiguously. The
// drained deliveries leave the feed's window (Release), so the reader never has more than
// MaxUncommitted deliveries pending: a slow or retrying delivery holds the feed back instead of
// letting later ones pile up past it.
func (m *Machine) complete(o *out, d Dir, ord uint64) {
	f := &m.feeds[d]
	c, n := f.tracker.Complete(ord)
	if n > 0 {
		o.add(Release{Dir: d, Epoch: f.epoch, N: n})
	}
	if c == nil {
		return
	}
	cp := *c
	m.checkpoint[d] = &cp
	o.add(CommitCheckpoint{Dir: d, Epoch: f.epoch, Cursor: cp, Drained: n})
}

func (m *Machine) deliveryDone(env Env, o *out, v DeliveryDone) {
	if !m.current(Pull, v.Epoch) {
		return
	}
	switch v.Outcome {
	case OutcomeOK:
		if v.CID != "" {
			m.echo[Pull].Add(env.Now, v.CID)
		}
	case OutcomeDeadLetter:
		o.add(DeadLetter{Dir: Pull, CID: v.CID, Reason: v.Reason})
	case OutcomeTransient, OutcomeRepair:
		// The worker already retried; never advance past a failure: repair fills the gap.
		m.setError("pull "+v.CID+": "+v.Reason, v.ErrKind)
		m.enterRepairing(env, o, Pull, "apply-failed", nil, false)
		return
	}
	m.complete(o, Pull, v.Ordinal)
}
