package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// applyPull applies one pull delivery to local, retrying Deferred and transient failures with
// backoff without advancing, and reports the final outcome to the supervisor.
func (l *link) applyPull(f *feedRun, eff ls.ApplyPull) {
	ctx := f.ctx
	select {
	case f.workers <- struct{}{}:
		defer func() { <-f.workers }()
	case <-ctx.Done():
		return
	}
	res := ls.DeliveryDone{Epoch: eff.Epoch, Ordinal: eff.Ordinal, CID: eff.Entry.CID}
	for attempt := 0; ; attempt++ {
		local, remote, err := l.localAndRemote(ctx)
		var o transfer.Outcome
		if err == nil {
			var r transfer.Result
			r, err = l.e.copier.Copy(ctx, remote, local, []dwn.Entry{eff.Entry})
			if err == nil && len(r.Outcomes) == 1 {
				o = r.Outcomes[0]
			} else if err == nil {
				err = fmt.Errorf("copier returned %d outcomes for 1 entry", len(r.Outcomes))
			}
		}
		if ctx.Err() != nil {
			return // the feed was closed: this result is stale
		}
		if o.CID != "" && res.CID == "" {
			res.CID = o.CID
		}
		v := classify(o, err, attempt+1 < MaxDeliveryAttempts)
		if v.retry {
			l.setDirError(ls.Pull, v.reason)
			if !l.wait(ctx, retryDelay(attempt, o.Err)) {
				return
			}
			continue
		}
		res.Outcome, res.Reason, res.ErrKind = v.outcome, v.reason, v.errKind
		if v.outcome == ls.OutcomeOK {
			if o.Kind == dwn.Applied {
				l.countApplied(ls.Pull, 1+o.Dependencies)
			}
			if attempt > 0 {
				l.setDirError(ls.Pull, "")
			}
			l.clearDeadLetters(ls.Pull, []string{res.CID})
		}
		break
	}
	l.send(res)
}

func retryDelay(attempt int, err error) time.Duration {
	d := DeliveryRetryBackoff[min(attempt, len(DeliveryRetryBackoff)-1)]
	if ra := dwn.RetryAfter(err); ra > d {
		d = ra
	}
	return d
}

