package transfer

import (
	"context"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// DefaultReconcileChunk bounds how many missing messages a reconcile holds read and not yet
// applied, per direction: the memory of a reconcile is bounded by it, not by the tenant.
const DefaultReconcileChunk = 500

func (c *Copier) reconcileChunk() int {
	return orDefault(c.ReconcileChunk, DefaultReconcileChunk)
}

// preparedBatch is one batch of a pipelined copy, read and inspected, ready to apply.
type preparedBatch struct {
	start   int // index of its first entry in the whole copy
	entries []dwn.Entry
	ready   []item
	abort   error
	outs    []Outcome
}

// copyChunked copies entries in the given (listing) order through a two-stage pipeline: while
// one batch is applied to dst, the next is read from src. A batch is half a ReconcileChunk,
// so no more than a chunk of messages is ever held read and unapplied, and half the prefetch
// budget each (a reconcile runs both directions at once: within the budget in all). Within a
// batch messages go in dependency order (applyInOrder); a dependency in a later batch is
// resolved by the Copier's Incomplete handling (it reads it from src), and the later batch
// then sees Duplicate. After a batch ended on a transient failure the rest are not attempted
// (they carry the error).
func (c *Copier) copyChunked(ctx context.Context, src, dst dwn.Tenant, entries missingSet) (Result, error) {
	out := Result{Outcomes: make([]Outcome, 0, entries.Len())}
	readCtx, stopReading := context.WithCancel(ctx)
	batches := make(chan preparedBatch) // unbuffered: the reader is at most one batch ahead
	go c.readBatches(readCtx, src, entries, batches)
	defer func() { // the reader is done before we return: nothing reads src behind our back
		stopReading()
		for range batches {
		}
	}()

	for b := range batches {
		r, err := c.applyPrepared(ctx, src, dst, b.ready, b.abort, Result{Outcomes: b.outs})
		out.Outcomes = append(out.Outcomes, r.Outcomes...)
		if err != nil {
			return out, err
		}
		if stop := chunkAbort(ctx, r); stop != nil {
			for _, e := range entries.Entries(b.start+len(b.entries), entries.Len()) {
				out.Outcomes = append(out.Outcomes, Outcome{CID: e.CID, Err: stop})
			}
			return out, nil
		}
	}
	return out, ctx.Err()
}

// readBatches prefetches entries a batch at a time and hands each batch over, until all are
// read or ctx ends; it closes batches when done.
func (c *Copier) readBatches(ctx context.Context, src dwn.Tenant, entries missingSet, batches chan<- preparedBatch) {
	defer close(batches)
	size := max(c.reconcileChunk()/2, 1)
	memory := max(c.prefetchBudget()/4, 1) // two batches in flight, two directions at once
	for start := 0; start < entries.Len(); start += size {
		if ctx.Err() != nil {
			return
		}
		b := preparedBatch{start: start, entries: entries.Entries(start, min(start+size, entries.Len()))}
		b.outs = make([]Outcome, len(b.entries))
		b.ready, b.abort = c.prefetch(ctx, src, b.entries, b.outs, memory)
		select {
		case batches <- b:
		case <-ctx.Done():
			return
		}
	}
}
