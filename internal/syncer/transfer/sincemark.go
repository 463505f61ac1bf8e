package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// MethodSinceMark is the diff of what each feed admitted since the sides were last seen equal
// (ReconcileSince; D25 in docs/decisions.md).
const MethodSinceMark = "since-mark"

// Defaults for the narrowed reconcile.
const (
	// DefaultSinceMarkLimit is how many messages one side may have admitted since the mark
	// before the narrowed reconcile gives way to the full listing diff.
	DefaultSinceMarkLimit = 4000
	// DefaultSinceMarkContentBytes bounds what the narrowed reconcile takes inline from the
	// feed per side: 4,000 messages of 30 KB each would otherwise be ~130 MB a side, held
	// before the copy starts, for every reconcile slot at once.
	DefaultSinceMarkContentBytes = 8 << 20
	feedPageLimit                = 1000 // the schema's cap on a MessagesQuery limit
	contentPageLimit             = 250  // entries with messages and inline data: up to ~30 KB each
)

// Mark is where the two feeds of a link stood when their fingerprints were last seen equal:
// each cursor is at or before its side's head at the moment its equal fingerprint was taken.
// So everything a side holds that the other may lack was admitted after its cursor, except
// what later went missing on the other side (a deletion, a restore): the fingerprints after the
// copy catch that, and the full diff runs (D25).
type Mark struct {
	LocalEndpoint, RemoteEndpoint, DID string
	Scope                              dwn.Scope
	Local, Remote                      dwn.Cursor
}

// fits reports whether m was taken on these two feeds for this scope.
func (m *Mark) fits(local, remote dwn.Tenant, scope dwn.Scope) bool {
	return m != nil && m.Local.Valid() && m.Remote.Valid() && hasFeed(local) && hasFeed(remote) &&
		m.LocalEndpoint == local.Endpoint() && m.RemoteEndpoint == remote.Endpoint() && m.DID == local.DID() &&
		m.Scope.Protocol == scope.Protocol && slices.Equal(m.Scope.ProtocolPathPrefixes, scope.ProtocolPathPrefixes)
}

// hasFeed reports whether t's MessagesQuery is a durable feed with fingerprints.
func hasFeed(t dwn.Tenant) bool { return t.Dialect() == dwn.DialectEnbox }

// errFallBack says why the narrowed reconcile gave way to the full diff; useless marks the
// mark as one that can never help (kept marks are still true, only not enough this time).
type errFallBack struct {
	reason  string
	useless bool
}

func (e errFallBack) Error() string { return "since the mark: " + e.reason }

// fallsBack reports whether err means "use the full diff" rather than "fail the pass": a
// ProgressGap (the epoch or stream changed, the token is too new or too old) or a reason of
// the narrowed reconcile itself.
func fallsBack(err error) bool {
	var fb errFallBack
	if errors.As(err, &fb) {
		return true
	}
	_, gap := dwn.AsGap(err)
	return gap
}

// ReconcileSince is Reconcile for a link that remembers a Mark: when since fits, it scans
// each feed only after its cursor (one page of CIDs each, with the fingerprint), copies what one
// side admitted and the other lacks (their messages taken inline from a second page), and
// checks the fingerprints again. Whenever that cannot prove the sides equal (a gap, no
// fingerprint, too much admitted, or fingerprints that still differ) the full diff of Reconcile
// runs after it, so a difference older than the mark is still found. ReconcileResult.Mark is
// the mark to pass next time.
func (c *Copier) ReconcileSince(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, dir linkstate.Direction, since *Mark) (ReconcileResult, error) {
	if !since.fits(local, remote, scope) {
		res, err := c.reconcileFull(ctx, local, remote, scope, dir)
		if since != nil {
			res.Fallback = "the mark was taken on other feeds or another scope"
		}
		return res, err
	}
	narrow, err := c.sinceMark(ctx, local, remote, scope, dir, since)
	if err == nil {
		return narrow, nil
	}
	if !fallsBack(err) {
		narrow.Mark = since // a failed call says nothing against the mark
		return narrow, err
	}
	res, ferr := c.reconcileFull(ctx, local, remote, scope, dir)
	res.Fallback = err.Error()
	res.keepEarlier(narrow)
	// The full diff leaves a new mark when it ends equal. When it ends different (a one-way
	// link, a dead letter), the old mark would only make every later pass pay for its scans
	// before the same full diff, so it is dropped; it is kept only when the full diff failed
	// (a failed call says nothing against it).
	if res.Mark == nil && ferr != nil && !useless(err) {
		res.Mark = since
	}
	return res, ferr
}

// useless reports whether a fallback's cause means the mark can never help: a gap (its
// cursors are dead) or a scope without fingerprints.
func useless(err error) bool {
	var fb errFallBack
	if errors.As(err, &fb) {
		return fb.useless
	}
	_, gap := dwn.AsGap(err)
	return gap
}

