package transfer

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

const proto = "https://example.com/p"

// scenario seeds src with a protocol, records with children, updates and deletes.
type scenario struct {
	all                         []fmsg
	cfg, w1, w2, child, up, del fmsg
}

func seedScenario(t *testing.T, f *factory, src *fakeTenant) scenario {
	var s scenario
	s.cfg = f.configure(proto)
	s.w1 = f.write(proto, "note", "", payload(100, 1))
	s.w2 = f.write(proto, "note", "", payload(200, 2))
	s.child = f.write(proto, "note/comment", s.w1.RecordID, payload(50, 3))
	s.up = f.update(s.w1, payload(120, 4))
	s.del = f.delete(s.w2)
	s.all = []fmsg{s.cfg, s.w1, s.w2, s.child, s.up, s.del}
	src.seed(t, s.all...)
	return s
}

func entries(ms ...fmsg) []dwn.Entry {
	out := make([]dwn.Entry, len(ms))
	for i, m := range ms {
		out[i] = m.entry()
	}
	return out
}

func cidsOnly(ms ...fmsg) []dwn.Entry {
	out := make([]dwn.Entry, len(ms))
	for i, m := range ms {
		out[i] = dwn.Entry{CID: m.CID}
	}
	return out
}

func kinds(r Result) []string {
	var out []string
	for _, o := range r.Outcomes {
		if o.Err != nil {
			out = append(out, "error")
		} else {
			out = append(out, string(o.Kind))
		}
	}
	return out
}

func TestCopyInReverseOrderSortsAndCopiesEverything(t *testing.T) {
	f := newFactory(t)
	src, dst := newFakeTenant("src"), newFakeTenant("dst")
	s := seedScenario(t, f, src)
	rev := []fmsg{s.del, s.up, s.child, s.w2, s.w1, s.cfg}
	for _, in := range [][]dwn.Entry{entries(rev...), cidsOnly(rev...)} {
		dst = newFakeTenant("dst")
		res, err := (&Copier{}).Copy(context.Background(), src, dst, in)
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstFailure() != -1 {
			t.Fatalf("failures: %v", res.Failed())
		}
		for i, o := range res.Outcomes {
			if o.CID != rev[i].CID || o.Kind != dwn.Applied || o.Dependencies != 0 {
				t.Fatalf("outcome %d = %+v, want Applied %s without dependency fetching", i, o, rev[i].CID)
			}
		}
		if !reflect.DeepEqual(src.dataHashes(), dst.dataHashes()) {
			t.Fatal("data differs between source and target")
		}
	}
}

func TestCopyRefusesCIDMismatch(t *testing.T) {
	f := newFactory(t)
	src, dst := newFakeTenant("src"), newFakeTenant("dst")
	s := seedScenario(t, f, src)

	// The source answers a Read with a message that does not hash to the CID asked for.
	src.corrupt[s.cfg.CID] = true
	res, _ := (&Copier{}).Copy(context.Background(), src, dst, cidsOnly(s.cfg))
	if o := res.Outcomes[0]; o.Kind != dwn.Invalid || !strings.HasPrefix(o.Reason, ReasonCIDMismatch) || o.Retryable() {
		t.Fatalf("outcome %+v, want permanent Invalid cid-mismatch", o)
	}
	// An entry whose message does not match its CID.
	bad := s.w1.entry()
	bad.CID = s.w2.CID
	res, _ = (&Copier{}).Copy(context.Background(), src, dst, []dwn.Entry{bad})
	if o := res.Outcomes[0]; o.Kind != dwn.Invalid || !strings.HasPrefix(o.Reason, ReasonCIDMismatch) {
		t.Fatalf("outcome %+v, want Invalid cid-mismatch", o)
	}
	if n := len(dst.applies); n != 0 {
		t.Fatalf("target saw %d applies; a mismatching message must never be written", n)
	}
}

