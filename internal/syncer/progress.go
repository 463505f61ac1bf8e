package syncer

import (
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// reconcileProgress watches one reconcile through the tenants it is given: it counts the
// messages newly stored on either side as they are applied, and, when the dialect diffs by
// CID listings, knows the total to copy as soon as the diff is made (the copier tells the
// local tenant: transfer.DiffObserver). An applied message only bumps a counter, so the work
// per message does not grow with the tenant, and no listing is kept here.
type reconcileProgress struct {
	mu      sync.Mutex
	applied int64
	diffed  bool
	diff    int64 // messages the allowed directions have to copy; valid once diffed
	pull    bool  // remote → local allowed
	push    bool  // local → remote allowed
	report  func(Progress)
	// crossing, when set, hears of every message about to be written to a side, before the
	// write: the other side's feed may show it before the pass ends.
	crossing func(ctx context.Context, side ls.Side, cid string)
}

func (p *reconcileProgress) onApplied() {
	p.mu.Lock()
	p.applied++
	pr := p.progressLocked()
	p.mu.Unlock()
	p.report(pr)
}

// onDiff takes the listing diff's size: what each side lacks.
func (p *reconcileProgress) onDiff(onlyLocal, onlyRemote int) {
	p.mu.Lock()
	p.diffed, p.diff = true, 0
	if p.pull {
		p.diff += int64(onlyRemote)
	}
	if p.push {
		p.diff += int64(onlyLocal)
	}
	pr := p.progressLocked()
	p.mu.Unlock()
	p.report(pr)
}

func (p *reconcileProgress) progressLocked() Progress {
	pr := Progress{Applied: p.applied}
	if p.diffed {
		pr.Total = max(p.diff, pr.Applied)
	}
	return pr
}

// watch wraps a tenant so that its applies and listings reach p; SMT tenants keep their SMT
// methods (the copier diffs with them when both sides have them).
func (p *reconcileProgress) watch(t dwn.Tenant, side ls.Side) dwn.Tenant {
	w := watchedTenant{Tenant: t, side: side, p: p}
	if s, ok := t.(dwn.SMTTenant); ok {
		return watchedSMTTenant{watchedTenant: w, smt: s}
	}
	return w
}

type watchedTenant struct {
	dwn.Tenant
	side ls.Side
	p    *reconcileProgress
}

func (w watchedTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	if w.p.crossing != nil {
		if cid, err := msg.MessageCID(message); err == nil {
			w.p.crossing(ctx, w.side, cid)
		}
	}
	r, err := w.Tenant.Apply(ctx, message, data)
	if err == nil && r.Kind == dwn.Applied {
		w.p.onApplied()
	}
	return r, err
}

// EachCID streams the listing through (transfer lists with it; a wrapper without it would
// fall back to ListCIDs, the whole listing as text).
func (w watchedTenant) EachCID(ctx context.Context, scope dwn.Scope, fn func(cid string) error) error {
	return dwn.EachCID(ctx, w.Tenant, scope, fn)
}

// ListingDiffed hears the copier's listing diff (transfer.DiffObserver); only the local side
// is asked.
func (w watchedTenant) ListingDiffed(onlyLocal, onlyRemote int) { w.p.onDiff(onlyLocal, onlyRemote) }

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
