package syncer

import "time"

// The engine's own timing and size constants live in this file. The state machine's delays and
// bounds (debounce, backoffs, reconcile delays, repair budget) are linkstate.DefaultTiming; the
// spec table's entries that nothing here reads (the seed's buffer sizes, the copier's limits,
// which transfer owns) are not repeated.

const (
	// MaxBackoffMultiplier caps the poll-mode backoff (interval × min(2^failures, 4)).
	MaxBackoffMultiplier = 4

	// DefaultPollInterval is the poll tick of a poll-mode link without an interval.
	DefaultPollInterval = 2 * time.Minute

	// StopTimeout bounds the whole stop once Start's context ends: waiting for every link
	// supervisor and the final ledger flush share this one deadline.
	StopTimeout = 2000 * time.Millisecond

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
	// ReconcilePassTimeout bounds one reconcile or repair pass (waiting for a slot included) in
	// wall time, so a pass stuck on a server cannot hold the link's in-flight marker forever.
	ReconcilePassTimeout = 30 * time.Minute
)

// DeliveryRetryBackoff is how a Deferred or transiently failed delivery is retried without
// advancing the checkpoint (the last value repeats).
var DeliveryRetryBackoff = []time.Duration{250 * time.Millisecond, 1000 * time.Millisecond, 2000 * time.Millisecond, 5000 * time.Millisecond}
