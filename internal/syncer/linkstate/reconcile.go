package linkstate

import "time"

// reconcileState is the per-link reconcile scheduler: one timer whose deadline is the
// earliest requested; at most one reconcile in flight; a request made while one is in flight
// becomes exactly one trailing pass after it (the seed dropped it: docs/engine-behaviour.md#e7).
type reconcileState struct {
	inFlight            bool
	seq                 uint64
	reason              string
	trailing            bool
	trailingDelay       time.Duration
	dirtiedDuringFlight bool
	deferred            bool // the timer fired while the link could not reconcile
	pollWaiting         bool
	failures            int // consecutive failed or unsettled passes
}

func (m *Machine) requestReconcile(env Env, o *out, delay time.Duration, reason string) {
	if m.phase == Paused || m.stopped {
		return
	}
	if m.reconcile.inFlight {
		if !m.reconcile.trailing || delay < m.reconcile.trailingDelay {
			m.reconcile.trailingDelay = delay
		}
		m.reconcile.trailing = true
		return
	}
	at := env.Now.Add(delay)
	if cur, ok := m.timers[TimerReconcile]; ok && !at.Before(cur) {
		return // an earlier (or equal) deadline is already armed: earliest wins
	}
	m.reconcile.reason = reason
	m.setTimer(o, TimerReconcile, at)
}

func (m *Machine) canReconcile() bool {
	if m.repair.active || m.reconcile.inFlight {
		return false
	}
	if m.cfg.Mode == ModePoll {
		return m.phase != Paused
	}
	return m.phase == Live
}

func (m *Machine) reconcileTimer(env Env, o *out) {
	if !m.canReconcile() {
		// Not lost: a repair ends with its own reconcile, and going live re-requests it.
		m.reconcile.deferred = true
		return
	}
	m.startReconcile(o, m.reconcile.reason)
}

func (m *Machine) startReconcile(o *out, reason string) {
	m.reconcile.inFlight = true
	m.reconcile.deferred = false
	m.reconcile.dirtiedDuringFlight = false
	m.reconcile.seq++
	if reason == "" {
		reason = "requested"
	}
	o.add(StartReconcile{Seq: m.reconcile.seq, Reason: reason})
}

// resumeDeferred re-requests a reconcile whose timer fired while the link could not run it.
func (m *Machine) resumeDeferred(env Env, o *out, delay time.Duration) {
	if m.reconcile.deferred {
		m.reconcile.deferred = false
		m.requestReconcile(env, o, delay, "deferred")
	}
}

func (m *Machine) reconcileCompleted(env Env, o *out, v ReconcileCompleted) {
	if !m.reconcile.inFlight || v.Seq != m.reconcile.seq {
		return
	}
	m.reconcile.inFlight = false
	m.noteCrossed(env, v.Crossed)
	ok := v.Err == "" && v.Converged
	o.add(RecordReconcileCompleted{Converged: ok, Pulled: v.Pulled, Pushed: v.Pushed, Err: v.Err})
	if m.reconcile.pollWaiting {
		m.reconcile.pollWaiting = false
		o.add(PollResult{OK: v.Err == "", Err: v.Err})
	}
	if m.cfg.Mode == ModePoll {
		if v.Err != "" {
			m.setConnectivity(o, Offline, true)
		} else {
			m.setConnectivity(o, Online, true)
			if m.phase == Initializing {
				m.setPhase(o, Live, true, "poll")
				m.storedPhase = Live
			}
		}
	}
	if ok {
		m.reconcile.failures = 0
		m.setError("", "") // the sides are equal: whatever failed before no longer matters
		if m.needsReconcile && !m.reconcile.dirtiedDuringFlight && !m.uncoveredFeedOpen() {
			m.needsReconcile = false
			m.persist(o)
		}
		o.add(Publish{Type: EvReconcileCompleted, Reason: m.reconcile.reason})
	} else {
		m.reconcile.failures++
		if v.Err != "" {
			m.setError("reconcile: "+v.Err, v.ErrKind)
		} else {
			m.setError("reconcile did not converge", "")
		}
		if m.cfg.Mode == ModeLive {
			// The retry is requested after the in-flight marker is gone, so it is never dropped
			// (docs/engine-behaviour.md#e7). A pass that only dead-letters is settled and lands
			// above, so this is a real error or unfinished copy: back off exponentially, capped at
			// the periodic verify interval, so a lasting failure costs no more than verifying.
			m.requestReconcile(env, o, m.retryDelay(), "retry")
		}
	}
	m.reconcile.dirtiedDuringFlight = false
	if m.reconcile.trailing {
		m.reconcile.trailing = false
		m.requestReconcile(env, o, m.reconcile.trailingDelay, "trailing")
	}
}

// retryDelay is ReconcileRetry doubled per consecutive failure after the first, at most the
// verify interval (when there is one).
func (m *Machine) retryDelay() time.Duration {
	d := m.t.ReconcileRetry << min(m.reconcile.failures-1, 16)
	if v := m.t.VerifyInterval; v > 0 && d > v {
		d = v
	}
	return d
}

func (m *Machine) noteCrossed(env Env, crossed [2][]string) {
	for _, d := range Dirs {
		for _, cid := range crossed[d] {
			m.noteEcho(env, d, cid)
		}
	}
}

func (m *Machine) pollTick(env Env, o *out) {
	if m.cfg.Mode != ModePoll || m.phase == Paused {
		o.add(PollResult{OK: true, Err: "skipped"})
		return
	}
	m.reconcile.pollWaiting = true
	if m.reconcile.inFlight {
		return // answered when the running pass ends
	}
	m.cancelTimer(o, TimerReconcile)
	m.startReconcile(o, "poll")
}