// wait sleeps on the engine clock unless ctx ends first.
func (l *link) wait(ctx context.Context, d time.Duration) bool {
	t := l.e.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// flushPush pushes one batch of the push feed to the remote, in order.
func (l *link) flushPush(f *feedRun, eff ls.FlushPush) {
	ctx := f.ctx
	start := l.e.clock.Now()
	out := ls.PushFlushed{Epoch: eff.Epoch}
	entries := make([]dwn.Entry, len(eff.Items))
	for i, it := range eff.Items {
		entries[i] = it.Entry
	}
	local, remote, err := l.localAndRemote(ctx)
	var r transfer.Result
	if err == nil {
		r, err = l.e.copier.Copy(ctx, local, remote, entries)
	}
	if ctx.Err() != nil {
		return
	}
	out.Latency = l.e.clock.Since(start)
	l.e.met.pushLatency.WithLabelValues(l.cfg.RemoteEndpoint).Observe(out.Latency.Seconds())
	if err == nil && len(r.Outcomes) != len(entries) {
		err = fmt.Errorf("copier returned %d outcomes for %d entries", len(r.Outcomes), len(entries))
	}
	if err != nil {
		out.Err, out.ErrKind = err.Error(), errorKind(err)
		l.e.met.countError(l.cfg.RemoteEndpoint, out.ErrKind)
		l.setDirError(ls.Push, out.Err)
		l.send(out)
		return
	}
	applied, transient := 0, 0
	for i, it := range eff.Items {
		o := r.Outcomes[i]
		v := classify(o, nil, true) // the machine counts the batch's retries
		res := ls.PushItemResult{Ordinal: it.Ordinal, CID: it.Entry.CID, Outcome: v.outcome, Reason: v.reason, ErrKind: v.errKind}
		if res.CID == "" {
			res.CID = o.CID
		}
		switch v.outcome {
		case ls.OutcomeOK:
			if o.Kind == dwn.Applied {
				applied += 1 + o.Dependencies
			}
		case ls.OutcomeTransient, ls.OutcomeRepair:
			transient++
			l.setDirError(ls.Push, v.reason)
		}
		out.Results = append(out.Results, res)
	}
	l.countApplied(ls.Push, applied)
	var pushed []string
	for _, r := range out.Results {
		if r.Outcome == ls.OutcomeOK {
			pushed = append(pushed, r.CID)
		}
	}
	l.clearDeadLetters(ls.Push, pushed)
	if transient == 0 {
		l.setDirError(ls.Push, "")
	}
	l.send(out)
}

// reconcileOnce compares and copies both ways (as the link's direction allows), once one of
// the engine's reconcile slots is free for the link's remote endpoint.
func (l *link) reconcileOnce(ctx context.Context) (transfer.ReconcileResult, error) {
	release, err := l.e.reconcileSlots.acquire(ctx, baseurl.Normalize(l.cfg.RemoteEndpoint))
	if err != nil {
		return transfer.ReconcileResult{}, err
	}
	defer release()
	local, remote, err := l.localAndRemote(ctx)
	if err != nil {
		return transfer.ReconcileResult{}, err
	}
	prog := &reconcileProgress{pull: l.cfg.Direction.Runs(ls.Pull), push: l.cfg.Direction.Runs(ls.Push),
		report: func(p Progress) {
			if p.Applied > 0 || p.Total > 0 {
				l.setProgress(p)
			}
		},
		// Every message the pass writes is an echo on the other side's feed from the moment it
		// is written; the feeds would otherwise copy it back (Duplicate) until the pass ends.
		crossing: func(ctx context.Context, side ls.Side, cid string) {
			l.sendUnlessDone(ctx, ls.Crossing{Dir: side.Inbound(), CID: cid})
		}}
	l.sinceMu.Lock()
	since := l.since
	l.sinceMu.Unlock()
	res, err := l.e.copier.ReconcileSince(ctx, prog.watch(local, ls.Local), prog.watch(remote, ls.Remote), l.cfg.Scope, l.cfg.Direction, since)
	if res.Fallback != "" {
		l.log.V(1).Info("reconcile listed the tenant", "why", res.Fallback)
	}
	l.sinceMu.Lock()
	l.since = res.Mark
	l.sinceMu.Unlock()
	if err != nil {
		return res, err
	}
	l.countApplied(ls.Pull, res.Pulled)
	l.countApplied(ls.Push, res.Pushed)
	l.clearDeadLetters(ls.Pull, res.PullResult.Succeeded())
	l.clearDeadLetters(ls.Push, res.PushResult.Succeeded())
	for _, o := range res.PullResult.Outcomes {
		if o.DeadLetter() {
			l.deadLetter(ls.Pull, o.CID, o.Reason)
		}
	}
	for _, o := range res.PushResult.Outcomes {
		if o.DeadLetter() {
			l.deadLetter(ls.Push, o.CID, o.Reason)
		}
	}
	if applied := int64(res.Pulled + res.Pushed); applied > 0 {
		// The final figures of a pass that copied something (the bootstrap, typically); a
		// later pass that found the sides equal does not reset them to 0/0.
		total := max(int64(res.OnlyLocal+res.OnlyRemote), applied)
		prog.mu.Lock()
		if pr := prog.progressLocked(); pr.Total > 0 {
			total = max(pr.Total, applied)
		}
		prog.mu.Unlock()
		if res.DigestsEqual {
			// The sides are identical: whatever the diff counted and this pass did not write
			// (already there by the time it came to it, e.g. copied by a feed meanwhile) needed
			// no copy after all. A finished copy reads n/n, not n/n+1.
			total = applied
		}
		l.setProgress(Progress{Applied: applied, Total: total})
	}
	return res, nil
}

// sendUnlessDone hands in to the machine unless ctx (the work's) ends first: nobody needs it then.
func (l *link) sendUnlessDone(ctx context.Context, in ls.Input) {
	select {
	case l.mbox <- in:
	case <-ctx.Done():
	case <-l.ctx.Done():
	}
}

func (l *link) runReconcile(ctx context.Context, eff ls.StartReconcile) {
	res, err := l.reconcileOnce(ctx)
	if ctx.Err() != nil {
		return
	}
	done := ls.ReconcileCompleted{Seq: eff.Seq, Converged: res.Converged, Pulled: res.Pulled, Pushed: res.Pushed, Crossed: crossed(res)}
	if err != nil {
		done.Err, done.ErrKind = err.Error(), errorKind(err)
	}
	l.send(done)
}

func (l *link) runRepair(ctx context.Context, eff ls.StartRepair) {
	res, err := l.reconcileOnce(ctx)
	if ctx.Err() != nil {
		return
	}
	done := ls.RepairDone{Seq: eff.Seq, Crossed: crossed(res)}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		done.Err, done.ErrKind = err.Error(), errorKind(err)
	}
	l.send(done)
}

// errorKind is the dwn.ErrorKind of err's cause, or "" when err is not a failed DWN call.
func errorKind(err error) string {
	var e *dwn.Error
	if errors.As(err, &e) {
		return string(e.Kind)
	}
	return ""
}

// crossed lists what a reconcile copied each way (for echo suppression).
func crossed(res transfer.ReconcileResult) [2][]string {
	return [2][]string{res.PullResult.Succeeded(), res.PushResult.Succeeded()}
}
