package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// fakeSMTTenant adds the seed-era MessagesSync primitives to a fake, with the server's diff
// semantics (a bucket that differs sends all its server leaves back and is reported onlyLocal
// too: docs/engine-behaviour.md#e21). It counts subtree requests.
type fakeSMTTenant struct {
	*fakeTenant
	subtreeCalls atomic.Int64
	hashesSent   atomic.Int64 // the most hashes one diff received
}

func (t *fakeSMTTenant) Dialect() dwn.Dialect { return dwn.DialectEnboxSMT }

func (t *fakeSMTTenant) tree() *msg.SMT {
	tree := msg.NewSMT()
	cids, _ := t.ListCIDs(context.Background(), dwn.Scope{})
	for _, c := range cids {
		tree.Insert(c)
	}
	return tree
}

func (t *fakeSMTTenant) Digest(ctx context.Context, s dwn.Scope) (dwn.Digest, error) {
	return dwn.Digest{Kind: dwn.DigestSMTRoot, Value: t.tree().Root()}, nil
}
func (t *fakeSMTTenant) SMTRoot(context.Context, dwn.Scope) (string, error) {
	return t.tree().Root(), nil
}
func (t *fakeSMTTenant) SMTSubtree(_ context.Context, _ dwn.Scope, prefix string) (string, error) {
	t.subtreeCalls.Add(1)
	return t.tree().Subtree(prefix), nil
}
func (t *fakeSMTTenant) SMTLeaves(_ context.Context, _ dwn.Scope, prefix string) ([]string, error) {
	return t.tree().Leaves(prefix), nil
}
func (t *fakeSMTTenant) SMTDiff(_ context.Context, _ dwn.Scope, hashes map[string]string, depth int) ([]dwn.Entry, []string, error) {
	if n := int64(len(hashes)); n > t.hashesSent.Load() {
		t.hashesSent.Store(n)
	}
	mine := t.tree().Hashes(depth)
	var onlyRemote []dwn.Entry
	var onlyLocal []string
	prefixes := map[string]bool{}
	for p := range hashes {
		prefixes[p] = true
	}
	for p := range mine {
		prefixes[p] = true
	}
	for p := range prefixes {
		theirs, ok := hashes[p]
		ours, have := mine[p]
		switch {
		case ok && have && theirs == ours:
		case ok && !have:
			onlyLocal = append(onlyLocal, p)
		default:
			for _, c := range t.tree().Leaves(p) {
				t.mu.Lock()
				onlyRemote = append(onlyRemote, dwn.Entry{CID: c, Message: t.msgs[c].message})
				t.mu.Unlock()
			}
			if ok {
				onlyLocal = append(onlyLocal, p)
			}
		}
	}
	return onlyRemote, onlyLocal, nil
}

// seedDisjoint gives a and b each their own protocol records plus a shared configure.
func seedDisjoint(t *testing.T, a, b *fakeTenant) {
	fa, fb := newFactory(t), newFactory(t)
	cfg := fa.configure(proto)
	a.seed(t, cfg)
	b.seed(t, cfg)
	for i := 0; i < 40; i++ {
		wa := fa.write(proto, "note", "", payload(100+i, byte(i)))
		wb := fb.write(proto, "note", "", payload(40000+i, byte(i)))
		a.seed(t, wa)
		b.seed(t, wb)
		if i%5 == 0 {
			a.seed(t, fa.update(wa, payload(60, byte(i))))
			b.seed(t, fb.delete(wb))
		}
	}
}

func assertIdentical(t *testing.T, a, b *fakeTenant) {
	t.Helper()
	if !reflect.DeepEqual(a.sortedCIDs(), b.sortedCIDs()) {
		t.Fatalf("CID sets differ: %d vs %d", len(a.sortedCIDs()), len(b.sortedCIDs()))
	}
	if !reflect.DeepEqual(a.dataHashes(), b.dataHashes()) {
		t.Fatal("data hashes differ")
	}
}

