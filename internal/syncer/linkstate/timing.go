package linkstate

import "time"

// DefaultTiming returns the spec's timings (the sync-engine spec's table,
// docs/engine-behaviour.md#timing-constants, and the reconcile delays of
// docs/engine-behaviour.md#reconcile-delays). Every caller gets its own slices.
func DefaultTiming() Timing {
	return Timing{
		// PUSH_DEBOUNCE_MS: the batching window armed after a push flush that was in flight
		// when more writes arrived (100 ms in 0.5.15; 250 in 0.5.13).
		PushDebounce: 100 * time.Millisecond,
		// PUSH_RETRY_BACKOFF_MS: its length (4) is the retry budget; slot 0 is never used as
		// a delay (the first attempt is immediate).
		PushRetryBackoff: []time.Duration{0, 250 * time.Millisecond, 1000 * time.Millisecond, 2000 * time.Millisecond},
		// The echo-suppression cache (recently pulled / pushed CIDs).
		EchoTTL: 60 * time.Second,
		EchoCap: 10000,
		// More deliveries than this not yet contiguously committed force a repair.
		MaxUncommitted: 100,
		// Consecutive failed repairs that move a link to degraded_poll.
		MaxRepairAttempts: 3,
		// REPAIR_BACKOFF_MS, indexed by min(attempts-1, 2).
		RepairBackoff: []time.Duration{1000 * time.Millisecond, 3000 * time.Millisecond, 10000 * time.Millisecond},
		// base + uniform[0, jitter) is the degraded_poll interval, drawn once per entry.
		DegradedPollBase:   15 * time.Second,
		DegradedPollJitter: 15 * time.Second,

		ReconcileDefault:      1500 * time.Millisecond, // push give-up, plain requests
		ReconcileStartupDirty: 1000 * time.Millisecond, // start-up with a dirty link
		ReconcileEOSEDirty:    500 * time.Millisecond,  // EOSE with a dirty link
		ReconcilePostRepair:   500 * time.Millisecond,  // after a repair went live
		ReconcileRetry:        5000 * time.Millisecond, // after a failed or non-converged pass

		// The live-mode periodic verify (integrity check).
		VerifyInterval: 5 * time.Minute,
	}
}