func TestCopyResolvesIncompleteFromTheSource(t *testing.T) {
	f := newFactory(t)
	src, dst := newFakeTenant("src"), newFakeTenant("dst")
	s := seedScenario(t, f, src)
	grandchild := f.write(proto, "note/comment/reply", s.child.RecordID, payload(10, 9))
	src.seed(t, grandchild)

	// Only the grandchild is in the batch: protocol, parent, grandparent come from the source.
	// One at a time, so that the update does not fetch the shared configure first.
	res, err := (&Copier{ApplyConcurrency: 1}).Copy(context.Background(), src, dst, entries(grandchild, s.up))
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(res); !reflect.DeepEqual(got, []string{"Applied", "Applied"}) {
		t.Fatalf("kinds %v (%v)", got, res.Failed())
	}
	if d := res.Outcomes[0].Dependencies; d != 3 {
		t.Fatalf("grandchild needed %d dependencies, want 3 (configure, root, child)", d)
	}
	for _, m := range []fmsg{s.cfg, s.w1, s.child, grandchild, s.up} {
		if _, ok := dst.msgs[m.CID]; !ok {
			t.Fatalf("%s missing on the target", m.CID)
		}
	}
}

func TestCopyDependencyBudget(t *testing.T) {
	f := newFactory(t)
	src := newFakeTenant("src")
	cfg := f.configure(proto)
	chain := []fmsg{cfg, f.write(proto, "a", "", payload(5, 1))}
	for i := 0; i < 6; i++ {
		chain = append(chain, f.write(proto, "a/b", chain[len(chain)-1].RecordID, payload(5, byte(i))))
	}
	src.seed(t, chain...)
	leaf := chain[len(chain)-1]

	dst := newFakeTenant("dst")
	res, _ := (&Copier{MaxDependencyPasses: 3}).Copy(context.Background(), src, dst, entries(leaf))
	if o := res.Outcomes[0]; o.Kind != dwn.Invalid || !strings.HasPrefix(o.Reason, ReasonBudgetExhausted) {
		t.Fatalf("outcome %+v, want Invalid %s", o, ReasonBudgetExhausted)
	}

	dst = newFakeTenant("dst")
	res, _ = (&Copier{}).Copy(context.Background(), src, dst, entries(leaf))
	if o := res.Outcomes[0]; o.Kind != dwn.Applied || o.Dependencies != len(chain)-1 {
		t.Fatalf("with the default budget: %+v", o)
	}
}

func TestCopyTerminalUnresolvableDeferredAndGone(t *testing.T) {
	f := newFactory(t)
	src := newFakeTenant("src")
	s := seedScenario(t, f, src)

	dst := newFakeTenant("dst")
	dst.terminal[s.cfg.CID] = true
	res, _ := (&Copier{}).Copy(context.Background(), src, dst, entries(s.cfg))
	if o := res.Outcomes[0]; o.Kind != dwn.Invalid || !strings.HasPrefix(o.Reason, ReasonTerminalRef) {
		t.Fatalf("terminal: %+v", o)
	}

	dst = newFakeTenant("dst")
	src.noDependency = true
	res, _ = (&Copier{}).Copy(context.Background(), src, dst, entries(s.up))
	if o := res.Outcomes[0]; o.Kind != dwn.Incomplete || !o.Retryable() || !strings.HasPrefix(o.Reason, ReasonUnresolvableDeps) || !o.DeadLetter() {
		t.Fatalf("unresolvable (retryable, and a dead letter once retries are spent): %+v", o)
	}
	src.noDependency = false

	dst = newFakeTenant("dst")
	dst.deferApplies = 1
	res, _ = (&Copier{}).Copy(context.Background(), src, dst, entries(s.cfg, s.w1))
	if got := kinds(res); !reflect.DeepEqual(got, []string{"Deferred", "Applied"}) || !res.Outcomes[0].Retryable() {
		t.Fatalf("deferred: %v", got)
	}

	// Listed, then deleted on the source before it could be read.
	gone := dwn.Entry{CID: "bafyreigone"}
	res, _ = (&Copier{}).Copy(context.Background(), src, newFakeTenant("dst"), []dwn.Entry{gone})
	if o := res.Outcomes[0]; o.Kind != KindSourceGone || !o.Succeeded() {
		t.Fatalf("gone: %+v", o)
	}
}

