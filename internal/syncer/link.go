package syncer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/ledger"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// link is one supervisor: a goroutine that owns the link's state machine and is the only
// writer of its ledger record's state fields. Everything reaches it through the mailbox.
type link struct {
	e   *Engine
	key string
	cfg LinkConfig
	log logr.Logger

	ctx    context.Context
	cancel context.CancelFunc
	mbox   chan ls.Input
	done   chan struct{}
	isUp   atomic.Bool

	// owned by the supervisor goroutine
	m          *ls.Machine
	feeds      [2]*feedRun
	timers     map[ls.Timer]*timerRun
	workCtx    context.Context
	workCancel context.CancelFunc

	pollReply chan ls.PollResult

	tenantMu sync.Mutex
	tenants  [2]dwn.Tenant // indexed by ls.Side: [Local], [Remote]

	// sinceMu guards since: where both feeds stood when a reconcile last saw them equal, so
	// the next reconcile scans only what came after (D25). In memory only: after a restart
	// the first reconcile that finds a difference lists the tenant and leaves a new one.
	sinceMu sync.Mutex
	since   *transfer.Mark

	mu     sync.Mutex
	status LinkStatus
	// seen and durable are the newest feed sequence delivered and the committed one, per
	// direction, for the checkpoint-lag gauge (only dialects that number positions per tenant).
	seen, durable [2]uint64
	// feedErr is the error the last end of each feed left in its direction's status.
	feedErr [2]string
	// behindSince is when durable last fell behind seen (zero while caught up), per direction.
	behindSince [2]time.Time
}

// linkMetricValues is what the scrape-time collector reads of a link.
type linkMetricValues struct {
	phase         ls.Phase
	lastConverged time.Time
	progress      Progress
	behind        map[ls.Dir]time.Duration // only directions whose positions are numbered
}

func (l *link) metricValues(now time.Time) linkMetricValues {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := linkMetricValues{phase: l.status.Phase, lastConverged: l.status.LastConvergedTime, progress: l.status.Progress}
	for _, d := range []ls.Dir{ls.Pull, ls.Push} {
		if l.seen[d] == 0 {
			continue // nothing numbered seen: the dialect cannot tell
		}
		if v.behind == nil {
			v.behind = map[ls.Dir]time.Duration{}
		}
		v.behind[d] = 0
		if !l.behindSince[d].IsZero() {
			v.behind[d] = now.Sub(l.behindSince[d])
		}
	}
	return v
}

func newLink(e *Engine, key string, cfg LinkConfig) *link {
	ctx, cancel := context.WithCancel(context.Background())
	l := &link{
		e: e, key: key, cfg: cfg,
		log:       e.log.WithValues("link", cfg.Name),
		ctx:       ctx,
		cancel:    cancel,
		mbox:      make(chan ls.Input, MailboxSize),
		done:      make(chan struct{}),
		timers:    map[ls.Timer]*timerRun{},
		pollReply: make(chan ls.PollResult, 1),
	}
	l.status = LinkStatus{Key: key, Name: cfg.Name, Owner: cfg.Owner, Phase: ls.Initializing, Connectivity: ls.Unknown}
	if rec, ok, _ := e.opts.Ledger.Get(key); ok {
		l.status.Phase = rec.Phase
		l.status.NeedsReconcile = rec.NeedsReconcile
		l.status.DeadLetters = len(rec.DeadLetters)
		l.status.LastReconcileTime = rec.LastReconcile
		l.status.LastConvergedTime = rec.LastConverged
		l.status.Pull.Applied = rec.Counters.Pulled
		l.status.Push.Applied = rec.Counters.Pushed
		l.status.Pull.Checkpoint = position(rec.Pull.Contiguous)
		l.status.Push.Checkpoint = position(rec.Push.Contiguous)
	}
	return l
}

func (l *link) launched() bool { return l.isUp.Load() }

// launch starts the supervisor under the engine's context.
func (l *link) launch(parent context.Context) {
	if l.isUp.Swap(true) {
		return
	}
	stopWithParent := context.AfterFunc(parent, l.cancel)
	go func() {
		defer stopWithParent()
		l.run()
	}()
}

// stop cancels the link's context: every feed, timer and worker it started ends, and their
// late results are never applied.
func (l *link) stop() { l.cancel() }

