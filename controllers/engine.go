package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LinkEngine is what the reconciler needs of the replication engine: *syncer.Engine plus the
// ownership of each ledger key, kept in its ledger record (the operator's engine implements
// it). Tests drive the reconciler with a fake that implements the same methods.
type LinkEngine interface {
	// Apply adds or updates a link, records owner (a ReplicationLink's UID) as the owner of its
	// ledger key, and returns the key; checkpoints survive updates and changes of owner.
	Apply(cfg syncer.LinkConfig, owner types.UID) (string, error)
	// Remove stops the link of key and deletes its ledger record when owner owns the key (or
	// no owner is recorded); it reports whether it did. A record of another owner is left
	// alone, so deleting a link that never ran the key cannot remove the record of the one that
	// does.
	Remove(key string, owner types.UID) (bool, error)
	// Owner is the owner recorded in key's ledger record ("" when none).
	Owner(key string) types.UID
	// Snapshot is the engine's current view of one link.
	Snapshot(key string) (syncer.LinkStatus, bool)
	// Snapshots is the view of every link.
	Snapshots() []syncer.LinkStatus
	// Events reports link transitions; it never blocks the engine.
	Events() <-chan syncer.Event
}

// readyWaiter is implemented by engines that start after the reconciler (the operator starts the
// engine when this replica is elected); Reconcile waits for them instead of reporting errors.
type readyWaiter interface {
	WaitReady(ctx context.Context) error
}
