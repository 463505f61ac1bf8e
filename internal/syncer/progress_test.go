package syncer

import (
	"context"
	"slices"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// progressAfterListings is a reconcile progress whose listing diff is in: local and remote
// each hold n CIDs, the last tenth of remote's replaced by others, so each side lacks n/10.
func progressAfterListings(n int, reported *Progress) *reconcileProgress {
	p := &reconcileProgress{pull: true, push: true, report: func(pr Progress) { *reported = pr }}
	p.onDiff(n/10, n/10)
	return p
}

// Counting an applied message costs the same whatever the size of the listings: the diff
// size is counted once when both listings are in, never again per message. (It used to
// rebuild two maps over both listings for every message: quadratic over a bootstrap.)
func TestReconcileProgressPerMessageWorkDoesNotGrowWithTheListings(t *testing.T) {
	var small, large Progress
	ps := progressAfterListings(1_000, &small)
	pl := progressAfterListings(10_000, &large)
	if small.Total != 200 || large.Total != 2_000 {
		t.Fatalf("totals once both listings are in: %d and %d, want 200 and 2000", small.Total, large.Total)
	}
	allocsSmall := testing.AllocsPerRun(50, ps.onApplied)
	allocsLarge := testing.AllocsPerRun(50, pl.onApplied)
	if allocsLarge > allocsSmall || allocsLarge > 1 {
		t.Fatalf("allocations per applied message: %.0f with 1,000 CIDs a side, %.0f with 10,000; want the same, at most 1", allocsSmall, allocsLarge)
	}
	if large.Applied != 51 || large.Total != 2_000 { // AllocsPerRun runs once more to warm up
		t.Fatalf("after 51 applies: %+v, want Applied 51 of Total 2000", large)
	}
}

// More applied than the diff counted (a dependency copied on the way) raises the total with it.
func TestReconcileProgressTotalNeverBelowApplied(t *testing.T) {
	var got Progress
	p := progressAfterListings(10, &got)
	for range 3 {
		p.onApplied()
	}
	if got.Applied != 3 || got.Total != 3 {
		t.Fatalf("got %+v, want Applied 3, Total 3 (the diff counted 1+1 = 2)", got)
	}
}

// What the bootstrap reconcile writes to one side shows on that side's live feed while the
// pass is still running; it must not be copied back (a Duplicate apply per message, doubling
// the servers' work during a bootstrap). Local holds 200 messages, remote none: after the
// bootstrap and a marker written on remote, local has been applied exactly that marker.
func TestEngineBootstrapDoesNotCopyItsOwnWritesBack(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 200, 0, engineOpts{})
	before := p.local.Counts()
	p.waitLiveConverged(t)
	p.settle(t)
	const applyName = "dwn.applyReplicatedMessage"
	if got := p.local.Counts()[applyName] - before[applyName]; got != 1 {
		t.Fatalf("%d applies to local, want 1 (the marker): the bootstrap's pushes came back through the pull feed; counts %v",
			got, diffCounts(before, p.local.Counts()))
	}
}

// listingOnlyTenant lists fixed CIDs and cannot be read: enough for a reconcile to diff.
type listingOnlyTenant struct {
	dwn.Tenant // nil: anything else is not expected
	cids       []string
}

func (l listingOnlyTenant) Endpoint() string { return "test://listing-only" }

func (l listingOnlyTenant) Dialect() dwn.Dialect { return dwn.DialectWeb5 } // a listing is its digest

func (l listingOnlyTenant) ListCIDs(context.Context, dwn.Scope) ([]string, error) { return l.cids, nil }

func (l listingOnlyTenant) Digest(context.Context, dwn.Scope) (dwn.Digest, error) {
	return dwn.Digest{Kind: dwn.DigestListing, Value: msg.ListingDigest(l.cids)}, nil
}

func (l listingOnlyTenant) Read(context.Context, string) (dwn.ReadResult, error) {
	return dwn.ReadResult{}, &dwn.Error{Op: "Read", Kind: dwn.Transient, Detail: "listing only"}
}

// The copier hands the watched tenants its listing diff: the total is known before the first
// message is copied, counted for the allowed direction only.
func TestReconcileProgressTotalFromTheCopiersDiff(t *testing.T) {
	cid := func(i int) string { return msg.RawDataCID([]byte{byte(i)}) }
	local := listingOnlyTenant{cids: []string{cid(1), cid(2), cid(3), cid(4)}}          // remote lacks 1, 2
	remote := listingOnlyTenant{cids: []string{cid(3), cid(4), cid(5), cid(6), cid(7)}} // local lacks 5, 6, 7
	var reports []Progress
	p := &reconcileProgress{pull: true, report: func(pr Progress) { reports = append(reports, pr) }}
	res, err := transfer.Reconcile(context.Background(), p.watch(local, ls.Local), p.watch(remote, ls.Remote), dwn.Scope{}, ls.PullOnly)
	if err != nil || res.OnlyRemote != 3 || res.OnlyLocal != 2 {
		t.Fatalf("reconcile: %v %+v", err, res)
	}
	if !slices.Contains(reports, Progress{Total: 3}) {
		t.Fatalf("reports %+v, want Total 3 (what local lacks) before anything is applied", reports)
	}
}