func (l *link) run() {
	defer close(l.done)
	l.workCtx, l.workCancel = context.WithCancel(l.ctx)
	rec, _, err := l.e.opts.Ledger.Get(l.key)
	if err != nil {
		l.log.Error(err, "reading the ledger record")
	}
	needsBootstrap := rec.Pull.Contiguous == nil && rec.Push.Contiguous == nil && rec.LastConverged.IsZero() &&
		rec.Counters.Pulled == 0 && rec.Counters.Pushed == 0
	l.m = ls.New(l.cfg.machineConfig(), l.e.timing)
	l.step(ls.Start{
		StoredPhase:    rec.Phase,
		NeedsReconcile: rec.NeedsReconcile,
		Checkpoints:    [2]*dwn.Cursor{rec.Pull.Contiguous, rec.Push.Contiguous},
		NeedsBootstrap: needsBootstrap,
	})
	for {
		select {
		case in := <-l.mbox:
			l.step(in)
		case <-l.ctx.Done():
			l.step(ls.Stop{})
			for _, t := range l.timers {
				t.cancel()
			}
			l.workCancel()
			return
		}
	}
}

// send delivers an input to the supervisor unless the link has stopped.
func (l *link) send(in ls.Input) {
	select {
	case l.mbox <- in:
	case <-l.ctx.Done():
	}
}

func (l *link) step(in ls.Input) {
	env := ls.Env{Now: l.e.clock.Now(), Rand: l.e.opts.Rand()}
	for _, eff := range l.m.Step(env, in) {
		l.do(eff)
	}
	if v, ok := in.(ls.EOSE); ok && l.m.CaughtUp(v.Dir, v.Epoch) {
		l.feedCaughtUp(v.Dir)
	}
	l.refreshStatus()
}

func (l *link) do(eff ls.Effect) {
	switch v := eff.(type) {
	case ls.OpenFeed:
		l.openFeed(v.Dir, v.Epoch, l.m.Checkpoint(v.Dir))
	case ls.CloseFeed:
		if f := l.feeds[v.Dir]; f != nil {
			f.close()
			l.feeds[v.Dir] = nil
		}
	case ls.ResetCheckpoint:
		l.update(func(r *ledger.Record) { r.Checkpoint(v.Dir).Reset(v.To) })
		l.setCheckpointStatus(v.Dir, v.To)
	case ls.CommitCheckpoint:
		c := v.Cursor
		l.update(func(r *ledger.Record) {
			cp := r.Checkpoint(v.Dir)
			cp.Observe(c)
			cp.Commit(c)
		})
		l.setCheckpointStatus(v.Dir, &c)
		if f := l.feeds[v.Dir]; f != nil && f.epoch == v.Epoch {
			f.ack(c)
		}
	case ls.ApplyPull:
		if f := l.feeds[ls.Pull]; f != nil && f.epoch == v.Epoch {
			go l.applyPull(f, v)
		}
	case ls.FlushPush:
		if f := l.feeds[ls.Push]; f != nil && f.epoch == v.Epoch {
			go l.flushPush(f, v)
		}
	case ls.Release:
		if f := l.feeds[v.Dir]; f != nil && f.epoch == v.Epoch {
			f.release(v.N)
		}
	case ls.SetTimer:
		l.setTimer(v.Timer, v.At)
	case ls.CancelTimer:
		if t := l.timers[v.Timer]; t != nil {
			t.cancel()
			delete(l.timers, v.Timer)
		}
	case ls.StartReconcile:
		go l.runPass(l.workCtx, func(ctx context.Context) { l.runReconcile(ctx, v) },
			func(reason string) { l.send(ls.ReconcileCompleted{Seq: v.Seq, Err: reason}) })
	case ls.StartRepair:
		go l.runPass(l.workCtx, func(ctx context.Context) { l.runRepair(ctx, v) },
			func(reason string) { l.send(ls.RepairDone{Seq: v.Seq, Err: reason}) })
	case ls.CancelWork:
		l.workCancel()
		l.workCtx, l.workCancel = context.WithCancel(l.ctx)
	case ls.Persist:
		l.update(func(r *ledger.Record) {
			r.Phase = v.Phase
			r.NeedsReconcile = v.NeedsReconcile
			r.RepairAttempts = v.RepairAttempts
		})
	case ls.Publish:
		l.publish(v)
	case ls.DeadLetter:
		l.deadLetter(v.Dir, v.CID, v.Reason)
	case ls.PollResult:
		select {
		case l.pollReply <- v:
		default:
		}
	case ls.RecordReconcileCompleted:
		now := l.e.clock.Now()
		result := "diverged"
		switch {
		case v.Err != "":
			result = "error"
		case v.Converged:
			result = "converged"
		}
		l.e.met.reconciles.WithLabelValues(linkValues(l.cfg.Name, result)...).Inc()
		l.update(func(r *ledger.Record) {
			r.LastReconcile = now
			if v.Converged {
				r.LastConverged = now
			}
		})
		l.mu.Lock()
		l.status.LastReconcileTime = now
		if v.Converged {
			l.status.LastConvergedTime = now
			l.clearSettledErrorsLocked()
		}
		l.mu.Unlock()
	}
}