// sinceMark is the narrowed reconcile; an errFallBack or a gap says the full diff must run.
// The result holds what it copied before it gave way.
func (c *Copier) sinceMark(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, dir linkstate.Direction, m *Mark) (ReconcileResult, error) {
	res := ReconcileResult{Method: MethodSinceMark}
	limit := orDefault(c.SinceMarkLimit, DefaultSinceMarkLimit)
	// A first page of each side decides whether they differ; only then is the rest listed.
	ls, rs := feedScan{cids: &msg.CIDList{}, cursor: &m.Local}, feedScan{cids: &msg.CIDList{}, cursor: &m.Remote}
	if err := scanBoth(ctx, local, remote, scope, &ls, &rs, limit, 1); err != nil {
		return res, err
	}
	if ls.fingerprint == "" || rs.fingerprint == "" {
		return res, errFallBack{reason: "the servers report no fingerprint for this scope", useless: true}
	}
	res.LocalDigest, res.RemoteDigest = ls.digest(), rs.digest()
	if ls.fingerprint == rs.fingerprint {
		res.Method, res.Converged, res.DigestsEqual = MethodDigestEqual, true, true
		res.Mark = newMark(local, remote, scope, ls.cursor, rs.cursor)
		return res, nil
	}
	if err := scanBoth(ctx, local, remote, scope, &ls, &rs, limit, 0); err != nil {
		return res, err
	}
	if !ls.drained || !rs.drained || ls.cids.Len() > limit || rs.cids.Len() > limit {
		return res, errFallBack{reason: fmt.Sprintf("more than %d messages admitted since the mark", limit)}
	}
	onlyRemote, onlyLocal := missingFrom(rs.cids, ls.cids), missingFrom(ls.cids, rs.cids)
	if !dir.Runs(linkstate.Pull) && onlyRemote.Len() > 0 || !dir.Runs(linkstate.Push) && onlyLocal.Len() > 0 {
		return res, errFallBack{reason: "a one-way link whose sides cannot become equal"}
	}
	if onlyRemote.Len()+onlyLocal.Len() == 0 {
		return res, errFallBack{reason: "the difference is older than the mark"}
	}
	budget := orDefault(c.SinceMarkContentBytes, DefaultSinceMarkContentBytes)
	pull, err := withContent(ctx, remote, scope, &m.Remote, onlyRemote, rs.cids.Len(), budget)
	if err != nil {
		return res, err
	}
	push, err := withContent(ctx, local, scope, &m.Local, onlyLocal, ls.cids.Len(), budget)
	if err != nil {
		return res, err
	}
	if err := c.copyBoth(ctx, local, remote, dir, pull, push, &res); err != nil {
		return res, err
	}
	if !settled(res.PullResult) || !settled(res.PushResult) {
		// Some copies failed for now (a transient error, Deferred): not converged, and the
		// link retries from the same mark; listing the tenant would not help.
		res.Mark = m
		return res, nil
	}
	v, err := verifyFeeds(ctx, local, remote, scope, *ls.cursor, *rs.cursor)
	if err != nil {
		return res, err
	}
	if !v.comparable() {
		return res, errFallBack{reason: "the servers report no fingerprint for this scope", useless: true}
	}
	v.settle(&res, dir)
	res.Mark = v.mark(local, remote, scope, res.DigestsEqual)
	if !res.DigestsEqual {
		return res, errFallBack{reason: "the fingerprints still differ after copying what was admitted since the mark"}
	}
	return res, nil
}

func newMark(local, remote dwn.Tenant, scope dwn.Scope, l, r *dwn.Cursor) *Mark {
	if l == nil || r == nil || !l.Valid() || !r.Valid() {
		return nil
	}
	return &Mark{LocalEndpoint: local.Endpoint(), RemoteEndpoint: remote.Endpoint(), DID: local.DID(), Scope: scope, Local: *l, Remote: *r}
}

// feedScan is a CID-only scan of a feed: what it listed, and the fingerprint and cursor of
// its last page (one reply, so the cursor is at or before the head the fingerprint saw).
type feedScan struct {
	cids        *msg.CIDList
	fingerprint string
	cursor      *dwn.Cursor
	drained     bool
}

func (s feedScan) digest() dwn.Digest {
	return dwn.Digest{Kind: dwn.DigestFingerprint, Value: s.fingerprint}
}

// scanFeed pages t's feed after `after` (nil: from the start) with CIDs only until drained or
// until more than limit CIDs were listed (limit 0: no bound).
func scanFeed(ctx context.Context, t dwn.Tenant, scope dwn.Scope, after *dwn.Cursor, limit int) (feedScan, error) {
	s := feedScan{cids: &msg.CIDList{}, cursor: after}
	return s, s.scan(ctx, t, scope, limit, 0)
}

