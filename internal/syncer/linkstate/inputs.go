package linkstate

import (
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Input is something that happened to a link. Results of work the machine started carry the
// feed epoch (or the reconcile/repair sequence) they belong to; stale ones are dropped.
type Input interface{ input() }

// Start begins (or restarts) a link from its durable record.
type Start struct {
	StoredPhase    Phase
	NeedsReconcile bool
	// Checkpoints are the contiguous resume points per direction (nil = none yet).
	Checkpoints [2]*dwn.Cursor
	// NeedsBootstrap is true when nothing was ever replicated (no checkpoint, no counts, never
	// converged): the feeds open live-only and a bootstrap reconcile copies the history.
	NeedsBootstrap bool
}

// FeedOpened: the subscription of feed Dir (epoch Epoch) is open.
type FeedOpened struct {
	Dir   Dir
	Epoch uint64
}

// FeedFailed: the feed could not open, or ended (disconnect, server error, 410 gap).
type FeedFailed struct {
	Dir   Dir
	Epoch uint64
	Gap   *dwn.GapError // non-nil for a ProgressGap (410)
	Err   string
	// ErrKind is the dwn.ErrorKind of the cause ("" when it was not a DWN call failure); the
	// other inputs' ErrKind fields mean the same.
	ErrKind string
}

// EOSE: the feed finished its replay; everything after is live.
type EOSE struct {
	Dir    Dir
	Epoch  uint64
	Cursor *dwn.Cursor
}

// Delivered: the feed delivered one entry.
type Delivered struct {
	Dir   Dir
	Epoch uint64
	Entry dwn.Entry
	// OutOfScope is set by the supervisor when the message is outside the link's scope (path
	// prefixes): it is committed in order without being applied (fixes
	// docs/engine-behaviour.md#e3).
	OutOfScope bool
}

// Outcome of one delivery or pushed entry.
type Outcome int

const (
	OutcomeOK         Outcome = iota // Applied, Duplicate or Superseded
	OutcomeDeadLetter                // permanent refusal: dead letter, the feed moves on
	OutcomeTransient                 // could not be applied now (push: counts against the retry budget)
	OutcomeRepair                    // the apply failed in a way a retry cannot fix here: pull repairs, push gives the batch up to a reconcile (D22)
)

// DeliveryDone: a pull delivery finished, applied or not (after the worker's own retries of
// Deferred/transient); Outcome says which.
type DeliveryDone struct {
	Epoch   uint64
	Ordinal uint64
	CID     string
	Outcome Outcome
	Reason  string
	ErrKind string
}

// PushItemResult is the outcome of one entry of a push batch.
type PushItemResult struct {
	Ordinal uint64
	CID     string
	Outcome Outcome
	Reason  string
	ErrKind string
}

// PushFlushed: a push batch finished. Err set means the whole batch failed transiently.
type PushFlushed struct {
	Epoch   uint64
	Results []PushItemResult
	Err     string
	ErrKind string
	Latency time.Duration
}

// ReconcileCompleted: a reconcile started with StartReconcile{Seq} finished, converged or not
// (the EvReconcileCompleted event is published only when it converged).
type ReconcileCompleted struct {
	Seq       uint64
	Converged bool
	Err       string
	ErrKind   string
	Pulled    int
	Pushed    int
	// Crossed lists the CIDs the pass copied, per direction: the feeds will show them on the other
	// side, and they are not sent back (a fix of docs/engine-behaviour.md#e14; the seed echoed them
	// as 409s).
	Crossed [2][]string
}

// RepairDone: the work part of a repair (close feeds, reconcile) finished.
type RepairDone struct {
	Seq     uint64
	Err     string
	ErrKind string
	Crossed [2][]string
}

// TimerFired: timer T armed for At fired. A firing for a deadline that is no longer armed is
// stale (replaced or cancelled) and ignored.
type TimerFired struct {
	Timer Timer
	At    time.Time
}

// PollTick: the poll group asks this (poll-mode) link to reconcile now. The machine answers
// with PollResult once the reconcile finished (or at once if it cannot run).
type PollTick struct{}

// Crossing: a reconcile or repair pass is about to write CID to the other side (Dir Pull:
// into local, Push: into remote). The other side's feed will show it, possibly before the
// pass ends: it is an echo from now on, not something to send back.
type Crossing struct {
	Dir Dir
	CID string
}

// RetryNow: a person asked to retry the link's dead letters. A reconcile runs as soon as the
// link can run one; it copies every message one side lacks, the forgotten dead letters too.
type RetryNow struct{}

// Suspend pauses the link; Resume starts it again; Stop ends it (teardown, no status change).
type Suspend struct{}
type Resume struct{}
type Stop struct{}

func (Start) input()              {}
func (FeedOpened) input()         {}
func (FeedFailed) input()         {}
func (EOSE) input()               {}
func (Delivered) input()          {}
func (DeliveryDone) input()       {}
func (PushFlushed) input()        {}
func (ReconcileCompleted) input() {}
func (RepairDone) input()         {}
func (TimerFired) input()         {}
func (PollTick) input()           {}
func (Suspend) input()            {}
func (Resume) input()             {}
func (Stop) input()               {}
func (Crossing) input()           {}
func (RetryNow) input()           {}
