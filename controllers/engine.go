package controllers

import (
	"context"

	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LinkEngine is the part of *syncer.Engine the reconciler uses. Tests drive the reconciler with
// a fake that implements the same four methods.
type LinkEngine interface {
	// Apply adds or updates a link and returns its ledger key; checkpoints survive updates.
	Apply(cfg syncer.LinkConfig) (string, error)
	// Remove stops a link and deletes its ledger record.
	Remove(key string) error
	// Snapshot is the engine's current view of one link.
	Snapshot(key string) (syncer.LinkStatus, bool)
	// Events reports link transitions; it never blocks the engine.
	Events() <-chan syncer.Event
}

// readyWaiter is implemented by engines that start after the reconciler (the operator starts the
// engine when this replica is elected); Reconcile waits for them instead of reporting errors.
type readyWaiter interface {
	WaitReady(ctx context.Context) error
}

var _ LinkEngine = (*syncer.Engine)(nil)
