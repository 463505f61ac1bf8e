package linkstate

import (
	"fmt"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Machine is the state of one link. Step mutates it deterministically from (Env, Input) and
// returns the effects to perform; it never blocks, reads a clock or does I/O. (It mutates in
// place rather than returning a copy because it holds maps that would be costly to copy per
// delivery; the determinism is what the tests rely on.)
type Machine struct {
	cfg Config
	t   Timing

	phase          Phase
	connectivity   Connectivity
	needsReconcile bool
	repairAttempts int
	// lastError is the most recent failure, for status.
	lastError string
	// lastErrorKind is the dwn.ErrorKind of lastError's cause ("" when it had none, e.g. a
	// reconcile that did not converge): status reasons come from it, never from the text.
	lastErrorKind string

	feeds      [2]feedState
	checkpoint [2]*dwn.Cursor
	batch      batcher
	// echo[Pull] holds CIDs pulled into local (not to be pushed back); echo[Push] holds CIDs
	// pushed to the remote (not to be pulled back).
	echo [2]*Echo

	reconcile reconcileState
	repair    repairState
	timers    map[Timer]time.Time

	degradedInterval time.Duration
	stopped          bool
	storedPhase      Phase
}

type feedState struct {
	epoch   uint64
	open    bool // the subscription is open (FeedOpened seen for this epoch)
	running bool // OpenFeed issued for this epoch and not closed
	// reopened: the feed was reopened after it ended and has not reached an EOSE since.
	eose     bool
	domain   string // domain of the first cursor seen in this epoch (docs/engine-behaviour.md#e22)
	reopened bool
	// fromNothing: this epoch opened without a checkpoint (live only) and has not reached
	// its EOSE yet.
	fromNothing bool
	tracker     *Tracker
}

// New returns a machine for a link with this config. Feed Start to begin.
func New(cfg Config, t Timing) *Machine {
	m := &Machine{cfg: cfg, t: t, phase: Initializing, connectivity: Unknown, timers: map[Timer]time.Time{}}
	m.echo[Pull] = NewEcho(t.EchoTTL, t.EchoCap)
	m.echo[Push] = NewEcho(t.EchoTTL, t.EchoCap)
	for _, d := range Dirs {
		m.feeds[d].tracker = NewTracker()
	}
	return m
}

// Snapshot is the link status the machine holds, as the supervisor reports it.
type Snapshot struct {
	Phase          Phase
	Connectivity   Connectivity
	NeedsReconcile bool
	RepairAttempts int
	// LastError is the most recent failure; LastErrorKind is the dwn.ErrorKind of its cause
	// ("" when it had none, e.g. a reconcile that did not converge): status reasons come from
	// the kind, never from the text.
	LastError, LastErrorKind string
}

// Snapshot returns the machine's current status.
func (m *Machine) Snapshot() Snapshot {
	return Snapshot{
		Phase: m.phase, Connectivity: m.connectivity, NeedsReconcile: m.needsReconcile,
		RepairAttempts: m.repairAttempts, LastError: m.lastError, LastErrorKind: m.lastErrorKind,
	}
}

// Config returns the link config the machine runs.
func (m *Machine) Config() Config { return m.cfg }

// Pending is how many deliveries of feed d are not yet contiguously committed.
func (m *Machine) Pending(d Dir) int { return m.feeds[d].tracker.Pending() }

// Epoch is the current epoch of feed d.
func (m *Machine) Epoch(d Dir) uint64 { return m.feeds[d].epoch }

// Checkpoint is the contiguous checkpoint of feed d as the machine knows it.
func (m *Machine) Checkpoint(d Dir) *dwn.Cursor { return m.checkpoint[d] }

// CaughtUp reports whether feed d, subscription epoch, is the current one and has reached its
// EOSE: it is healthy again, whatever ended an earlier subscription.
func (m *Machine) CaughtUp(d Dir, epoch uint64) bool {
	return m.current(d, epoch) && m.feeds[d].eose
}

// TimerAt reports when timer t is armed (zero when it is not).
func (m *Machine) TimerAt(t Timer) time.Time { return m.timers[t] }

// ReconcileInFlight reports whether a reconcile is running.
func (m *Machine) ReconcileInFlight() bool { return m.reconcile.inFlight }

// DegradedInterval is the degraded-poll interval drawn on entry.
func (m *Machine) DegradedInterval() time.Duration { return m.degradedInterval }

// out collects effects of one step.
type out struct{ effects []Effect }

func (o *out) add(e ...Effect) { o.effects = append(o.effects, e...) }

// Step applies one input.
func (m *Machine) Step(env Env, in Input) []Effect {
	o := &out{}
	if m.stopped {
		return nil
	}
	switch v := in.(type) {
	case Start:
		m.start(env, o, v)
	case FeedOpened:
		m.feedOpened(env, o, v)
	case FeedFailed:
		m.feedFailed(env, o, v)
	case EOSE:
		m.eose(env, o, v)
	case Delivered:
		m.delivered(env, o, v)
	case DeliveryDone:
		m.deliveryDone(env, o, v)
	case PushFlushed:
		m.pushFlushed(env, o, v)
	case ReconcileCompleted:
		m.reconcileCompleted(env, o, v)
	case RepairDone:
		m.repairDone(env, o, v)
	case Crossing:
		m.noteEcho(env, v.Dir, v.CID)
	case TimerFired:
		m.timerFired(env, o, v)
	case PollTick:
		m.pollTick(env, o)
	case RetryNow:
		m.requestReconcile(env, o, 0, "dead letters retried")
	case Suspend:
		m.suspend(env, o)
	case Resume:
		m.resume(env, o)
	case Stop:
		m.stop(o)
	default:
		panic(fmt.Sprintf("linkstate: unknown input %T", in))
	}
	return o.effects
}

// ---- lifecycle ----

func (m *Machine) start(env Env, o *out, s Start) {
	m.storedPhase = s.StoredPhase
	if m.storedPhase == "" {
		m.storedPhase = Initializing
	}
	m.checkpoint = s.Checkpoints
	m.needsReconcile = s.NeedsReconcile
	for _, d := range Dirs {
		if c := m.checkpoint[d]; c != nil && !c.Valid() {
			// A corrupted stored cursor (an empty field) is dropped; the feed opens live-only
			// and a reconcile covers the history (docs/engine-behaviour.md#e27).
			m.checkpoint[d] = nil
			o.add(ResetCheckpoint{Dir: d, To: nil})
			m.needsReconcile = true
		}
	}
	// A stale durable status (repairing, degraded_poll, live from an earlier process) does not
	// change how this run behaves (docs/engine-behaviour.md#e1, docs/engine-behaviour.md#e13):
	// every run starts initializing.
	m.phase = Initializing
	m.connectivity = Unknown
	m.repairAttempts = 0
	if m.cfg.Suspend {
		m.enterPaused(o)
		return
	}
	if m.cfg.Mode == ModeLive && s.NeedsBootstrap {
		// A fresh link's feeds open live-only: the bootstrap reconcile copies the history; being
		// dirty makes that durable (docs/engine-behaviour.md#e8). (Any feed opening without a
		// checkpoint, a direction just enabled for one, makes the link dirty in openFeed.)
		m.needsReconcile = true
	}
	m.persist(o)
	m.openFeeds(o)
}

func (m *Machine) resume(env Env, o *out) {
	if m.phase != Paused {
		return
	}
	m.cfg.Suspend = false
	m.storedPhase = Paused
	m.phase = Initializing
	m.persist(o)
	m.openFeeds(o)
}

func (m *Machine) suspend(env Env, o *out) {
	if m.phase == Paused {
		return
	}
	m.cfg.Suspend = true
	m.closeFeeds(o)
	m.cancelAllTimers(o)
	m.cancelWork(o)
	m.enterPaused(o)
}

func (m *Machine) enterPaused(o *out) {
	prev := m.storedPhase
	if m.phase != Initializing || prev == "" {
		prev = m.phase
	}
	m.phase = Paused
	m.persist(o)
	if prev != Paused {
		o.add(Publish{Type: EvStatusChange, From: string(prev), To: string(Paused)})
	}
}

func (m *Machine) stop(o *out) {
	m.closeFeeds(o)
	m.cancelAllTimers(o)
	m.cancelWork(o)
	m.stopped = true
}

func (m *Machine) cancelWork(o *out) {
	if m.reconcile.inFlight || m.repair.active {
		o.add(CancelWork{})
	}
	m.reconcile = reconcileState{seq: m.reconcile.seq}
	m.repair = repairState{seq: m.repair.seq}
}

func (m *Machine) persist(o *out) {
	o.add(Persist{Phase: m.phase, NeedsReconcile: m.needsReconcile, RepairAttempts: m.repairAttempts})
}

func (m *Machine) setConnectivity(o *out, c Connectivity, announce bool) {
	if m.connectivity == c {
		return
	}
	prev := m.connectivity
	m.connectivity = c
	if announce {
		o.add(Publish{Type: EvConnectivityChange, From: string(prev), To: string(c)})
	}
}

func (m *Machine) setPhase(o *out, p Phase, announce bool, reason string) {
	prev := m.phase
	m.phase = p
	m.persist(o)
	if announce && prev != p {
		o.add(Publish{Type: EvStatusChange, From: string(prev), To: string(p), Reason: reason})
	}
}

// ---- timers ----

func (m *Machine) setTimer(o *out, t Timer, at time.Time) {
	m.timers[t] = at
	o.add(SetTimer{Timer: t, At: at})
}

func (m *Machine) cancelTimer(o *out, t Timer) {
	if _, ok := m.timers[t]; ok {
		delete(m.timers, t)
		o.add(CancelTimer{Timer: t})
	}
}

func (m *Machine) cancelAllTimers(o *out) {
	for _, t := range []Timer{TimerReconcile, TimerRepairRetry, TimerDegradedPoll, TimerVerify, TimerPushFlush} {
		m.cancelTimer(o, t)
	}
	m.batch.timerArmed = false
}

func (m *Machine) timerFired(env Env, o *out, v TimerFired) {
	at, ok := m.timers[v.Timer]
	if !ok || !at.Equal(v.At) {
		return // replaced or cancelled since
	}
	delete(m.timers, v.Timer)
	switch v.Timer {
	case TimerReconcile:
		m.reconcileTimer(env, o)
	case TimerRepairRetry:
		if m.phase == Repairing && !m.repair.active {
			m.startRepair(env, o)
		}
	case TimerDegradedPoll:
		m.degradedTick(env, o)
	case TimerVerify:
		if m.phase == Live && m.cfg.Mode == ModeLive {
			m.requestReconcile(env, o, 0, "verify")
			m.setTimer(o, TimerVerify, env.Now.Add(m.t.VerifyInterval))
		}
	case TimerPushFlush:
		m.batch.timerArmed = false
		m.flushPush(env, o)
	}
}

// setError records the most recent failure and the kind of its cause ("" text clears both).
func (m *Machine) setError(text, kind string) {
	m.lastError, m.lastErrorKind = text, kind
	if text == "" {
		m.lastErrorKind = ""
	}
}
