package transfer

import (
	"context"
	"fmt"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Diff methods reported in ReconcileResult.Method.
const (
	MethodDigestEqual = "digest-equal" // nothing to do
	MethodSMT         = "smt-diff"     // both sides enbox-smt: one MessagesSync diff (see smtDiff)
	MethodListing     = "listing-diff" // CID listings of both sides
)

// SMTDiffDepth is the depth of the batched SMT diff (256 buckets; spec BATCHED_DIFF_DEPTH).
const SMTDiffDepth = 8

// ReconcileResult reports one reconcile.
type ReconcileResult struct {
	// Converged: the pass is settled for the allowed directions — every message a destination
	// lacked either crossed (Applied, Duplicate, Superseded, KindSourceGone) or was refused for
	// good (Outcome.DeadLetter) in this pass. Another pass would find nothing new to do, so a
	// one-way link or one with a dead letter is converged for its direction.
	Converged bool
	// DigestsEqual: both digests were equal at the end (only then are the servers identical).
	DigestsEqual bool
	// Pulled and Pushed count the messages the other side newly stored (Applied).
	Pulled, Pushed int
	// Failed lists outcomes that did not succeed, pull failures first.
	Failed                    []Outcome
	LocalDigest, RemoteDigest dwn.Digest // after the copy (before it when nothing was copied)
	Method                    string
	OnlyLocal, OnlyRemote     int // size of the diff (the SMT server's over-report filtered out)
	PullResult, PushResult    Result
	// Mark is where both feeds stood when their fingerprints were seen equal, for the next
	// ReconcileSince; nil when this pass could not tell (D25).
	Mark *Mark
	// Fallback says why ReconcileSince ran the full diff although it was given a mark.
	Fallback string
}

// DiffObserver is a local tenant that wants the size of a listing diff as soon as it is
// known, before the copy (a progress total), without keeping listings of its own.
type DiffObserver interface {
	ListingDiffed(onlyLocal, onlyRemote int)
}

// Reconcile compares local and remote for scope with the default Copier.
func Reconcile(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, dir linkstate.Direction) (ReconcileResult, error) {
	var c Copier
	return c.Reconcile(ctx, local, remote, scope, dir)
}

// Reconcile compares the scope's digests on both sides; when they differ it diffs them (SMT
// when both are enbox-smt, CID listings otherwise), copies what is missing each way allowed by
// dir in dependency order (both ways at once, each pipelined: see copyChunked), and compares
// the digests again. The error is for digest, listing or diff failures and a cancelled ctx;
// per-message failures are in Failed. It is ReconcileSince without a mark.
func (c *Copier) Reconcile(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, dir linkstate.Direction) (ReconcileResult, error) {
	return c.reconcileFull(ctx, local, remote, scope, dir)
}

func (c *Copier) reconcileFull(ctx context.Context, local, remote dwn.Tenant, scope dwn.Scope, dir linkstate.Direction) (ReconcileResult, error) {
	var res ReconcileResult
	cmp := digestComparer{scope: scope}
	ld, rd, err := cmp.compare(ctx, local, remote)
	if err != nil {
		return res, err
	}
	res.LocalDigest, res.RemoteDigest = ld, rd
	if ld.Value == rd.Value {
		res.Converged, res.DigestsEqual, res.Method = true, true, MethodDigestEqual
		return res, nil
	}

	var onlyRemote, onlyLocal missingSet
	ls, lok := local.(dwn.SMTTenant)
	rs, rok := remote.(dwn.SMTTenant)
	if lok && rok {
		res.Method = MethodSMT
		var r, l []dwn.Entry
		r, l, err = smtDiff(ctx, ls, rs, scope)
		onlyRemote, onlyLocal = entrySlice(r), entrySlice(l)
	} else {
		res.Method = MethodListing
		onlyRemote, onlyLocal, err = cmp.listingDiff(ctx, local, remote)
	}
	if err != nil {
		return res, err
	}
	if err := c.copyBoth(ctx, local, remote, dir, onlyRemote, onlyLocal, &res); err != nil {
		return res, err
	}

	if cmp.localEnd != nil && cmp.remoteEnd != nil && ld.Kind == dwn.DigestFingerprint && rd.Kind == dwn.DigestFingerprint {
		// Both feeds were listed to their heads: verify from there, which also leaves the
		// next pass a mark (D25) at no extra request.
		v, err := verifyFeeds(ctx, local, remote, scope, *cmp.localEnd, *cmp.remoteEnd)
		if err == nil && v.comparable() {
			v.settle(&res, dir)
			res.Mark = v.mark(local, remote, scope, res.DigestsEqual)
			return res, nil
		}
		if err != nil && !fallsBack(err) {
			return res, fmt.Errorf("verify after copy: %w", err)
		}
	}
	after := digestComparer{scope: scope}
	ld, rd, err = after.compare(ctx, local, remote)
	if err != nil {
		return res, fmt.Errorf("verify after copy: %w", err)
	}
	res.verified(ld, rd, dir)
	return res, nil
}

// verified records the digests read after the copy and whether the pass converged.
func (res *ReconcileResult) verified(ld, rd dwn.Digest, dir linkstate.Direction) {
	res.LocalDigest, res.RemoteDigest = ld, rd
	res.DigestsEqual = ld.Value == rd.Value
	res.Converged = (res.DigestsEqual && dir.Runs(linkstate.Pull) && dir.Runs(linkstate.Push)) ||
		(settled(res.PullResult) && settled(res.PushResult))
}

// copyBoth copies onlyRemote to local and onlyLocal to remote as dir allows, both ways at once
// (each writes to a different server), and records the copies in res. The error is a
// cancelled ctx.
func (c *Copier) copyBoth(ctx context.Context, local, remote dwn.Tenant, dir linkstate.Direction, onlyRemote, onlyLocal missingSet, res *ReconcileResult) error {
	res.OnlyLocal, res.OnlyRemote = onlyLocal.Len(), onlyRemote.Len()
	if o, ok := local.(DiffObserver); ok && res.Method != MethodSMT {
		o.ListingDiffed(res.OnlyLocal, res.OnlyRemote)
	}
	var pullErr, pushErr error
	var wg sync.WaitGroup
	if dir.Runs(linkstate.Pull) && onlyRemote.Len() > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.PullResult, pullErr = c.copyChunked(ctx, remote, local, onlyRemote)
		}()
	}
	if dir.Runs(linkstate.Push) && onlyLocal.Len() > 0 {
		res.PushResult, pushErr = c.copyChunked(ctx, local, remote, onlyLocal)
	}
	wg.Wait()
	res.Pulled = res.PullResult.Count(dwn.Applied)
	res.Pushed = res.PushResult.Count(dwn.Applied)
	res.Failed = append(res.PullResult.Failed(), res.PushResult.Failed()...)
	for _, err := range []error{pullErr, pushErr} {
		if err != nil {
			return err // a cancelled ctx
		}
	}
	return nil
}