func (l *link) publish(v ls.Publish) {
	switch v.Type {
	case ls.EvRepairStarted:
		l.e.met.repairs.WithLabelValues(linkValues(l.cfg.Name, "started")...).Inc()
	case ls.EvRepairCompleted:
		l.e.met.repairs.WithLabelValues(linkValues(l.cfg.Name, "completed")...).Inc()
	case ls.EvRepairFailed:
		l.e.met.repairs.WithLabelValues(linkValues(l.cfg.Name, "failed")...).Inc()
	}
	l.log.V(1).Info("link event", "type", v.Type, "from", v.From, "to", v.To, "reason", v.Reason, "message", v.Message)
	l.e.publish(Event{Key: l.key, Name: l.cfg.Name, Type: v.Type, From: v.From, To: v.To, Reason: v.Reason, Message: v.Message})
}

// update stages a change of this link's ledger record (committed in groups by the ledger).
func (l *link) update(fn func(*ledger.Record)) {
	now := l.e.clock.Now()
	err := l.e.opts.Ledger.Update(l.key, func(r *ledger.Record) {
		fn(r)
		r.LastActivity = now
	})
	if err != nil && l.ctx.Err() == nil {
		l.log.Error(err, "staging a ledger update")
	}
}

// deadLetter records a refused message and, when the ledger did not hold it yet, counts and
// publishes it: the one path of every dead letter (the machine's DeadLetter effect and the
// reconcile pass's refusals). One already recorded for the same CID and direction (a later
// reconcile or replay refusing it again) is not recorded, counted or published again.
func (l *link) deadLetter(d ls.Dir, cid, reason string) {
	now := l.e.clock.Now()
	n, known := 0, false
	l.update(func(r *ledger.Record) {
		for _, old := range r.DeadLetters {
			if old.CID == cid && old.Direction == d {
				known = true
				return
			}
		}
		r.AddDeadLetter(ledger.DeadLetter{CID: cid, Direction: d, Reason: reason, At: now})
		r.Counters.Failed++
		n = len(r.DeadLetters)
	})
	if known {
		return
	}
	l.e.met.deadLetters.WithLabelValues(linkValues(l.cfg.Name, d.String())...).Inc()
	l.mu.Lock()
	if n > 0 {
		l.status.DeadLetters = n
	} else {
		l.status.DeadLetters++
	}
	l.mu.Unlock()
	l.e.publish(Event{Key: l.key, Name: l.cfg.Name, Type: ls.EvDeadLetter, Reason: reason, Message: ls.DeadLetterMessage(d, cid)})
}

// clearDeadLetters drops dead letters of messages that have since crossed successfully.
func (l *link) clearDeadLetters(d ls.Dir, cids []string) {
	l.mu.Lock()
	any := l.status.DeadLetters > 0
	l.mu.Unlock()
	if !any || len(cids) == 0 {
		return
	}
	n := -1
	l.update(func(r *ledger.Record) {
		for _, c := range cids {
			r.ClearDeadLetter(c, d)
		}
		n = len(r.DeadLetters)
	})
	if n >= 0 {
		l.mu.Lock()
		l.status.DeadLetters = n
		l.mu.Unlock()
	}
}

// countApplied records n messages newly stored on the other side by direction d.
func (l *link) countApplied(d ls.Dir, n int) {
	if n == 0 {
		return
	}
	now := l.e.clock.Now()
	l.update(func(r *ledger.Record) {
		if d == ls.Pull {
			r.Counters.Pulled += int64(n)
		} else {
			r.Counters.Pushed += int64(n)
		}
	})
	l.e.met.applied.WithLabelValues(linkValues(l.cfg.Name, d.String())...).Add(float64(n))
	l.mu.Lock()
	ds := l.dirStatus(d)
	ds.Applied += int64(n)
	ds.LastEventTime = now
	l.mu.Unlock()
}

