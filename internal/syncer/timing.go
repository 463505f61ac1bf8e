package syncer

import "time"

// Every timing and size constant of the engine lives in this file, named after the table in
// the sync-engine spec §1.10 (and §5.3 for the reconcile delays). Tests and the per-engine
// Timing override read these; no other file in internal/syncer spells a duration literal.

const (
	// PushDebounce is the batching window armed after a push flush that was in flight when
	// more writes arrived (PUSH_DEBOUNCE_MS, 100 ms in 0.5.15; 250 in 0.5.13).
	PushDebounce = 100 * time.Millisecond

	// EchoTTL and EchoCap bound the echo-suppression cache (recently pulled / pushed CIDs).
	EchoTTL = 60 * time.Second
	EchoCap = 10000

	// MaxPendingTokens is the in-flight overflow threshold of a feed: more than this many
	// deliveries delivered but not yet contiguously committed forces a repair.
	MaxPendingTokens = 100

	// MaxRepairAttempts consecutive failed repairs move a link to degraded_poll.
	MaxRepairAttempts = 3

	// DegradedPollBase + uniform[0, DegradedPollJitter) is the degraded_poll interval, drawn
	// once per entry into the state.
	DegradedPollBase   = 15 * time.Second
	DegradedPollJitter = 15 * time.Second

	// Reconcile delays (§5.3).
	ReconcileDelayDefault      = 1500 * time.Millisecond // push give-up, plain requests
	ReconcileDelayStartupDirty = 1000 * time.Millisecond // start-up with a dirty link
	ReconcileDelayEOSEDirty    = 500 * time.Millisecond  // EOSE with a dirty link
	ReconcileDelayPostRepair   = 500 * time.Millisecond  // after a repair went live
	ReconcileDelayRetry        = 5000 * time.Millisecond // after a failed or non-converged pass

	// MaxBackoffMultiplier caps the poll-mode backoff (interval × min(2^failures, 4)).
	MaxBackoffMultiplier = 4

	// DefaultPollInterval and DefaultLiveInterval are the poll tick and the live-mode
	// periodic verify (integrity check).
	DefaultPollInterval = 2 * time.Minute
	DefaultLiveInterval = 5 * time.Minute

	// StopTimeout bounds how long Start waits for link supervisors after its context ends
	// (on channels; the seed polled).
	StopTimeout = 2000 * time.Millisecond

	// The data path's numbers (inline limit 30 KB, MessagesRead fan-out 4, 1 + MAX_RETRY_PASSES
	// = 4 batch passes) are the transfer.Copier defaults; the dead-letter cap (100) is the
	// ledger's DefaultMaxDeadLetters.

	// DeliveryConcurrency bounds how many deliveries of one feed are applied at once (they may
	// complete out of order; the tracker commits contiguously).
	DeliveryConcurrency = 8
	// CheckpointEventInterval is the least time between two checkpoint-advance events of one
	// feed (the snapshot always holds the latest position).
	CheckpointEventInterval = time.Second
	// MaxDeliveryAttempts bounds the tries of one Deferred or transiently failing pull
	// delivery; after them the link repairs.
	MaxDeliveryAttempts = 8
	// EventBufferSize is the default capacity of Engine.Events (oldest dropped when full).
	EventBufferSize = 1024
	// MailboxSize is the capacity of a link supervisor's mailbox.
	MailboxSize = 256
)

// PushRetryBackoff is PUSH_RETRY_BACKOFF_MS: its length (4) is the retry budget; slot 0 is
// never used as a delay (the first attempt is immediate).
var PushRetryBackoff = []time.Duration{0, 250 * time.Millisecond, 1000 * time.Millisecond, 2000 * time.Millisecond}

// RepairBackoff is REPAIR_BACKOFF_MS, indexed by min(attempts-1, 2).
var RepairBackoff = []time.Duration{1000 * time.Millisecond, 3000 * time.Millisecond, 10000 * time.Millisecond}

// DeliveryRetryBackoff is how a Deferred or transiently failed delivery is retried without
// advancing the checkpoint (the last value repeats).
var DeliveryRetryBackoff = []time.Duration{250 * time.Millisecond, 1000 * time.Millisecond, 2000 * time.Millisecond, 5000 * time.Millisecond}