func TestCopyStopsAfterATransportError(t *testing.T) {
	f := newFactory(t)
	src, dst := newFakeTenant("src"), newFakeTenant("dst")
	s := seedScenario(t, f, src)
	dst.failApplies = 1
	res, err := (&Copier{}).Copy(context.Background(), src, dst, entries(s.all...))
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstFailure() != 0 || !dwn.IsTransient(res.Outcomes[0].Err) {
		t.Fatalf("first outcome %+v", res.Outcomes[0])
	}
	for _, o := range res.Outcomes[1:] {
		if o.Err == nil || !dwn.IsTransient(o.Err) {
			t.Fatalf("later outcome %+v, want not attempted with the transient error", o)
		}
	}
	if n := len(dst.applies); n != 1 {
		t.Fatalf("%d applies after the failure, want only the failed one", n)
	}

	// A transient failure while reading the source: nothing is applied, and every entry says
	// why (no outcome is left without a kind or an error).
	for _, conc := range []int{1, 4} {
		src.failReads = 1
		dst := newFakeTenant("dst")
		res, err = (&Copier{FetchConcurrency: conc}).Copy(context.Background(), src, dst, cidsOnly(s.all...))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Outcomes {
			if o.Succeeded() || o.Err == nil || !o.Retryable() {
				t.Fatalf("concurrency %d: outcome %+v after a transient read failure", conc, o)
			}
		}
		if len(dst.applies) != 0 {
			t.Fatalf("concurrency %d: %d applies after a failed prefetch", conc, len(dst.applies))
		}
	}

	// Cancelled context: nothing attempted, error returned.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Copier{}).Copy(ctx, src, newFakeTenant("dst"), cidsOnly(s.all...)); err == nil {
		t.Fatal("no error for a cancelled context")
	}
}

// Payloads of the three size classes, CIDs only (as web5 lists them): small ones may be
// buffered, larger ones must be streamed from the source's reader into the target, and read
// again for every retry (docs/engine-behaviour.md#e18).
func TestCopyDataSizeClasses(t *testing.T) {
	f := newFactory(t)
	src := newFakeTenant("src")
	cfg := f.configure(proto)
	small := f.write(proto, "note", "", payload(20*1024, 1))
	medium := f.write(proto, "note", "", payload(500*1024, 2))
	large := f.write(proto, "note", "", payload(3*1024*1024, 3))
	largeUpdate := f.update(large, payload(2*1024*1024+17, 4))
	src.seed(t, cfg, small, medium, large, largeUpdate)

	dst := newFakeTenant("dst")
	dst.seed(t, cfg)
	// The large update first, on its own: Incomplete (initial write missing) consumes its data
	// stream, so the retry must read it from the source again.
	res, err := (&Copier{}).Copy(context.Background(), src, dst, cidsOnly(largeUpdate))
	if err != nil || res.Outcomes[0].Kind != dwn.Applied || res.Outcomes[0].Dependencies != 1 {
		t.Fatalf("large update: %v %+v", err, res.Outcomes)
	}
	if n := src.reads[largeUpdate.CID]; n != 3 { // prefetch (message), first apply, retry
		t.Fatalf("large update read %d times, want 3 (prefetch, apply, re-fetch for the retry)", n)
	}
	res, err = (&Copier{}).Copy(context.Background(), src, dst, cidsOnly(small, medium, large))
	if err != nil || res.FirstFailure() != -1 {
		t.Fatalf("copy: %v %v", err, res.Failed())
	}
	want, got := src.dataHashes(), dst.dataHashes()
	for _, m := range []fmsg{small, medium, large, largeUpdate} {
		if got[m.CID] == "" || got[m.CID] != want[m.CID] {
			t.Fatalf("%d-byte payload arrived with hash %q, want %q", len(m.Data), got[m.CID], want[m.CID])
		}
	}
	for _, m := range []fmsg{medium, large, largeUpdate} {
		if typ := dst.streamedTypes[m.CID]; typ != "transfer.sourceReader" {
			t.Fatalf("%d-byte payload reached the target as %s, want the source's stream", len(m.Data), typ)
		}
	}
	if n := src.reads[small.CID]; n != 1 {
		t.Fatalf("small payload read %d times, want 1 (kept from the prefetch)", n)
	}
}