// scan goes on from where s stands, for at most pages pages (0: no bound). Every cursor must
// stay in the domain of the one before and never move back, as the feed contract requires;
// otherwise it is a gap. A page that ends where the last one did ends the scan, as drained.
func (s *feedScan) scan(ctx context.Context, t dwn.Tenant, scope dwn.Scope, limit, pages int) error {
	for page := 1; !s.drained; page++ {
		p, err := t.FeedPage(ctx, scope, s.cursor, feedPageLimit, true)
		if err != nil {
			return err
		}
		if p.Cursor == nil || !p.Cursor.Valid() || (s.cursor != nil && !notBefore(*s.cursor, *p.Cursor)) {
			return &dwn.GapError{Reason: "invalid_token", Requested: s.cursor}
		}
		for _, e := range p.Entries {
			s.cids.Add(e.CID)
		}
		stalled := s.cursor != nil && p.Cursor.Position == s.cursor.Position
		s.cursor, s.fingerprint, s.drained = p.Cursor, p.Fingerprint, p.Drained || stalled
		if page == pages || limit > 0 && s.cids.Len() > limit {
			break
		}
	}
	return nil
}

// scanBoth goes on with the scans of both sides (see scan).
func scanBoth(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, ls, rs *feedScan, limit, pages int) error {
	if err := ls.scan(ctx, local, scope, limit, pages); err != nil {
		return err
	}
	return rs.scan(ctx, remote, scope, limit, pages)
}

// notBefore reports whether next may follow prev in one scan: same stream and epoch, and a
// position that did not move back.
func notBefore(prev, next dwn.Cursor) bool {
	if prev.Domain() != next.Domain() {
		return false
	}
	p, okp := prev.Sequence()
	n, okn := next.Sequence()
	return okp && okn && n >= p
}

// withContent turns the CIDs of want into the feed's own entries, message and inline data
// included, read from the pages after `after` (at most scanned entries: what the CID scan
// saw), so that the copy reads only what came without data. It keeps at most budget bytes of
// messages and data (a server's pages may be large, and the copy has not started yet): an
// entry not met, or met past the budget, keeps its CID alone, and the copy reads it.
func withContent(ctx context.Context, t dwn.Tenant, scope dwn.Scope, after *dwn.Cursor, want listingMissing, scanned, budget int) (entrySlice, error) {
	out := entrySlice(want.Entries(0, want.Len()))
	at := make(map[string]int, len(out))
	for i, e := range out {
		at[e.CID] = i
	}
	left, held, cur := len(out), 0, after
	for seen := 0; left > 0 && seen < scanned && held < budget; {
		p, err := t.FeedPage(ctx, scope, cur, min(contentPageLimit, scanned-seen), false)
		if err != nil {
			return out, err
		}
		for _, e := range p.Entries {
			if held >= budget {
				break
			}
			if i, ok := at[e.CID]; ok && out[i].Message == nil && e.Message != nil {
				e.Cursor = nil
				out[i] = e
				left--
				held += len(e.Message) + len(e.InlineData) + len(e.InitialWrite)
			}
		}
		seen += len(p.Entries)
		if p.Drained || p.Cursor == nil || len(p.Entries) == 0 {
			break
		}
		cur = p.Cursor
	}
	return out, nil
}

// feedVerify is both sides' fingerprints after a copy, scanned from where their listings
// ended, so that the cursors can be the next mark.
type feedVerify struct{ local, remote feedScan }

// verifyFeeds reads one CID page of each feed after the given cursors (what the copy
// admitted) for their fingerprints, and cursors for the next mark.
func verifyFeeds(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, l, r dwn.Cursor) (feedVerify, error) {
	v := feedVerify{local: feedScan{cids: &msg.CIDList{}, cursor: &l}, remote: feedScan{cids: &msg.CIDList{}, cursor: &r}}
	return v, scanBoth(ctx, local, remote, scope, &v.local, &v.remote, 0, 1)
}

func (v feedVerify) comparable() bool {
	return v.local.fingerprint != "" && v.remote.fingerprint != ""
}

// settle records the verified digests in res, and the mark when they are equal.
func (v feedVerify) settle(res *ReconcileResult, dir linkstate.Direction) {
	res.verified(v.local.digest(), v.remote.digest(), dir)
}

// mark is the next pass's mark when the fingerprints were equal, else nil.
func (v feedVerify) mark(local, remote dwn.Tenant, scope dwn.Scope, equal bool) *Mark {
	if !equal {
		return nil
	}
	return newMark(local, remote, scope, v.local.cursor, v.remote.cursor)
}

// keepEarlier adds what an abandoned narrowed pass copied to the full pass's result, for the
// CIDs the full pass did not copy again (its outcome is the later word on those).
func (res *ReconcileResult) keepEarlier(narrow ReconcileResult) {
	merge := func(later *Result, earlier Result) {
		seen := make(map[string]bool, len(later.Outcomes))
		for _, o := range later.Outcomes {
			seen[o.CID] = true
		}
		for _, o := range earlier.Outcomes {
			if !seen[o.CID] {
				later.Outcomes = append(later.Outcomes, o)
			}
		}
	}
	merge(&res.PullResult, narrow.PullResult)
	merge(&res.PushResult, narrow.PushResult)
	res.Pulled = res.PullResult.Count(dwn.Applied)
	res.Pushed = res.PushResult.Count(dwn.Applied)
	res.Failed = append(res.PullResult.Failed(), res.PushResult.Failed()...)
}