func TestReconcileListingBothWaysThenNoop(t *testing.T) {
	local, remote := newFakeTenant("local"), newFakeTenant("remote")
	seedDisjoint(t, local, remote)
	ctx := context.Background()

	res, err := Reconcile(ctx, local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Converged || res.Method != MethodListing || len(res.Failed) != 0 {
		t.Fatalf("first reconcile: %+v", res)
	}
	if res.Pulled != 48 || res.Pushed != 48 { // 40 writes + 8 deletes / 40 writes + 8 updates
		t.Fatalf("pulled %d pushed %d, want 48 and 48", res.Pulled, res.Pushed)
	}
	assertIdentical(t, local, remote)

	applies := len(local.applies) + len(remote.applies)
	res, err = Reconcile(ctx, local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil || !res.Converged || res.Method != MethodDigestEqual || res.Pulled+res.Pushed != 0 {
		t.Fatalf("second reconcile: %v %+v", err, res)
	}
	if n := len(local.applies) + len(remote.applies); n != applies {
		t.Fatalf("a converged reconcile applied %d messages", n-applies)
	}
}

func TestReconcileOneDirection(t *testing.T) {
	local, remote := newFakeTenant("local"), newFakeTenant("remote")
	seedDisjoint(t, local, remote)
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.PullOnly)
	if err != nil {
		t.Fatal(err)
	}
	// Everything the allowed direction needed crossed: settled (converged for the link's
	// direction) even though the digests still differ.
	if !res.Converged || res.DigestsEqual || res.Pulled != 48 || res.Pushed != 0 {
		t.Fatalf("pull only: %+v", res)
	}
	if len(remote.applies) != 0 {
		t.Fatal("pull-only reconcile wrote to the remote")
	}
	res, err = Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.PushOnly)
	if err != nil || !res.Converged || !res.DigestsEqual || res.Pushed != 48 {
		t.Fatalf("push only afterwards: %v %+v", err, res)
	}
	assertIdentical(t, local, remote)
}

// Both sides enbox-smt: the server's diff over-reports (docs/engine-behaviour.md#e21); the
// copier filters it against its own leaves, so exactly the differences cross, without walking
// the tree.
func TestReconcileSMT(t *testing.T) {
	local, remote := &fakeSMTTenant{fakeTenant: newFakeTenant("local")}, &fakeSMTTenant{fakeTenant: newFakeTenant("remote")}
	seedDisjoint(t, local.fakeTenant, remote.fakeTenant)
	// 100 messages on both sides: with 256 buckets, buckets holding a shared message and a
	// one-sided one are certain in practice (the chance of none is about 1e-16).
	f := newFactory(t)
	for i := 0; i < 100; i++ {
		w := f.write(proto, "note", "", payload(10, byte(i)))
		local.seed(t, w)
		remote.seed(t, w)
	}
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Converged || res.Method != MethodSMT || len(res.Failed) != 0 {
		t.Fatalf("smt reconcile: %+v", res)
	}
	if res.OnlyRemote != 48 || res.OnlyLocal != 48 || res.Pulled != 48 || res.Pushed != 48 {
		t.Fatalf("diff %d remote-only, %d local-only, pulled %d, pushed %d: want exactly 48 each", res.OnlyRemote, res.OnlyLocal, res.Pulled, res.Pushed)
	}
	if n := res.PullResult.Count(dwn.Duplicate) + res.PushResult.Count(dwn.Duplicate); n != 0 {
		t.Fatalf("%d over-reported messages were copied anyway", n)
	}
	assertIdentical(t, local.fakeTenant, remote.fakeTenant)
	if n := local.subtreeCalls.Load() + remote.subtreeCalls.Load(); n != 0 {
		t.Fatalf("%d subtree requests; the diff needs none", n)
	}
	if n := remote.hashesSent.Load(); n == 0 || n > smtDiffMaxHashes {
		t.Fatalf("the diff sent %d hashes, want 1 to %d", n, smtDiffMaxHashes)
	}
}

// fakeWeb5Tenant is a fake with web5's digest: a listing (no fingerprint, no tree). It counts
// listings, each a request per page to a web5 server.
type fakeWeb5Tenant struct {
	*fakeTenant
	listings atomic.Int64
}