func (l *link) dirStatus(d ls.Dir) *DirectionStatus {
	if d == ls.Pull {
		return &l.status.Pull
	}
	return &l.status.Push
}

func (l *link) setCheckpointStatus(d ls.Dir, c *dwn.Cursor) {
	l.mu.Lock()
	l.dirStatus(d).Checkpoint = position(c)
	l.durable[d] = 0
	if c != nil {
		l.durable[d], _ = c.Sequence()
	}
	l.updateLagLocked(d)
	l.mu.Unlock()
}

// observeCursor records the newest feed position a direction has delivered.
func (l *link) observeCursor(d ls.Dir, c *dwn.Cursor) {
	if c == nil {
		return
	}
	seq, ok := c.Sequence()
	if !ok {
		return
	}
	l.mu.Lock()
	if seq > l.seen[d] {
		l.seen[d] = seq
		l.updateLagLocked(d)
	}
	l.mu.Unlock()
}

func (l *link) updateLagLocked(d ls.Dir) {
	if l.seen[d] == 0 {
		return // nothing numbered seen yet: not measurable
	}
	lag := 0.0
	if l.seen[d] > l.durable[d] {
		lag = float64(l.seen[d] - l.durable[d])
		if l.behindSince[d].IsZero() {
			l.behindSince[d] = l.e.clock.Now()
		}
	} else {
		l.behindSince[d] = time.Time{}
	}
	l.e.met.lag.WithLabelValues(linkValues(l.cfg.Name, d.String())...).Set(lag)
}

func (l *link) refreshStatus() {
	m := l.m
	l.mu.Lock()
	defer l.mu.Unlock()
	st := m.Snapshot()
	l.status.Phase = st.Phase
	l.status.Connectivity = st.Connectivity
	l.status.NeedsReconcile = st.NeedsReconcile
	l.status.RepairAttempts = st.RepairAttempts
	l.status.LastError, l.status.LastErrorKind = st.LastError, st.LastErrorKind
	l.status.Pull.Pending = m.Pending(ls.Pull)
	l.status.Push.Pending = m.Pending(ls.Push)
	l.e.met.pending.WithLabelValues(linkValues(l.cfg.Name, "pull")...).Set(float64(l.status.Pull.Pending))
	l.e.met.pending.WithLabelValues(linkValues(l.cfg.Name, "push")...).Set(float64(l.status.Push.Pending))
}

func (l *link) snapshot() LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	if t := l.cachedTenant(ls.Remote); t != nil {
		s.Dialect = string(t.Dialect())
	}
	return s
}

func (l *link) setDirError(d ls.Dir, err string) {
	l.mu.Lock()
	l.dirStatus(d).LastError = err
	l.mu.Unlock()
}

// setFeedError records why feed d's subscription ended, as the direction's error.
func (l *link) setFeedError(d ls.Dir, err string) {
	l.mu.Lock()
	l.dirStatus(d).LastError = err
	l.feedErr[d] = err
	l.mu.Unlock()
}

// feedCaughtUp clears the error a feed's end left on its direction once a later subscription
// of that feed reached its EOSE: the feed is healthy again (issue 10 §1). An error something
// else set since (an apply or a push) stays.
func (l *link) feedCaughtUp(d ls.Dir) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ds := l.dirStatus(d); l.feedErr[d] != "" && ds.LastError == l.feedErr[d] {
		ds.LastError = ""
	}
	l.feedErr[d] = ""
}

// clearSettledErrorsLocked: a converged pass found the sides equal, so an apply or push error
// left on a direction is history, as the link's own LastError is (on a quiet link no later
// delivery would clear it). A feed's end stays until that feed reaches an EOSE. Caller holds
// l.mu.
func (l *link) clearSettledErrorsLocked() {
	for _, d := range ls.Dirs {
		if ds := l.dirStatus(d); ds.LastError != l.feedErr[d] {
			ds.LastError = ""
		}
	}
}

func (l *link) setProgress(p Progress) {
	l.mu.Lock()
	l.status.Progress = p
	l.mu.Unlock()
}

// errPassTimeout ends a reconcile or repair pass that overran the engine's pass timeout.
var errPassTimeout = errors.New("pass did not finish within the reconcile pass timeout; abandoned")

