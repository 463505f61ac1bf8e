package transfer

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// markedPair is two enbox nodes holding the same shared records after one full reconcile (a
// link's bootstrap), with the mark that reconcile left.
type markedPair struct {
	ctx    context.Context
	id     *dwntest.Identity
	na, nb *dwntest.Node
	a, b   dwn.Tenant
	mark   *Mark
}

func newMarkedPair(t *testing.T, shared int) *markedPair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // generous: seeding runs under it, and a loaded machine is slow
	t.Cleanup(cancel)
	p := &markedPair{ctx: ctx, id: dwntest.MustIdentity(t)}
	p.na, p.nb = dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox}), dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	writeRecords(t, p.id, shared, p.na, p.nb)
	writeRecords(t, p.id, 1, p.nb) // the bootstrap has something to copy
	p.a, p.b = openNode(ctx, t, p.na, p.id), openNode(ctx, t, p.nb, p.id)
	var c Copier
	res, err := c.ReconcileSince(ctx, p.a, p.b, dwn.Scope{}, linkstate.Both, nil)
	if err != nil || !res.DigestsEqual || res.Method != MethodListing || res.Mark == nil {
		t.Fatalf("bootstrap: %v %+v", err, res)
	}
	p.mark = res.Mark
	return p
}

// reconcile runs ReconcileSince from the pair's mark and returns it with the requests it made
// to both nodes; the sides must end identical.
func (p *markedPair) reconcile(t *testing.T, c *Copier, dir linkstate.Direction, mark *Mark) (ReconcileResult, int) {
	t.Helper()
	before := requestsTo(p.na) + requestsTo(p.nb)
	res, err := c.ReconcileSince(p.ctx, p.a, p.b, dwn.Scope{}, dir, mark)
	if err != nil {
		t.Fatalf("reconcile: %v %+v", err, res)
	}
	return res, requestsTo(p.na) + requestsTo(p.nb) - before
}

func (p *markedPair) requireIdentical(t *testing.T, res ReconcileResult) {
	t.Helper()
	if !res.Converged || !res.DigestsEqual || len(res.Failed) != 0 {
		t.Fatalf("not converged: %+v", res)
	}
	if !reflect.DeepEqual(p.na.CIDs(p.id.DID), p.nb.CIDs(p.id.DID)) {
		t.Fatalf("CID sets differ: %d vs %d", len(p.na.CIDs(p.id.DID)), len(p.nb.CIDs(p.id.DID)))
	}
}

// headMark is a mark at both nodes' current heads, as if the sides had been seen equal now.
func (p *markedPair) headMark() *Mark {
	m := *p.mark
	m.Local, m.Remote = p.na.Token(p.id.DID, p.na.Head(p.id.DID)), p.nb.Token(p.id.DID, p.nb.Head(p.id.DID))
	return &m
}

// After a mark, a reconcile costs the same requests at 300 and at 3,000 shared messages: a
// CID page and a content page on each side, a write per difference (the pages carry the
// messages), a CID page on each side to verify. Then an equal pass costs one page a side.
func TestReconcileSinceMarkRequestsDoNotGrowWithTheTenant(t *testing.T) {
	const onlyB, onlyA = 6, 4
	var counts []int
	for _, shared := range []int{300, 3000} {
		p := newMarkedPair(t, shared)
		writeRecords(t, p.id, onlyB, p.nb)
		writeRecords(t, p.id, onlyA, p.na)
		var c Copier
		res, n := p.reconcile(t, &c, linkstate.Both, p.mark)
		p.requireIdentical(t, res)
		if res.Method != MethodSinceMark || res.Fallback != "" || res.Pulled != onlyB || res.Pushed != onlyA || res.Mark == nil {
			t.Fatalf("%d shared: method %s fallback %q pulled %d pushed %d mark %v", shared, res.Method, res.Fallback, res.Pulled, res.Pushed, res.Mark)
		}
		if budget := 6 + onlyA + onlyB; n > budget {
			t.Fatalf("%d shared: %d requests, want at most %d", shared, n, budget)
		}
		t.Logf("%d shared: %d requests", shared, n)
		counts = append(counts, n)

		again, n := p.reconcile(t, &c, linkstate.Both, res.Mark)
		if again.Method != MethodDigestEqual || !again.DigestsEqual || again.Mark == nil || n != 2 {
			t.Fatalf("%d shared, equal pass: %d requests, %+v", shared, n, again)
		}
		if again.Mark.Remote.Position != p.nb.Token(p.id.DID, p.nb.Head(p.id.DID)).Position {
			t.Fatalf("the equal pass did not move the mark to the head: %+v", again.Mark)
		}
	}
	if counts[0] != counts[1] {
		t.Fatalf("requests grew with the tenant: %d at 300 shared, %d at 3,000", counts[0], counts[1])
	}
}