func (t *fakeWeb5Tenant) Dialect() dwn.Dialect { return dwn.DialectWeb5 }
func (t *fakeWeb5Tenant) ListCIDs(ctx context.Context, s dwn.Scope) ([]string, error) {
	t.listings.Add(1)
	return t.fakeTenant.ListCIDs(ctx, s)
}
func (t *fakeWeb5Tenant) Digest(ctx context.Context, s dwn.Scope) (dwn.Digest, error) {
	cids, _ := t.ListCIDs(ctx, s)
	return dwn.Digest{Kind: dwn.DigestListing, Value: msg.ListingDigest(cids)}, nil
}

// Where the digest is a listing, a reconcile that finds differences lists each side twice:
// once for the digest, which the diff reuses, and once to verify after the copy.
func TestReconcileWeb5ListsEachSideTwice(t *testing.T) {
	local, remote := &fakeWeb5Tenant{fakeTenant: newFakeTenant("local")}, &fakeWeb5Tenant{fakeTenant: newFakeTenant("remote")}
	seedDisjoint(t, local.fakeTenant, remote.fakeTenant)
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil || !res.Converged || !res.DigestsEqual || res.Method != MethodListing {
		t.Fatalf("%v %+v", err, res)
	}
	if l, r := local.listings.Load(), remote.listings.Load(); l != 2 || r != 2 {
		t.Fatalf("listed local %d and remote %d times, want 2 each", l, r)
	}
}

// One side reports an SMT root, the other a listing digest: not comparable, so both listing
// digests are computed, and the diff uses listings.
func TestReconcileMixedDigestKinds(t *testing.T) {
	local, remote := &fakeSMTTenant{fakeTenant: newFakeTenant("local")}, newFakeTenant("remote")
	seedDisjoint(t, local.fakeTenant, remote)
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil || !res.Converged || res.Method != MethodListing {
		t.Fatalf("%v %+v", err, res)
	}
	if res.LocalDigest.Kind != dwn.DigestListing || res.LocalDigest != res.RemoteDigest {
		t.Fatalf("digests %+v %+v", res.LocalDigest, res.RemoteDigest)
	}
	res, err = Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil || !res.Converged || res.Method != MethodDigestEqual {
		t.Fatalf("second: %v %+v", err, res)
	}
}

// The diff goes as deep as the hashes sent fit in smtDiffMaxHashes, and no deeper.
func TestSMTDiffDepth(t *testing.T) {
	for _, n := range []int{0, 1, 100, 128, 129, 5000, 20000} {
		cids := make([]string, n)
		for i := range cids {
			cids[i] = fmt.Sprintf("bafyreidepth%05d", i)
		}
		tree := msg.NewSMTOf(cids)
		depth := smtDiffDepth(tree)
		if sent := len(tree.Hashes(depth)); sent > smtDiffMaxHashes || depth < 7 {
			t.Fatalf("%d leaves: depth %d sends %d hashes (at most %d, depth at least 7)", n, depth, sent, smtDiffMaxHashes)
		}
		if depth < SMTDiffMaxDepth && tree.Buckets(depth+1) <= smtDiffMaxHashes {
			t.Fatalf("%d leaves: depth %d, but depth %d would fit too", n, depth, depth+1)
		}
	}
}

// A pull-only pass with nothing to pull is settled at once, whatever local holds extra.
func TestReconcileOneDirectionNothingToCopyIsSettled(t *testing.T) {
	local, remote := newFakeTenant("local"), newFakeTenant("remote")
	f := newFactory(t)
	local.seed(t, f.configure(proto))
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.PullOnly)
	if err != nil || !res.Converged || res.DigestsEqual || len(remote.applies)+len(local.applies) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
}