// runPass runs one reconcile or repair pass under the engine's pass timeout. A pass returns
// silently once its context ends (normally: the link stopped or its work was cancelled), so an
// expired one is reported here as failed: the machine drops its in-flight marker and retries
// later. A result the pass still sends afterwards carries a stale Seq and is ignored.
//
// The report is made exactly once, and always before runPass returns:
//   - a pass stuck past its timeout (one that ignores its context) is reported by the
//     after-func, without waiting for it;
//   - a pass that returns as soon as its context ends is reported after it returns. The after-
//     func alone would lose that report: the context closes Done before it starts its
//     after-funcs, so the pass can return and stop() cancel the report first. That left the
//     in-flight marker set for good, and the link never reconciled again.
func (l *link) runPass(parent context.Context, run func(context.Context), expired func(reason string)) {
	ctx, cancel := context.WithTimeoutCause(parent, l.e.passTimeout, errPassTimeout)
	defer cancel()
	var once sync.Once
	report := func() {
		if context.Cause(ctx) == errPassTimeout {
			once.Do(func() { expired(errPassTimeout.Error()) })
		}
	}
	stop := context.AfterFunc(ctx, report)
	run(ctx)
	stop()
	report()
}

// ---- timers ----

type timerRun struct {
	t       clock.Timer
	stop    chan struct{} // nil for a timer that runs its function on the clock (afterFuncClock)
	stopped atomic.Bool
	once    sync.Once
}

func (t *timerRun) cancel() {
	t.once.Do(func() {
		t.stopped.Store(true)
		t.t.Stop()
		if t.stop != nil {
			close(t.stop)
		}
	})
}

// afterFuncClock is a clock that runs a function when a timer fires (the real clock and
// k8s.io/utils/clock/testing's fake ones do): an armed timer then costs no goroutine until it
// fires. An idle live link holds one (the verify timer), so 10,000 links held 10,000
// goroutines waiting on them.
type afterFuncClock interface {
	AfterFunc(d time.Duration, f func()) clock.Timer
}

func (l *link) setTimer(which ls.Timer, at time.Time) {
	if old := l.timers[which]; old != nil {
		old.cancel()
	}
	d := at.Sub(l.e.clock.Now())
	if d < 0 {
		d = 0
	}
	fired := func() { l.send(ls.TimerFired{Timer: which, At: at}) }
	tr := &timerRun{}
	l.timers[which] = tr
	if c, ok := l.e.clock.(afterFuncClock); ok {
		tr.t = c.AfterFunc(d, func() {
			if tr.stopped.Load() || l.ctx.Err() != nil {
				return
			}
			// A fake clock runs this inside Step, holding its lock; a blocking send into a
			// full mailbox would then wait for the supervisor, which waits for that lock in
			// clock.Now. So the send never blocks here: a full mailbox hands it to a goroutine.
			select {
			case l.mbox <- ls.TimerFired{Timer: which, At: at}:
			default:
				go fired()
			}
		})
		return
	}
	tr.t, tr.stop = l.e.clock.NewTimer(d), make(chan struct{})
	go func() {
		select {
		case <-tr.t.C():
			fired()
		case <-tr.stop:
		case <-l.ctx.Done():
		}
	}()
}

// ---- tenants ----

// tenant returns the tenant of one side of the link, dialling it the first time.
func (l *link) tenant(ctx context.Context, side ls.Side) (dwn.Tenant, error) {
	l.tenantMu.Lock()
	defer l.tenantMu.Unlock()
	if t := l.tenants[side]; t != nil {
		return t, nil
	}
	endpoint, dialect, signer := l.cfg.RemoteEndpoint, l.cfg.Dialect, l.cfg.RemoteSigner
	if side == ls.Local {
		endpoint, dialect, signer = l.cfg.LocalEndpoint, l.cfg.LocalDialect, l.cfg.LocalSigner
	}
	t, err := l.e.dialer.Tenant(ctx, endpoint, dialect, l.cfg.Tenant, signer)
	if err != nil {
		return nil, err
	}
	l.tenants[side] = t
	return t, nil
}

func (l *link) cachedTenant(side ls.Side) dwn.Tenant {
	l.tenantMu.Lock()
	defer l.tenantMu.Unlock()
	return l.tenants[side]
}

// localAndRemote returns the link's two tenants, in the order its name says.
func (l *link) localAndRemote(ctx context.Context) (local, remote dwn.Tenant, err error) {
	remote, err = l.tenant(ctx, ls.Remote)
	if err != nil {
		return nil, nil, err
	}
	local, err = l.tenant(ctx, ls.Local)
	if err != nil {
		return nil, nil, err
	}
	return local, remote, nil
}

func position(c *dwn.Cursor) string {
	if c == nil {
		return ""
	}
	return c.Position
}