// settled reports whether every entry of a copy either crossed or was refused for good: what
// is left is only what the caller dead-letters, so repeating the pass cannot change anything.
func settled(r Result) bool {
	for _, o := range r.Outcomes {
		if !o.Succeeded() && !o.DeadLetter() {
			return false
		}
	}
	return true
}

// chunkAbort is the transient failure that stopped a chunk, if any.
func chunkAbort(ctx context.Context, r Result) error {
	for _, o := range r.Outcomes {
		if cause := abortCause(ctx, o.Err); cause != nil {
			return cause
		}
	}
	return nil
}

// digestComparer obtains comparable digests of both sides, remembering listings it had to
// fetch so the diff can reuse them. Listings are kept compact (msg.CIDList, ~40 bytes a CID):
// they are the part of a reconcile's memory that grows with the tenant.
type digestComparer struct {
	scope                 dwn.Scope
	localCIDs, remoteCIDs *msg.CIDList // nil until listed
	// localEnd, remoteEnd: where a listing of a durable feed ended (its head then), nil
	// otherwise.
	localEnd, remoteEnd *dwn.Cursor
}

func (d *digestComparer) compare(ctx context.Context, local, remote dwn.Tenant) (dwn.Digest, dwn.Digest, error) {
	ld, err := d.digest(ctx, local, true)
	if err != nil {
		return ld, dwn.Digest{}, fmt.Errorf("digest of %s: %w", local.Endpoint(), err)
	}
	rd, err := d.digest(ctx, remote, false)
	if err != nil {
		return ld, rd, fmt.Errorf("digest of %s: %w", remote.Endpoint(), err)
	}
	if ld.Kind == rd.Kind {
		return ld, rd, nil
	}
	// Different kinds are not comparable: compute the listing digest on both sides.
	if ld.Kind != dwn.DigestListing {
		if ld, err = d.listingDigest(ctx, local, true); err != nil {
			return ld, rd, err
		}
	}
	if rd.Kind != dwn.DigestListing {
		if rd, err = d.listingDigest(ctx, remote, false); err != nil {
			return ld, rd, err
		}
	}
	return ld, rd, nil
}

