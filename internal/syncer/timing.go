package syncer

import (
	"time"

	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

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

	// MaxConsecutiveFailures is declared by the seed and unused there; kept so this file holds
	// every constant of the spec table (issue #5).
	MaxConsecutiveFailures = 5

	// DefaultPollInterval and DefaultLiveInterval are the poll tick and the live-mode
	// periodic verify (integrity check).
	DefaultPollInterval = 2 * time.Minute
	DefaultLiveInterval = 5 * time.Minute

	// StopTimeout bounds the whole stop once Start's context ends: waiting for every link
	// supervisor and the final ledger flush share this one deadline. StopCheckInterval is the
	// seed's polling step for the same wait (we wait on channels).
	StopTimeout       = 2000 * time.Millisecond
	StopCheckInterval = 100 * time.Millisecond

	// InlineDataThreshold is the largest payload a server sends inline (30 KB); the copier
	// owns the number (it keeps payloads up to it in memory).
	InlineDataThreshold = transfer.DefaultInlineLimit
	// PullRetryBuffer is the seed's buffering limit; we stream instead (fixes E18) and keep the
	// number only for tests that cross it.
	PullRetryBuffer = 1 << 20
	// RemoteFetchConcurrency is the MessagesRead fan-out (the copier's default).
	RemoteFetchConcurrency = transfer.DefaultFetchConcurrency
	// PullApplyPasses is 1 + MAX_RETRY_PASSES (the copier's batch passes).
	PullApplyPasses = transfer.DefaultMaxPasses
	// ClosureMaxDepth is the dependency-walk depth limit.
	ClosureMaxDepth = 32
	// BatchedDiffDepth and MaxDiffDepth are the SMT diff depths.
	BatchedDiffDepth = 8
	MaxDiffDepth     = 16
	// SyncTargetCacheTTL (post-0.5.15) is kept for the record; links come from CRs here.
	SyncTargetCacheTTL = 30 * time.Second

	// DeliveryConcurrency bounds how many deliveries of one feed are applied at once (they may
	// complete out of order; the tracker commits contiguously).
	DeliveryConcurrency = 8
	// FeedReadLimit is the page size used when a feed is paged rather than subscribed.
	FeedReadLimit = 100
	// DeadLetterCap bounds the dead letters kept per link in the ledger (the ledger's default).
	DeadLetterCap = ledger.DefaultMaxDeadLetters
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

// PushRetryBackoff is PUSH_RETRY_BACKOFF_MS: its length (4) is the retry budget; slot 0 is
// never used as a delay (the first attempt is immediate).
var PushRetryBackoff = []time.Duration{0, 250 * time.Millisecond, 1000 * time.Millisecond, 2000 * time.Millisecond}

// RepairBackoff is REPAIR_BACKOFF_MS, indexed by min(attempts-1, 2).
var RepairBackoff = []time.Duration{1000 * time.Millisecond, 3000 * time.Millisecond, 10000 * time.Millisecond}

// DeliveryRetryBackoff is how a Deferred or transiently failed delivery is retried without
// advancing the checkpoint (the last value repeats).
var DeliveryRetryBackoff = []time.Duration{250 * time.Millisecond, 1000 * time.Millisecond, 2000 * time.Millisecond, 5000 * time.Millisecond}
