package linkstate

// batcher is the push timing of the seed (docs/engine-behaviour.md#push-batching): the first entry
// in a quiet window is flushed immediately; entries arriving while a flush is in flight wait for it
// and go out one debounce after it; a failed batch is retried after 250 ms, 1 s and 2 s; the fourth
// consecutive failure gives up. The retry count belongs to the batcher, not the entry
// (docs/engine-behaviour.md#e25).
type batcher struct {
	queue      []PushItem
	inflight   []PushItem
	flushing   bool
	timerArmed bool
	retryCount int
}

func (b *batcher) reset() { *b = batcher{} }

func (m *Machine) flushPush(env Env, o *out) {
	if len(m.batch.queue) == 0 || m.batch.flushing {
		return
	}
	items := m.batch.queue
	for _, it := range items {
		// The remote's feed may show a pushed message before the push's answer is back; everything
		// pushed exists locally already, so it is never pulled back (docs/engine-behaviour.md#e29).
		m.noteEcho(env, Push, it.Entry.CID)
	}
	m.batch.queue = nil
	m.batch.flushing = true
	m.batch.inflight = items
	o.add(FlushPush{Epoch: m.feeds[Push].epoch, Items: items, Attempt: m.batch.retryCount})
}

func (m *Machine) pushFlushed(env Env, o *out, v PushFlushed) {
	if !m.current(Push, v.Epoch) || !m.batch.flushing {
		return
	}
	m.batch.flushing = false
	byOrd := make(map[uint64]PushItemResult, len(v.Results))
	for _, r := range v.Results {
		byOrd[r.Ordinal] = r
	}
	var retry []PushItem
	done, refused := 0, false
	for _, it := range m.batch.inflight {
		r, ok := byOrd[it.Ordinal]
		outcome := r.Outcome
		if !ok || v.Err != "" {
			outcome = OutcomeTransient
		}
		switch outcome {
		case OutcomeOK:
			if it.Entry.CID != "" {
				m.echo[Push].Add(env.Now, it.Entry.CID)
			}
			m.complete(o, Push, it.Ordinal)
			done++
		case OutcomeDeadLetter:
			o.add(DeadLetter{Dir: Push, CID: it.Entry.CID, Reason: r.Reason})
			m.complete(o, Push, it.Ordinal)
			done++
		default:
			// OutcomeRepair (Unauthorized): no retry signed the same way passes (D22).
			refused = refused || outcome == OutcomeRepair
			retry = append(retry, it)
			if r.Reason != "" {
				m.setError("push "+it.Entry.CID+": "+r.Reason, r.ErrKind)
			}
		}
	}
	m.batch.inflight = nil
	if v.Err != "" {
		m.setError("push: "+v.Err, v.ErrKind)
	}
	if len(retry) == 0 {
		m.batch.retryCount = 0
		if len(m.batch.queue) > 0 && !m.batch.timerArmed {
			m.batch.timerArmed = true
			m.setTimer(o, TimerPushFlush, env.Now.Add(m.t.PushDebounce))
		}
		return
	}
	m.batch.retryCount++
	if refused {
		m.pushGiveUp(env, o, retry, "push-unauthorized")
		return
	}
	if m.batch.retryCount >= len(m.t.PushRetryBackoff) {
		m.pushGiveUp(env, o, retry, "push-retry-exhausted")
		return
	}
	m.batch.queue = append(retry, m.batch.queue...)
	delay := m.t.PushRetryBackoff[m.batch.retryCount]
	m.batch.timerArmed = true
	m.setTimer(o, TimerPushFlush, env.Now.Add(delay))
}

// pushGiveUp: retries exhausted, or an entry refused in a way no retry passes (D22). The link
// is marked dirty (persisted before the checkpoint moves past the given-up entries, so the
// reconcile that recovers them survives a crash); the given-up entries and everything queued
// behind them are left to that reconcile (docs/engine-behaviour.md#e6).
func (m *Machine) pushGiveUp(env Env, o *out, failed []PushItem, reason string) {
	all := append(failed, m.batch.queue...)
	m.batch.queue = nil
	m.batch.retryCount = 0
	m.cancelTimer(o, TimerPushFlush)
	m.batch.timerArmed = false
	wasDirty := m.needsReconcile
	m.markDirty(o)
	if !wasDirty {
		o.add(Publish{Type: EvReconcileNeeded, Reason: reason})
	}
	// Even when the link was already dirty a reconcile is requested (the seed skipped it,
	// docs/engine-behaviour.md#e6): scheduling is idempotent, earliest deadline wins.
	m.requestReconcile(env, o, m.t.ReconcileDefault, reason)
	for _, it := range all {
		m.complete(o, Push, it.Ordinal)
	}
}

// markDirty sets needsReconcile (persisted) and remembers that a reconcile running now started
// before this change, so its result must not clear the flag.
func (m *Machine) markDirty(o *out) {
	if m.reconcile.inFlight {
		m.reconcile.dirtiedDuringFlight = true
	}
	if !m.needsReconcile {
		m.needsReconcile = true
		m.persist(o)
	}
}
