package transfer

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strconv"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// heapPeak samples the live heap (after a GC) at chosen moments and keeps the largest.
type heapPeak struct{ peak uint64 }

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (h *heapPeak) sample() { h.peak = max(h.peak, liveHeap()) }

// listedTenant is a fake tenant whose listing also holds `extra` messages that both sides
// have: their CIDs are made up on every listing, as a network client decodes them, so a
// listing costs what the caller keeps of it. It streams (dwn.CIDLister) like web5 does, and
// answers ListCIDs as a []string for callers that ask for one. The heap is sampled when a
// listing has been handed over in full and when a message is applied: the moments the
// reconcile holds its listings.
type listedTenant struct {
	*fakeTenant
	extra int
	kind  dwn.DigestKind
	heap  *heapPeak
}

func sharedCID(i int) string { return msg.RawDataCID([]byte("shared-" + strconv.Itoa(i))) }

func (t listedTenant) EachCID(ctx context.Context, scope dwn.Scope, fn func(string) error) error {
	for i := range t.extra {
		if err := fn(sharedCID(i)); err != nil {
			return err
		}
	}
	own, _ := t.fakeTenant.ListCIDs(ctx, scope)
	for _, c := range own {
		if err := fn(c); err != nil {
			return err
		}
	}
	t.heap.sample()
	return nil
}

func (t listedTenant) ListCIDs(ctx context.Context, scope dwn.Scope) ([]string, error) {
	var cids []string
	_ = t.EachCID(ctx, scope, func(c string) error { cids = append(cids, c); return nil })
	t.heap.sample()
	return cids, nil
}

// Digest is of a kind the other side does not share, so the reconcile lists both sides.
func (t listedTenant) Digest(context.Context, dwn.Scope) (dwn.Digest, error) {
	return dwn.Digest{Kind: t.kind, Value: "not comparable"}, nil
}

func (t listedTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	t.heap.sample()
	return t.fakeTenant.Apply(ctx, message, data)
}

// reconcileHeap is the peak live heap, beyond what was live before, of a reconcile of two
// tenants that share n messages and differ by one (remote's): the listing diff path.
func reconcileHeap(t *testing.T, n int) uint64 {
	t.Helper()
	f := newFactory(t)
	h := &heapPeak{}
	local := listedTenant{fakeTenant: newFakeTenant("local"), extra: n, kind: "test-local", heap: h}
	remote := listedTenant{fakeTenant: newFakeTenant("remote"), extra: n, kind: "test-remote", heap: h}
	remote.seed(t, f.configure("https://example.org/memory"))
	base := liveHeap()
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil || res.Method != MethodListing || res.Pulled != 1 || res.OnlyRemote != 1 || res.OnlyLocal != 0 {
		t.Fatalf("reconcile of %d shared messages: %v %+v", n, err, res)
	}
	if h.peak < base {
		return 0
	}
	return h.peak - base
}

// A reconcile's memory grows with the tenant only by its compact listings (msg.CIDList, ~40
// bytes a CID a side), never by the listing as text (a []string costs ~80-96 bytes a CID a
// side). Measured as the growth of the peak live heap from n to 4n shared messages, per CID
// listed (two listings per message).
func TestReconcileListingMemoryPerCID(t *testing.T) {
	const n = 10_000
	small := reconcileHeap(t, n)
	large := reconcileHeap(t, 4*n)
	perCID := float64(int64(large)-int64(small)) / float64(2*3*n)
	t.Logf("peak heap: %d B with %d shared messages, %d B with %d: %.1f B per listed CID", small, n, large, 4*n, perCID)
	if perCID > 64 {
		t.Fatalf("%.1f heap bytes per listed CID (peak %d B at %d messages, %d B at %d), want ≤ 64: the listing is held as text",
			perCID, small, n, large, 4*n)
	}
}
