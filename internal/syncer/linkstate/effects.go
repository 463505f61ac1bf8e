package linkstate

import (
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Effect is something the supervisor must do, in the order returned.
type Effect interface{ effect() }

// Timer names the per-link timers.
type Timer int

const (
	TimerReconcile Timer = iota
	TimerRepairRetry
	TimerDegradedPoll
	TimerVerify
	TimerPushFlush
)

func (t Timer) String() string {
	return [...]string{"reconcile", "repair-retry", "degraded-poll", "verify", "push-flush"}[t]
}

// OpenFeed: subscribe feed Dir from its durable contiguous checkpoint; report results with Epoch.
type OpenFeed struct {
	Dir   Dir
	Epoch uint64
}

// CloseFeed: cancel feed Dir (every delivery still running for it becomes stale).
type CloseFeed struct{ Dir Dir }

// ResetCheckpoint: set both checkpoint fields of Dir to To (nil clears them).
type ResetCheckpoint struct {
	Dir Dir
	To  *dwn.Cursor
}

// CommitCheckpoint: the contiguous checkpoint of Dir advanced to Cursor. Stage it in the
// ledger; acknowledge it to the server once it is durable.
type CommitCheckpoint struct {
	Dir    Dir
	Epoch  uint64
	Cursor dwn.Cursor
	// Drained is how many deliveries this advance covered (for counters).
	Drained int
}

// ApplyPull: apply one delivery of the pull feed to local (bounded concurrency, may finish in
// any order); report DeliveryDone{Epoch, Ordinal}.
type ApplyPull struct {
	Epoch   uint64
	Ordinal uint64
	Entry   dwn.Entry
}

// PushItem is one entry of a push batch.
type PushItem struct {
	Ordinal uint64
	Entry   dwn.Entry
}

// FlushPush: push these entries to the remote, in order; report PushFlushed{Epoch}.
type FlushPush struct {
	Epoch   uint64
	Items   []PushItem
	Attempt int // 0 = first try of this batch budget
}

// Release: n deliveries of feed Dir (epoch) were drained by the tracker and left the feed's
// window (reader back-pressure).
type Release struct {
	Dir   Dir
	Epoch uint64
	N     int
}

// SetTimer arms (or re-arms) timer Timer to fire at At; CancelTimer disarms it.
type SetTimer struct {
	Timer Timer
	At    time.Time
}
type CancelTimer struct{ Timer Timer }

// StartReconcile: run a reconcile of the link (both directions as configured).
type StartReconcile struct {
	Seq    uint64
	Reason string
}

// StartRepair: close feeds already happened; reconcile as the repair's work and report
// RepairDone{Seq}.
type StartRepair struct {
	Seq     uint64
	Attempt int
}

// CancelWork: cancel a running reconcile or repair (suspend/stop).
type CancelWork struct{}

// Persist: stage these durable fields in the ledger.
type Persist struct {
	Phase          Phase
	NeedsReconcile bool
	RepairAttempts int
}

// Publish: emit an engine event.
type Publish struct {
	Type    string
	From    string
	To      string
	Reason  string
	Message string
}

// DeadLetter: record a refused message for this link.
type DeadLetter struct {
	Dir    Dir
	CID    string
	Reason string
}

// DeadLetterMessage names one dead letter in event messages: "<dir> <cid>" (the EvDeadLetter
// event the link publishes when the ledger records a new one, and the lists of dropped ones).
func DeadLetterMessage(d Dir, cid string) string { return d.String() + " " + cid }

// PollResult answers a PollTick.
type PollResult struct {
	OK  bool
	Err string
}

// RecordReconcileCompleted: record the result of a ReconcileCompleted that was current
// (converged or not) in the ledger, status and metrics.
type RecordReconcileCompleted struct {
	Converged      bool
	Pulled, Pushed int
	Err            string
}

func (OpenFeed) effect()                 {}
func (CloseFeed) effect()                {}
func (ResetCheckpoint) effect()          {}
func (CommitCheckpoint) effect()         {}
func (ApplyPull) effect()                {}
func (FlushPush) effect()                {}
func (Release) effect()                  {}
func (SetTimer) effect()                 {}
func (CancelTimer) effect()              {}
func (StartReconcile) effect()           {}
func (StartRepair) effect()              {}
func (CancelWork) effect()               {}
func (Persist) effect()                  {}
func (Publish) effect()                  {}
func (DeadLetter) effect()               {}
func (PollResult) effect()               {}
func (RecordReconcileCompleted) effect() {}

// Event types (docs/engine-behaviour.md#event-types, plus push and dead-letter).
const (
	EvStatusChange       = "link:status-change"
	EvConnectivityChange = "link:connectivity-change"
	EvPullAdvance        = "checkpoint:pull-advance"
	EvPushAdvance        = "checkpoint:push-advance"
	EvReconcileNeeded    = "reconcile:needed"
	EvReconcileCompleted = "reconcile:completed"
	EvRepairStarted      = "repair:started"
	EvRepairCompleted    = "repair:completed"
	EvRepairFailed       = "repair:failed"
	EvDegradedPoll       = "degraded-poll:entered"
	EvGapDetected        = "gap:detected"
	EvDeadLetter         = "dead-letter"
)
