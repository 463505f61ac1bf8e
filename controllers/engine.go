package controllers

import (
	"context"

	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LinkEngine is what the reconciler needs of the replication engine: the methods of
// *syncer.Engine it calls (the operator's leader-only engine delegates to one). Tests drive the
// reconciler with a fake that implements the same methods.
type LinkEngine interface {
	// Apply adds or updates a link and returns its ledger key. The engine keeps cfg.Owner (a
	// ReplicationLink's UID) in the key's ledger record and refuses another owner's claim with
	// a *syncer.DuplicateLinkError, unless cfg.Supersedes names that owner; checkpoints
	// survive updates and changes of owner.
	Apply(cfg syncer.LinkConfig) (string, error)
	// Release stops the link of key and deletes its ledger record when owner owns the key (or
	// no owner is recorded); it reports whether it did. A record of another owner is left
	// alone, so deleting a link that never ran the key cannot remove the record of the one that
	// does.
	Release(key, owner string) (bool, error)
	// Snapshot is the engine's current view of one link (with its owner).
	Snapshot(key string) (syncer.LinkStatus, bool)
	// Snapshots is the view of every link.
	Snapshots() []syncer.LinkStatus
	// Events reports link transitions; it never blocks the engine.
	Events() <-chan syncer.Event
}

// The engine itself is a LinkEngine.
var _ LinkEngine = (*syncer.Engine)(nil)

// readyWaiter is implemented by engines that start after the reconciler (the operator starts the
// engine when this replica is elected); Reconcile waits for them instead of reporting errors.
type readyWaiter interface {
	WaitReady(ctx context.Context) error
}

var _ DeadLetterEngine = (*syncer.Engine)(nil)