// Echo (docs/engine-behaviour.md#e14, docs/engine-behaviour.md#e24): applying again what was just
// copied, either way, is Duplicate or Superseded and never writes anything.
func TestCopyEchoIsDuplicate(t *testing.T) {
	f := newFactory(t)
	a, b := newFakeTenant("a"), newFakeTenant("b")
	s := seedScenario(t, f, a)
	if res, _ := (&Copier{}).Copy(context.Background(), a, b, cidsOnly(s.all...)); res.FirstFailure() != -1 {
		t.Fatal(res.Failed())
	}
	before := b.sortedCIDs()
	for _, pair := range [][2]*fakeTenant{{b, a}, {a, b}} {
		res, _ := (&Copier{}).Copy(context.Background(), pair[0], pair[1], cidsOnly(s.all...))
		for _, o := range res.Outcomes {
			if o.Kind != dwn.Duplicate && o.Kind != dwn.Superseded {
				t.Fatalf("echo %s → %s: %+v", pair[0].name, pair[1].name, o)
			}
		}
	}
	if !reflect.DeepEqual(before, b.sortedCIDs()) || !reflect.DeepEqual(a.sortedCIDs(), b.sortedCIDs()) {
		t.Fatal("echo changed a CID set")
	}
}

// docs/engine-behaviour.md#e24: a reconcile and a feed (or two reconciles) copying the same
// messages at once. Each message lands once; every outcome is a success (Applied for one, Duplicate
// for the other).
func TestConcurrentCopiesOfTheSameMessages(t *testing.T) {
	f := newFactory(t)
	src, dst := newFakeTenant("src"), newFakeTenant("dst")
	s := seedScenario(t, f, src)
	results := make([]Result, 2)
	done := make(chan int)
	for i := range results {
		go func(i int) {
			results[i], _ = (&Copier{}).Copy(context.Background(), src, dst, cidsOnly(s.all...))
			done <- i
		}(i)
	}
	<-done
	<-done
	for i, m := range s.all {
		a, b := results[0].Outcomes[i], results[1].Outcomes[i]
		if !a.Succeeded() || !b.Succeeded() {
			t.Fatalf("%s: %v / %v", m.CID, a, b)
		}
		if applied := btoi(a.Kind == dwn.Applied) + btoi(b.Kind == dwn.Applied); applied > 1 {
			t.Fatalf("%s applied twice", m.CID)
		}
	}
	if !reflect.DeepEqual(src.sortedCIDs(), dst.sortedCIDs()) {
		t.Fatal("target differs from source")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A feed event of an update carries the record's initial write: an Incomplete for it is
// satisfied from the entry itself, without a dependency lookup on the source.
func TestCopyUsesTheAttachedInitialWrite(t *testing.T) {
	f := newFactory(t)
	src, dst := newFakeTenant("src"), newFakeTenant("dst")
	s := seedScenario(t, f, src)
	dst.seed(t, s.cfg)
	src.noDependency = true // the source could not help
	e := s.up.entry()
	e.InitialWrite = s.w1.Message
	res, _ := (&Copier{}).Copy(context.Background(), src, dst, []dwn.Entry{e})
	if o := res.Outcomes[0]; o.Kind != dwn.Applied || o.Dependencies != 1 {
		t.Fatalf("update: %+v", o)
	}
	if got := dst.dataHashes()[s.w1.CID]; got != src.dataHashes()[s.w1.CID] {
		t.Fatal("the initial write went without the data the source still holds")
	}
}
