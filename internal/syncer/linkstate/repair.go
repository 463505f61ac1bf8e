package linkstate

import (
	"strconv"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// repairState: a repair closes the link's feeds, reconciles, resets the checkpoints (to a
// gap's latestAvailable, or the current contiguous point), marks the link dirty and reopens
// the feeds; it has succeeded when every feed is open again.
type repairState struct {
	active    bool
	reopening bool
	seq       uint64
	resume    [2]*dwn.Cursor
	hasResume [2]bool
	retried   [2]bool // docs/engine-behaviour.md#e30: one fresh reopen after a 410 on the reopen
}

func (m *Machine) enterRepairing(env Env, o *out, d Dir, reason string, resume *dwn.Cursor, hasResume bool) {
	if m.phase == Paused || m.cfg.Mode == ModePoll {
		return
	}
	if hasResume {
		m.repair.resume[d] = resume // a newer gap overwrites; a trigger without one keeps it
		m.repair.hasResume[d] = true
	}
	if m.repair.active && m.repair.reopening {
		// A trigger from a feed reopened by this repair: the reopen failed.
		m.repairFailed(env, o, reason, m.lastErrorKind)
		return
	}
	m.closeFeeds(o)
	if m.phase == DegradedPoll {
		return // the degraded-poll tick drives the next attempt
	}
	if m.phase != Repairing {
		m.setPhase(o, Repairing, true, reason)
		m.setConnectivity(o, Offline, true)
	}
	if m.lastError == "" {
		m.lastError = reason
	}
	if _, armed := m.timers[TimerRepairRetry]; !m.repair.active && !armed {
		m.startRepair(env, o)
	}
}

func (m *Machine) startRepair(env Env, o *out) {
	m.repairAttempts++
	m.repair.active = true
	m.repair.reopening = false
	m.repair.retried = [2]bool{}
	m.repair.seq++
	m.persist(o)
	o.add(Publish{Type: EvRepairStarted, Reason: strconv.Itoa(m.repairAttempts)})
	o.add(StartRepair{Seq: m.repair.seq, Attempt: m.repairAttempts})
}

func (m *Machine) repairDone(env Env, o *out, v RepairDone) {
	if !m.repair.active || m.repair.reopening || v.Seq != m.repair.seq {
		return
	}
	m.noteCrossed(env, v.Crossed)
	if v.Err != "" {
		m.repairFailed(env, o, v.Err, v.ErrKind)
		return
	}
	for _, d := range Dirs {
		if !m.cfg.enabled(d) {
			continue
		}
		to := m.checkpoint[d]
		if m.repair.hasResume[d] {
			to = m.repair.resume[d]
		}
		if to != nil && !to.Valid() {
			to = nil // a corrupted cursor is dropped (docs/engine-behaviour.md#e27)
		}
		m.checkpoint[d] = to
		o.add(ResetCheckpoint{Dir: d, To: to})
	}
	// Dirty before reopening: writes between the reconcile's snapshot and the reopened feeds
	// are then recovered by the post-repair reconcile even across a crash.
	m.markDirty(o)
	m.persist(o)
	m.repair.reopening = true
	opened := false
	for _, d := range Dirs {
		if m.cfg.enabled(d) {
			m.openFeed(o, d)
			opened = true
		}
	}
	if !opened {
		m.repairSucceeded(env, o)
	}
}

func (m *Machine) repairSucceeded(env Env, o *out) {
	prev := m.phase
	m.repair = repairState{seq: m.repair.seq}
	m.repairAttempts = 0
	m.cancelTimer(o, TimerRepairRetry)
	m.cancelTimer(o, TimerDegradedPoll)
	m.phase = Live
	m.setError("", "")
	m.persist(o)
	o.add(Publish{Type: EvRepairCompleted})
	m.setConnectivity(o, Online, true)
	o.add(Publish{Type: EvStatusChange, From: string(prev), To: string(Live), Reason: "repaired"})
	m.storedPhase = Live
	m.reconcile.deferred = false
	if m.needsReconcile {
		m.requestReconcile(env, o, m.t.ReconcilePostRepair, "post-repair")
	}
	m.armVerify(env, o)
}

func (m *Machine) repairFailed(env Env, o *out, err, kind string) {
	attempt := m.repairAttempts
	m.repair.active = false
	m.repair.reopening = false
	m.closeFeeds(o)
	m.setError("repair: "+err, kind)
	o.add(Publish{Type: EvRepairFailed, Reason: strconv.Itoa(attempt), Message: err})
	switch {
	case m.phase == DegradedPoll:
		// stay; the degraded-poll timer (re-armed on every tick) tries again
	case m.repairAttempts >= m.t.MaxRepairAttempts:
		m.enterDegradedPoll(env, o)
	default:
		i := min(max(m.repairAttempts-1, 0), len(m.t.RepairBackoff)-1)
		m.setTimer(o, TimerRepairRetry, env.Now.Add(m.t.RepairBackoff[i]))
	}
}

func (m *Machine) enterDegradedPoll(env Env, o *out) {
	prev := m.phase
	m.phase = DegradedPoll
	m.setConnectivity(o, Offline, false)
	// The seed deleted the attempt counter here; it is kept (and counts on through the
	// degraded-poll attempts) so status can say how many repairs failed. Only the
	// repairing phase compares it with MaxRepairAttempts.
	m.persist(o)
	o.add(Publish{Type: EvStatusChange, From: string(prev), To: string(DegradedPoll)})
	o.add(Publish{Type: EvDegradedPoll})
	m.cancelTimer(o, TimerRepairRetry)
	m.degradedInterval = m.t.DegradedPollBase + time.Duration(env.Rand*float64(m.t.DegradedPollJitter))
	m.setTimer(o, TimerDegradedPoll, env.Now.Add(m.degradedInterval))
}

// degradedTick re-arms first, so a repair that outlasts the interval never stops the poll
// (docs/engine-behaviour.md#e10), then starts an attempt (reconcile + reopen) unless one is still
// running.
func (m *Machine) degradedTick(env Env, o *out) {
	if m.phase != DegradedPoll {
		return
	}
	m.setTimer(o, TimerDegradedPoll, env.Now.Add(m.degradedInterval))
	if !m.repair.active {
		m.startRepair(env, o)
	}
}