// The narrowed pass holds at most SinceMarkContentBytes of messages and data per side before
// its copy starts: past that, the copy reads the rest (in its own bounded chunks), and the
// pass still converges without the full diff.
func TestReconcileSinceMarkBoundsTheContentItHolds(t *testing.T) {
	const onlyB = 10
	p := newMarkedPair(t, 50)
	writeRecords(t, p.id, onlyB, p.nb)
	readsBefore := p.nb.Count("MessagesRead")
	c := Copier{SinceMarkContentBytes: 1} // the first message taken inline fills it
	res, _ := p.reconcile(t, &c, linkstate.Both, p.mark)
	p.requireIdentical(t, res)
	if res.Method != MethodSinceMark || res.Fallback != "" || res.Pulled != onlyB {
		t.Fatalf("method %s fallback %q pulled %d, want since-mark with no fallback and %d pulled", res.Method, res.Fallback, res.Pulled, onlyB)
	}
	if reads := p.nb.Count("MessagesRead") - readsBefore; reads < onlyB-1 {
		t.Fatalf("%d reads on the remote: with a budget of one message the copy must read the other %d", reads, onlyB-1)
	}
}

// Every condition under which the narrowed pass cannot prove the sides equal runs the full
// diff after it, and the pass still converges with every difference copied.
func TestReconcileSinceMarkFallsBackToTheFullDiff(t *testing.T) {
	cases := []struct {
		name     string
		copier   Copier
		dir      linkstate.Direction
		prepare  func(t *testing.T, p *markedPair) *Mark
		fallback string
	}{
		{name: "epoch changed on the remote", prepare: func(t *testing.T, p *markedPair) *Mark {
			p.nb.RotateEpoch()
			return p.mark
		}, fallback: "epoch_mismatch"},
		{name: "feed compacted past the mark", prepare: func(t *testing.T, p *markedPair) *Mark {
			m := p.headMark()
			writeRecords(t, p.id, 1, p.na, p.nb)
			p.na.CompactFeed()
			return m
		}, fallback: "token_too_old"},
		{name: "another stream", prepare: func(t *testing.T, p *markedPair) *Mark {
			m := *p.mark
			m.Local.StreamID = "0123456789abcdef"
			return &m
		}, fallback: "stream_mismatch"},
		{name: "mark of another endpoint", prepare: func(t *testing.T, p *markedPair) *Mark {
			m := *p.mark
			m.RemoteEndpoint = "https://elsewhere.example"
			return &m
		}, fallback: "other feeds"},
		{name: "too much admitted since the mark", copier: Copier{SinceMarkLimit: 3}, fallback: "more than 3"},
		{name: "difference older than the mark", prepare: func(t *testing.T, p *markedPair) *Mark {
			writeRecords(t, p.id, 1, p.nb) // the remote's only: a lost or too new checkpoint
			return p.headMark()
		}, fallback: "the fingerprints still differ"},
		{name: "one-way link with local writes", dir: linkstate.PullOnly, prepare: func(t *testing.T, p *markedPair) *Mark {
			writeRecords(t, p.id, 1, p.na)
			return p.mark
		}, fallback: "one-way"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newMarkedPair(t, 50)
			mark := p.mark
			if tc.prepare != nil {
				mark = tc.prepare(t, p)
			}
			writeRecords(t, p.id, 5, p.nb) // new on the remote since the mark
			dir := tc.dir
			if dir == "" {
				dir = linkstate.Both
			}
			res, _ := p.reconcile(t, &tc.copier, dir, mark)
			if !strings.Contains(res.Fallback, tc.fallback) || res.Method != MethodListing {
				t.Fatalf("fallback %q (method %s), want one saying %q", res.Fallback, res.Method, tc.fallback)
			}
			if dir == linkstate.PullOnly {
				if res.Pulled != 5 || !res.Converged {
					t.Fatalf("pull-only: %+v", res)
				}
				if res.Mark != nil {
					t.Fatal("a one-way link whose sides stay different kept a mark: every later pass would scan since it before the same full diff")
				}
				return
			}
			p.requireIdentical(t, res)
			if res.Mark == nil {
				t.Fatal("the full diff left no mark")
			}
		})
	}
}

