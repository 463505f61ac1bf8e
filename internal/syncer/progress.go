package syncer

import (
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// reconcileProgress watches one reconcile through the tenants it is given: it counts the
// messages newly stored on either side as they are applied, and, when the dialect diffs by
// CID listings, knows the total to copy as soon as both listings are in. The total is counted
// once, when the second listing arrives; an applied message only bumps a counter, so the
// work per message does not grow with the tenant.
type reconcileProgress struct {
	mu       sync.Mutex
	applied  int64
	listings [2][]string // [0] local, [1] remote; dropped once the diff is counted
	listed   [2]bool
	diff     int64 // messages the allowed directions have to copy; valid once both are listed
	pull     bool  // remote → local allowed
	push     bool  // local → remote allowed
	report   func(Progress)
	// crossing, when set, hears of every message about to be written to a side (0 local,
	// 1 remote), before the write: the other side's feed may show it before the pass ends.
	crossing func(ctx context.Context, side int, cid string)
}

func (p *reconcileProgress) onApplied() {
	p.mu.Lock()
	p.applied++
	pr := p.progressLocked()
	p.mu.Unlock()
	p.report(pr)
}

func (p *reconcileProgress) onListing(side int, cids []string) {
	p.mu.Lock()
	if p.listed[0] && p.listed[1] {
		p.mu.Unlock()
		return // the verification after the copy lists again: the pass's total is already known
	}
	p.listings[side], p.listed[side] = cids, true
	if p.listed[0] && p.listed[1] {
		p.diff = p.countDiffLocked()
		p.listings = [2][]string{} // not needed any more: let the reconcile own its memory
	}
	pr := p.progressLocked()
	p.mu.Unlock()
	p.report(pr)
}

// countDiffLocked counts what each allowed direction lacks, from the two listings.
func (p *reconcileProgress) countDiffLocked() int64 {
	have := [2]map[string]struct{}{make(map[string]struct{}, len(p.listings[0])), make(map[string]struct{}, len(p.listings[1]))}
	for side := range p.listings {
		for _, c := range p.listings[side] {
			have[side][c] = struct{}{}
		}
	}
	lacking := func(from, in int) (n int64) {
		for c := range have[from] {
			if _, ok := have[in][c]; !ok {
				n++
			}
		}
		return n
	}
	var total int64
	if p.pull {
		total += lacking(1, 0)
	}
	if p.push {
		total += lacking(0, 1)
	}
	return total
}

func (p *reconcileProgress) progressLocked() Progress {
	pr := Progress{Applied: p.applied}
	if p.listed[0] && p.listed[1] {
		pr.Total = max(p.diff, pr.Applied)
	}
	return pr
}

// watch wraps a tenant so that its applies and listings reach p; SMT tenants keep their SMT
// methods (the copier diffs with them when both sides have them).
func (p *reconcileProgress) watch(t dwn.Tenant, side int) dwn.Tenant {
	w := watchedTenant{Tenant: t, side: side, p: p}
	if s, ok := t.(dwn.SMTTenant); ok {
		return watchedSMTTenant{watchedTenant: w, smt: s}
	}
	return w
}

type watchedTenant struct {
	dwn.Tenant
	side int
	p    *reconcileProgress
}

func (w watchedTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	if w.p.crossing != nil {
		if cid, err := dwn.MessageCID(message); err == nil {
			w.p.crossing(ctx, w.side, cid)
		}
	}
	r, err := w.Tenant.Apply(ctx, message, data)
	if err == nil && r.Kind == dwn.Applied {
		w.p.onApplied()
	}
	return r, err
}

func (w watchedTenant) ListCIDs(ctx context.Context, scope dwn.Scope) ([]string, error) {
	cids, err := w.Tenant.ListCIDs(ctx, scope)
	if err == nil {
		w.p.onListing(w.side, cids)
	}
	return cids, err
}

type watchedSMTTenant struct {
	watchedTenant
	smt dwn.SMTTenant
}

func (w watchedSMTTenant) SMTRoot(ctx context.Context, scope dwn.Scope) (string, error) {
	return w.smt.SMTRoot(ctx, scope)
}

func (w watchedSMTTenant) SMTSubtree(ctx context.Context, scope dwn.Scope, prefix string) (string, error) {
	return w.smt.SMTSubtree(ctx, scope, prefix)
}

func (w watchedSMTTenant) SMTLeaves(ctx context.Context, scope dwn.Scope, prefix string) ([]string, error) {
	return w.smt.SMTLeaves(ctx, scope, prefix)
}

func (w watchedSMTTenant) SMTDiff(ctx context.Context, scope dwn.Scope, hashes map[string]string, depth int) ([]dwn.Entry, []string, error) {
	return w.smt.SMTDiff(ctx, scope, hashes, depth)
}