// A message refused for good (here: the source serves a tampered copy) is what the caller
// dead-letters; the pass is settled, so the link does not re-compare forever. A transient
// failure is not settled.
func TestReconcileSettledWithDeadLetterNotWithTransient(t *testing.T) {
	local, remote := newFakeTenant("local"), newFakeTenant("remote")
	f := newFactory(t)
	cfg := f.configure(proto)
	local.seed(t, cfg)
	remote.seed(t, cfg)
	good, bad := f.write(proto, "note", "", payload(50, 1)), f.write(proto, "note", "", payload(50, 2))
	remote.seed(t, good, bad)
	remote.corrupt[bad.CID] = true
	res, err := Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Converged || res.DigestsEqual || res.Pulled != 1 || len(res.Failed) != 1 || !res.Failed[0].DeadLetter() {
		t.Fatalf("dead letter pass: %+v", res)
	}

	remote.corrupt[bad.CID] = false
	remote.failReads = 1 << 20 // every read of the source fails transiently
	res, err = Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.PullOnly)
	if err != nil || res.Converged || len(res.Failed) != 1 {
		t.Fatalf("a pass with a transient failure must not be settled: %v %+v", err, res)
	}
}

// orderTenant records, across a pair of tenants, how many messages were read from the
// source and not yet applied to the destination, and the most there ever were.
type orderTenant struct {
	*fakeTenant
	mu                *sync.Mutex
	read, applied     map[string]bool
	outstanding, peak *int
	isSource          bool
}

func (o orderTenant) Read(ctx context.Context, cid string) (dwn.ReadResult, error) {
	rr, err := o.fakeTenant.Read(ctx, cid)
	o.mu.Lock()
	if o.isSource && !o.read[cid] {
		o.read[cid] = true
		*o.outstanding++
		*o.peak = max(*o.peak, *o.outstanding)
	}
	o.mu.Unlock()
	return rr, err
}

func (o orderTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	res, err := o.fakeTenant.Apply(ctx, message, data)
	cid, _ := msg.MessageCID(message)
	o.mu.Lock()
	if !o.isSource && !o.applied[cid] && o.read[cid] {
		o.applied[cid] = true
		*o.outstanding--
	}
	o.mu.Unlock()
	return res, err
}

// Reconcile copies the missing set a chunk at a time: no more than a chunk's messages are
// ever read and not yet applied (the whole set was, before chunking).
func TestReconcileCopiesInChunks(t *testing.T) {
	local, remote := newFakeTenant("local"), newFakeTenant("remote")
	f := newFactory(t)
	cfg := f.configure(proto)
	local.seed(t, cfg)
	remote.seed(t, cfg)
	for i := 0; i < 20; i++ {
		remote.seed(t, f.write(proto, "note", "", payload(50, byte(i))))
	}
	var mu sync.Mutex
	var outstanding, peak int
	read, applied := map[string]bool{}, map[string]bool{}
	src := orderTenant{fakeTenant: remote, mu: &mu, read: read, applied: applied, outstanding: &outstanding, peak: &peak, isSource: true}
	dst := orderTenant{fakeTenant: local, mu: &mu, read: read, applied: applied, outstanding: &outstanding, peak: &peak}
	c := Copier{ReconcileChunk: 3}
	res, err := c.Reconcile(context.Background(), dst, src, dwn.Scope{}, linkstate.PullOnly)
	if err != nil || res.Pulled != 20 || !res.DigestsEqual || len(res.PullResult.Outcomes) != 20 {
		t.Fatalf("%v %+v", err, res)
	}
	if peak > 3 {
		t.Fatalf("%d messages were held read and unapplied at once; the chunk is 3", peak)
	}
}

// A transient failure in one chunk stops the later chunks (they would fail the same way) and
// they are reported, one outcome per entry, as not attempted.
func TestReconcileChunksStopAfterTransient(t *testing.T) {
	local, remote := newFakeTenant("local"), newFakeTenant("remote")
	f := newFactory(t)
	cfg := f.configure(proto)
	local.seed(t, cfg)
	remote.seed(t, cfg)
	for i := 0; i < 9; i++ {
		remote.seed(t, f.write(proto, "note", "", payload(50, byte(i))))
	}
	local.failApplies = 1 << 20
	c := Copier{ReconcileChunk: 3}
	res, err := c.Reconcile(context.Background(), local, remote, dwn.Scope{}, linkstate.PullOnly)
	if err != nil || res.Converged || len(res.PullResult.Outcomes) != 9 {
		t.Fatalf("%v %+v", err, res)
	}
	if n := len(local.applies); n > 3 {
		t.Fatalf("%d applies attempted; later chunks should not start after a transient failure", n)
	}
}