// A difference the mark hides (the remote holds a message from before the mark that the local
// lacks: a lost checkpoint, a restore) is found even when nothing was admitted since: the
// fingerprints differ, the feeds name nothing new, so the full diff runs.
func TestReconcileSinceMarkFindsADifferenceOlderThanTheMark(t *testing.T) {
	p := newMarkedPair(t, 50)
	writeRecords(t, p.id, 1, p.nb)
	old := p.nb.CIDs(p.id.DID)
	var c Copier
	res, _ := p.reconcile(t, &c, linkstate.Both, p.headMark())
	p.requireIdentical(t, res)
	if !strings.Contains(res.Fallback, "older than the mark") || res.Pulled != 1 {
		t.Fatalf("fallback %q, pulled %d", res.Fallback, res.Pulled)
	}
	if !reflect.DeepEqual(p.na.CIDs(p.id.DID), old) {
		t.Fatal("the local does not hold exactly the remote's messages")
	}
}

// A copy that failed for now (Deferred) ends the narrowed pass unconverged with the same
// mark, without listing the tenant; the retry from that mark converges.
func TestReconcileSinceMarkRetriesFromTheSameMark(t *testing.T) {
	p := newMarkedPair(t, 50)
	writeRecords(t, p.id, 3, p.nb)
	p.na.DeferNextApplies(1, "busy")
	var c Copier
	res, _ := p.reconcile(t, &c, linkstate.Both, p.mark)
	if res.Converged || res.Fallback != "" || res.Method != MethodSinceMark || res.Mark != p.mark {
		t.Fatalf("after a deferred apply: converged %v fallback %q method %s mark kept %v", res.Converged, res.Fallback, res.Method, res.Mark == p.mark)
	}
	again, _ := p.reconcile(t, &c, linkstate.Both, res.Mark)
	p.requireIdentical(t, again)
	if again.Method != MethodSinceMark || again.Fallback != "" {
		t.Fatalf("retry: method %s fallback %q", again.Method, again.Fallback)
	}
}

// A scope with path prefixes has no fingerprint: a mark for it cannot prove anything, so the
// full diff (listing digests) runs and copies what differs.
func TestReconcileSinceMarkWithoutFingerprintFallsBack(t *testing.T) {
	p := newMarkedPair(t, 10)
	cfg, err := p.id.ConfigureProtocol(proto)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*dwntest.Node{p.na, p.nb} {
		if r := n.Write(p.id.DID, cfg.Message, cfg.Data); !r.Kind.Succeeded() {
			t.Fatalf("configure: %s %s", r.Kind, r.Reason)
		}
	}
	scope := dwn.Scope{Protocol: proto, ProtocolPathPrefixes: []string{"note"}}
	mark := p.headMark()
	mark.Scope = scope
	for i := range 2 {
		w, err := p.id.Write(dwntest.WriteOpts{Protocol: proto, ProtocolPath: "note", Data: payload(40, byte(i))})
		if err != nil {
			t.Fatal(err)
		}
		if r := p.nb.Write(p.id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("note: %s %s", r.Kind, r.Reason)
		}
	}
	var c Copier
	res, err := c.ReconcileSince(p.ctx, p.a, p.b, scope, linkstate.Both, mark)
	if err != nil || !res.DigestsEqual || res.Pulled != 2 || !strings.Contains(res.Fallback, "no fingerprint") {
		t.Fatalf("%v: pulled %d, fallback %q, %+v", err, res.Pulled, res.Fallback, res)
	}
	if res.Mark != nil {
		t.Fatal("a mark for a scope without fingerprints was kept: every pass would scan for nothing")
	}
}