// digest is the tenant's own digest, except where that is a listing anyway (web5 servers
// have neither fingerprint nor tree): then the comparer lists, so that a diff after a
// mismatch reuses the listing instead of listing the tenant a second time.
func (d *digestComparer) digest(ctx context.Context, t dwn.Tenant, isLocal bool) (dwn.Digest, error) {
	if t.Dialect() == dwn.DialectWeb5 {
		return d.listingDigest(ctx, t, isLocal)
	}
	return t.Digest(ctx, d.scope)
}

func (d *digestComparer) listingDigest(ctx context.Context, t dwn.Tenant, isLocal bool) (dwn.Digest, error) {
	cids, err := d.list(ctx, t, isLocal)
	if err != nil {
		return dwn.Digest{}, err
	}
	return dwn.Digest{Kind: dwn.DigestListing, Value: cids.ListingDigest()}, nil
}

func (d *digestComparer) list(ctx context.Context, t dwn.Tenant, isLocal bool) (*msg.CIDList, error) {
	kept := &d.remoteCIDs
	if isLocal {
		kept = &d.localCIDs
	}
	if *kept != nil {
		return *kept, nil
	}
	if hasFeed(t) {
		s, err := scanFeed(ctx, t, d.scope, nil, 0)
		if dwn.IsUnsupported(err) { // a tenant that lists but cannot page (test doubles)
			return d.listAll(ctx, t, kept)
		}
		if err != nil {
			return nil, fmt.Errorf("list CIDs of %s: %w", t.Endpoint(), err)
		}
		if s.drained {
			end := &d.remoteEnd
			if isLocal {
				end = &d.localEnd
			}
			*end = s.cursor
		}
		*kept = s.cids
		return s.cids, nil
	}
	return d.listAll(ctx, t, kept)
}

func (d *digestComparer) listAll(ctx context.Context, t dwn.Tenant, kept **msg.CIDList) (*msg.CIDList, error) {
	cids, err := dwn.ListCIDList(ctx, t, d.scope) // streamed: never the whole listing as text
	if err != nil {
		return nil, fmt.Errorf("list CIDs of %s: %w", t.Endpoint(), err)
	}
	*kept = cids
	return cids, nil
}

// listingDiff lists both sides and returns what each lacks, in the owner's listing order (feed
// order, which already puts most dependencies first). The comparer lets go of the listings:
// from here each is held only by the diff that copies from it.
func (d *digestComparer) listingDiff(ctx context.Context, local, remote dwn.Tenant) (onlyRemote, onlyLocal missingSet, err error) {
	lc, err := d.list(ctx, local, true)
	if err != nil {
		return nil, nil, err
	}
	rc, err := d.list(ctx, remote, false)
	if err != nil {
		return nil, nil, err
	}
	d.localCIDs, d.remoteCIDs = nil, nil
	return missingFrom(rc, lc), missingFrom(lc, rc), nil
}

// missingSet is what one side lacks, handed to the copy a batch at a time.
type missingSet interface {
	Len() int
	Entries(start, end int) []dwn.Entry // fresh for a listing diff: the caller may keep them
}

// entrySlice is a diff that came as entries (the SMT diff).
type entrySlice []dwn.Entry

func (s entrySlice) Len() int                           { return len(s) }
func (s entrySlice) Entries(start, end int) []dwn.Entry { return s[start:end] }

// listingMissing is a listing diff as positions in the owner's listing: 4 bytes a missing
// message instead of an entry (~170 bytes with its CID), so a bootstrap of a large tenant
// holds entries for one batch at a time.
type listingMissing struct {
	list *msg.CIDList // indexed: only read from here on, by one copy direction
	at   []int32
}

func (m listingMissing) Len() int { return len(m.at) }

func (m listingMissing) Entries(start, end int) []dwn.Entry {
	out := make([]dwn.Entry, end-start)
	for i := range out {
		out[i] = dwn.Entry{CID: m.list.At(int(m.at[start+i]))}
	}
	return out
}

// missingFrom is the CIDs of have that other lacks, once each, in have's order.
func missingFrom(have, other *msg.CIDList) listingMissing {
	m := listingMissing{list: have}
	for i := range have.Len() {
		c := have.At(i)
		if have.Index(c) == i && !other.Has(c) {
			m.at = append(m.at, int32(i))
		}
	}
	return m
}
