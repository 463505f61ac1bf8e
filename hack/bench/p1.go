package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// benchInitialReplication (P1) seeds a pair once, then replicates byte-identical copies of it
// three times: with the naive parallel copier (the baseline), with a dwnsync engine running
// one `both` link, and with the baseline again. Each contender's time runs from its start until both servers list the same CIDs.
func benchInitialReplication(ctx context.Context, cfg config) error {
	stores, err := seedPair(ctx, filepath.Join(cfg.workDir, "p1-seeded"), cfg.p1Messages, int(float64(cfg.p1Messages)*cfg.p1Share))
	if err != nil {
		return err
	}
	// Baseline, dwnsync, baseline again: the machine's load drifts, and the mean of the two
	// baseline runs brackets dwnsync's.
	var baselines []float64
	var ours time.Duration
	for _, step := range []string{"baseline", "dwnsync", "baseline"} {
		replicate := naiveReplicate
		if step == "dwnsync" {
			replicate = engineReplicate
		}
		took, requests, err := timeOnCopies(ctx, stores, filepath.Join(cfg.workDir, "p1-"+step), replicate)
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		logf("P1 %s converged in %.1fs; requests: %s", step, took.Seconds(), requests)
		if step == "dwnsync" {
			ours = took
		} else {
			baselines = append(baselines, round(took.Seconds(), 1))
		}
	}
	baseline := (baselines[0] + baselines[1]) / 2
	emit(figure{Figure: "P1", Metric: "initial_replication_seconds", Unit: "s",
		Dwnsync: round(ours.Seconds(), 1), Baseline: round(baseline, 1), BaselineRuns: baselines, Ratio: round(baseline/ours.Seconds(), 2),
		Meaning: "baseline/dwnsync: above 1 dwnsync is faster than the naive parallel copier (baseline: mean of a run before and after dwnsync's)",
		Sizes:   map[string]int{"messages_a": stores.MessagesA, "messages_b": stores.MessagesB, "cids_a": stores.CIDsA, "cids_b": stores.CIDsB}})
	return nil
}

// replicator makes the two servers of a pair hold the same messages of the tenant, through
// pool (which it closes).
type replicator func(ctx context.Context, p pair, id dwnserver.Identity, pool *dialect.Pool) error

// timeOnCopies copies the seeded stores into dir, starts a pair on them, and times replicate;
// it also counts the requests replicate made, by kind.
func timeOnCopies(ctx context.Context, stores seededStores, dir string, replicate replicator) (time.Duration, *requestCounter, error) {
	a, b, err := stores.copyStores(dir)
	if err != nil {
		return 0, nil, err
	}
	p, err := startPair(ctx, a, b)
	if err != nil {
		return 0, nil, err
	}
	defer p.stop()
	pool, requests, err := newCountedPool()
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	if err := replicate(ctx, p, stores.Identity, pool); err != nil {
		return 0, nil, err
	}
	return time.Since(start), requests, nil
}

// naiveInFlight is the baseline's concurrency per direction.
const naiveInFlight = 8

// naiveReplicate is what a plain script would do: list both sides, copy every missing CID
// (read, then write) with 8 in flight per direction, both directions at once, and list again;
// whatever failed (a dependency not there yet) is retried by the next pass.
func naiveReplicate(ctx context.Context, p pair, id dwnserver.Identity, pool *dialect.Pool) error {
	defer pool.Close()
	tenants, _, err := openTenants(ctx, pool, id, p.a.URL, p.b.URL)
	if err != nil {
		return err
	}
	a, b := tenants[0], tenants[1]
	for pass := 1; ; pass++ {
		la, err := a.ListCIDs(ctx, dwn.Scope{})
		if err != nil {
			return err
		}
		lb, err := b.ListCIDs(ctx, dwn.Scope{})
		if err != nil {
			return err
		}
		toB, toA := missing(la, lb), missing(lb, la)
		if len(toA) == 0 && len(toB) == 0 {
			return nil
		}
		var applied atomic.Int64
		var wg sync.WaitGroup
		var errA, errB error
		wg.Add(1)
		go func() { defer wg.Done(); errA = naiveCopy(ctx, b, a, toA, &applied) }()
		errB = naiveCopy(ctx, a, b, toB, &applied)
		wg.Wait()
		if err := errors.Join(errA, errB); err != nil {
			return err
		}
		logf("baseline pass %d: %d to A, %d to B, %d applied", pass, len(toA), len(toB), applied.Load())
		if applied.Load() == 0 {
			// What is left is refused for good (a superseded configure): listings that still
			// differ here would differ for dwnsync too, so the pass is the end.
			return nil
		}
	}
}

// naiveCopy reads each CID from src and writes it to dst, naiveInFlight at a time; a write the
// server refuses is left for the next pass, a transport error ends the copy.
func naiveCopy(ctx context.Context, src, dst dwn.Tenant, cids []string, applied *atomic.Int64) error {
	work := make(chan string)
	errs := make(chan error, naiveInFlight)
	var wg sync.WaitGroup
	for range naiveInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cid := range work {
				if err := naiveCopyOne(ctx, src, dst, cid, applied); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, cid := range cids {
		select {
		case work <- cid:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}

// naiveAttempts is how often the baseline tries a message that failed in transport (a
// connection the server closed as idle, a timeout on a loaded machine).
const naiveAttempts = 3

func naiveCopyOne(ctx context.Context, src, dst dwn.Tenant, cid string, applied *atomic.Int64) error {
	var err error
	for range naiveAttempts {
		if err = naiveCopyOnce(ctx, src, dst, cid, applied); !dwn.IsTransient(err) {
			return err
		}
	}
	return err
}

func naiveCopyOnce(ctx context.Context, src, dst dwn.Tenant, cid string, applied *atomic.Int64) error {
	rr, err := src.Read(ctx, cid)
	if dwn.IsNotFound(err) {
		return nil // pruned since the listing
	}
	if err != nil {
		return err
	}
	if rr.Data != nil {
		defer rr.Data.Close()
	}
	msg, err := dwnmsg.StripForApply(rr.Message)
	if err != nil {
		return err
	}
	res, err := dst.Apply(ctx, msg, rr.Data)
	if err != nil {
		return err
	}
	if res.Kind == dwn.Applied {
		applied.Add(1)
	}
	return nil
}

// missing lists the CIDs of have that other lacks, in have's order.
func missing(have, other []string) []string {
	sorted := slices.Clone(other)
	slices.Sort(sorted)
	var out []string
	for _, c := range have {
		if _, found := slices.BinarySearch(sorted, c); !found {
			out = append(out, c)
		}
	}
	return out
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
