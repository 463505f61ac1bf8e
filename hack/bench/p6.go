package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// benchLedger (P6) advances one link's pull checkpoint cfg.p6Advances times in a ledger on disk
// (-p6-dir: tmpfs would make an fsync free), once the way the engine does (every advance staged,
// a feed's ack loop flushing whatever is staged, latest wins) and once as the baseline (every
// advance made durable before the next: an fsync per advance). The ledger's BeforeCommit hook
// counts the transactions (each one ends in bbolt's fsync of the file).
func benchLedger(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp(cfg.p6Dir, "dwnsync-bench-p6-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	engine, err := advanceCheckpoints(ctx, filepath.Join(dir, "engine.db"), cfg.p6Advances, false)
	if err != nil {
		return err
	}
	baseline, err := advanceCheckpoints(ctx, filepath.Join(dir, "baseline.db"), cfg.p6Advances, true)
	if err != nil {
		return err
	}
	sizes := map[string]int{"advances": cfg.p6Advances}
	emit(figure{Figure: "P6", Metric: "checkpoint_advances_per_second", Unit: "advances/s",
		Dwnsync: round(engine.perSecond(), 0), Baseline: round(baseline.perSecond(), 0), Ratio: round(engine.perSecond()/baseline.perSecond(), 1),
		Meaning: "dwnsync/baseline: group commit flushed by an ack loop, over an fsync per advance", Sizes: sizes})
	emit(figure{Figure: "P6", Metric: "commits_per_1000_advances", Unit: "fsynced transactions",
		Dwnsync: round(engine.per1000(), 1), Baseline: round(baseline.per1000(), 1), Ratio: round(engine.per1000()/baseline.per1000(), 3),
		Meaning: "dwnsync/baseline: ledger transactions (each fsyncs the file) per 1,000 advances", Sizes: sizes})
	return nil
}

type ledgerRun struct {
	advances, commits int
	took              time.Duration
}

func (r ledgerRun) perSecond() float64 { return float64(r.advances) / r.took.Seconds() }
func (r ledgerRun) per1000() float64   { return float64(r.commits) * 1000 / float64(r.advances) }

// advanceCheckpoints makes n pull checkpoint advances on one link. With flushEach every advance
// is flushed before the next; otherwise a separate loop flushes what is staged, as a feed's
// ack loop does, until the last advance is durable.
func advanceCheckpoints(ctx context.Context, path string, n int, flushEach bool) (ledgerRun, error) {
	var commits atomic.Int64
	store, err := ledger.Open(path, ledger.Options{BeforeCommit: func() error { commits.Add(1); return nil }})
	if err != nil {
		return ledgerRun{}, err
	}
	defer store.Close()
	rec, err := store.GetOrCreate(ledger.Record{Tenant: "did:jwk:bench", LocalEndpoint: "http://127.0.0.1:1", RemoteEndpoint: "http://127.0.0.1:2"})
	if err != nil {
		return ledgerRun{}, err
	}
	commits.Store(0)
	ackCtx, stopAcks := context.WithCancel(ctx)
	acks := make(chan struct{}, 1)
	ackDone := make(chan error, 1)
	go func() { // the feed's ack loop: flush whatever is staged, one wake-up per batch
		for {
			select {
			case <-ackCtx.Done():
				ackDone <- nil
				return
			case <-acks:
				if err := store.Flush(ackCtx); err != nil && ackCtx.Err() == nil {
					ackDone <- err
					return
				}
			}
		}
	}()
	start := time.Now()
	for i := 1; i <= n; i++ {
		pos := strconv.Itoa(i)
		c := dwn.Cursor{StreamID: "bench", Epoch: "e1", Position: pos, MessageCID: "bafy" + pos}
		if err := store.Update(rec.Key, func(r *ledger.Record) { r.Pull.Commit(c) }); err != nil {
			stopAcks()
			return ledgerRun{}, err
		}
		if flushEach {
			if err := store.Flush(ctx); err != nil {
				stopAcks()
				return ledgerRun{}, err
			}
			continue
		}
		select {
		case acks <- struct{}{}:
		default: // an ack is pending: it flushes this advance too
		}
	}
	err = store.Flush(ctx)
	took := time.Since(start)
	stopAcks()
	if aerr := <-ackDone; err == nil {
		err = aerr
	}
	logf("P6 (flush each %v): %d advances in %v, %d commits", flushEach, n, took, commits.Load())
	return ledgerRun{advances: n, commits: int(commits.Load()), took: took}, err
}
