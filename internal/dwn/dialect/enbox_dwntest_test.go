package dialect_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// Adapter smoke tests against the in-process enbox node (internal/dwntest) in both modes. The
// dwn-ws and dwntest owners extend these; here they prove the adapters speak each dialect.

const notes = "https://dwnsync.test/protocols/notes"

// seedNode writes a configure, three records (one of 40,000 bytes), an update and a delete
// straight into node n and returns them in write order.
func seedNode(t *testing.T, n *dwntest.Node, id *dwntest.Identity) []dwntest.Written {
	t.Helper()
	var out []dwntest.Written
	add := func(w dwntest.Written, err error) dwntest.Written {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r := n.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("seed %s: %+v", w.CID, r)
		}
		out = append(out, w)
		return w
	}
	add(id.ConfigureProtocol(notes))
	first := add(id.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"n":1}`)}))
	add(id.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: bytes.Repeat([]byte("L"), 40_000)}))
	third := add(id.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"n":3}`)}))
	add(id.Update(first, []byte(`{"n":1,"v":2}`)))
	add(id.Delete(third.RecordID))
	return out
}

func openTenant(t *testing.T, url string, did string, s *msg.Signer) (*dialect.Client, dwn.Tenant) {
	t.Helper()
	c, err := dialect.Open(t.Context(), url, dialect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, c.Tenant(did, s)
}

func TestEnboxAdapter(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	b := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	alice := dwntest.MustIdentity(t)
	seedNode(t, a, alice)

	ca, ta := openTenant(t, a.URL(), alice.DID, alice.Signer)
	if ca.Dialect() != dwn.DialectEnbox {
		t.Fatalf("dialect %q, want enbox", ca.Dialect())
	}
	_, tb := openTenant(t, b.URL(), alice.DID, alice.Signer)

	feed := pageAll(t, ctx, ta, 2)
	if !sameSet(feed, a.CIDs(alice.DID)) {
		t.Fatalf("paged %v, node holds %v", feed, a.CIDs(alice.DID))
	}
	d, err := ta.Digest(ctx, dwn.Scope{})
	if err != nil || d.Kind != dwn.DigestFingerprint || d.Value != a.Fingerprint(alice.DID) {
		t.Fatalf("digest %+v %v, node fingerprint %s", d, err, a.Fingerprint(alice.DID))
	}
	outcomes := copyAll(t, ctx, ta, tb, feed)
	if !sameSet(b.CIDs(alice.DID), feed) {
		t.Fatalf("B holds %v, A %v (outcomes %v)", b.CIDs(alice.DID), feed, outcomes)
	}
	for _, cid := range feed {
		res, err := ta.Read(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tb.Apply(ctx, res.Message, res.Data)
		if res.Data != nil {
			res.Data.Close()
		}
		if err != nil || out.Kind != dwn.Duplicate {
			t.Fatalf("re-apply %s: %+v %v", cid, out, err)
		}
	}

	// Subscribe from the start: replay, eose, then a live write.
	sub, err := ta.Subscribe(ctx, dwn.Scope{}, &dwn.Cursor{StreamID: dwntest.StreamID(alice.DID), Epoch: a.Epoch(), Position: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitEOSE(t, ctx, sub)
	live, err := alice.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"live":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ta.Apply(ctx, live.Message, bytes.NewReader(live.Data)); err != nil || r.Kind != dwn.Applied {
		t.Fatalf("live write: %+v %v", r, err)
	}
	waitCID(t, ctx, sub, live.CID)

	// A stale epoch is a typed gap with bounds.
	p, err := ta.FeedPage(ctx, dwn.Scope{}, nil, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	a.RotateEpoch()
	_, err = ta.FeedPage(ctx, dwn.Scope{}, p.Cursor, 10, true)
	g, ok := dwn.AsGap(err)
	if !ok || g.Reason != "epoch_mismatch" || g.LatestAvailable == nil {
		t.Fatalf("after RotateEpoch: %v", err)
	}
}

func TestEnboxSMTAdapter(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnboxSMT})
	b := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnboxSMT})
	alice := dwntest.MustIdentity(t)
	written := seedNode(t, a, alice)

	ca, ta := openTenant(t, a.URL(), alice.DID, alice.Signer)
	if ca.Dialect() != dwn.DialectEnboxSMT {
		t.Fatalf("dialect %q, want enbox-smt", ca.Dialect())
	}
	_, tb := openTenant(t, b.URL(), alice.DID, alice.Signer)
	smt, ok := ta.(dwn.SMTTenant)
	if !ok {
		t.Fatal("enbox-smt tenant is not an SMTTenant")
	}
	local := msg.NewSMT()
	for _, c := range a.CIDs(alice.DID) {
		local.Insert(c)
	}
	root, err := smt.SMTRoot(ctx, dwn.Scope{})
	if err != nil || root != local.Root() {
		t.Fatalf("root %s %v, want %s", root, err, local.Root())
	}
	leaves, err := smt.SMTLeaves(ctx, dwn.Scope{}, "")
	if err != nil || !slices.Equal(leaves, local.Leaves("")) {
		t.Fatalf("leaves %v %v", leaves, err)
	}
	// Diff from an empty side: every server leaf is onlyRemote, nothing onlyLocal.
	remote, onlyLocal, err := smt.SMTDiff(ctx, dwn.Scope{}, msg.NewSMT().Hashes(2), 2)
	if err != nil || len(remote) != local.Len() || len(onlyLocal) != 0 {
		t.Fatalf("diff: %d remote, %v local, %v", len(remote), onlyLocal, err)
	}

	// The feed is emulated by replay: pages of 2 cover the node's set.
	feed := pageAll(t, ctx, ta, 2)
	if !sameSet(feed, a.CIDs(alice.DID)) {
		t.Fatalf("paged %v, node holds %v", feed, a.CIDs(alice.DID))
	}
	copyAll(t, ctx, ta, tb, feed)
	db, err := tb.Digest(ctx, dwn.Scope{})
	if err != nil || db.Kind != dwn.DigestSMTRoot || db.Value != root {
		t.Fatalf("B digest %+v %v, A root %s", db, err, root)
	}
	// processMessage outcomes that need a second look at the target
	// (docs/protocol-notes.md#apply-results-on-the-web5-server).
	rec, _ := alice.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"v":0}`)})
	v1, _ := alice.Update(rec, []byte(`{"v":1}`))
	v2, _ := alice.Update(v1, []byte(`{"v":2}`))
	for _, w := range []dwntest.Written{rec, v2} {
		if r, err := tb.Apply(ctx, w.Message, bytes.NewReader(w.Data)); err != nil || r.Kind != dwn.Applied {
			t.Fatalf("apply %s: %+v %v", w.CID, r, err)
		}
	}
	if r, err := tb.Apply(ctx, v1.Message, bytes.NewReader(v1.Data)); err != nil || r.Kind != dwn.Superseded {
		t.Fatalf("older update after a newer one: %+v %v, want Superseded", r, err)
	}
	orphan, _ := alice.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"orphan":1}`)})
	del, _ := alice.Delete(orphan.RecordID)
	if r, err := tb.Apply(ctx, del.Message, nil); err != nil || r.Kind != dwn.Incomplete || len(r.Missing) != 1 ||
		r.Missing[0].Type != "InitialWrite" || r.Missing[0].RecordID != orphan.RecordID {
		t.Fatalf("delete before its record: %+v %v", r, err)
	}

	// A large record reads back whole.
	res, err := ta.Read(ctx, written[2].CID)
	if err != nil || res.Data == nil {
		t.Fatalf("read large: %v", err)
	}
	data, err := io.ReadAll(res.Data)
	res.Data.Close()
	if err != nil || !bytes.Equal(data, written[2].Data) {
		t.Fatalf("large data: %d bytes, %v", len(data), err)
	}
}

// A server pinned as enbox that lacks dwn.applyReplicatedMessage (-32601) is served through
// dwn.processMessage from then on; a refused call that carried data is Deferred (its stream
// is spent) and the retry goes through.
func TestEnboxApplyFallsBackToProcessMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnboxSMT})
	alice := dwntest.MustIdentity(t)
	c, err := dialect.Open(ctx, n.URL(), dialect.Options{Dialect: dwn.DialectEnbox})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tn := c.Tenant(alice.DID, alice.Signer)
	cfg, _ := alice.ConfigureProtocol(notes)
	if r, err := tn.Apply(ctx, cfg.Message, nil); err != nil || r.Kind != dwn.Applied {
		t.Fatalf("configure: %+v %v", r, err)
	}
	w, _ := alice.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"x":1}`)})
	r, err := tn.Apply(ctx, w.Message, bytes.NewReader(w.Data))
	if err != nil || r.Kind != dwn.Applied {
		t.Fatalf("write after fallback: %+v %v", r, err)
	}
	if !slices.Contains(n.CIDs(alice.DID), w.CID) || n.Count("dwn.applyReplicatedMessage") != 1 {
		t.Fatalf("node holds %v; apply attempts %d", n.CIDs(alice.DID), n.Count("dwn.applyReplicatedMessage"))
	}

	// A fresh client learns it on a call with data: Deferred, then Applied.
	c2, _ := dialect.Open(ctx, n.URL(), dialect.Options{Dialect: dwn.DialectEnbox})
	defer c2.Close()
	t2 := c2.Tenant(alice.DID, alice.Signer)
	w2, _ := alice.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(`{"x":2}`)})
	if r, err := t2.Apply(ctx, w2.Message, bytes.NewReader(w2.Data)); err != nil || r.Kind != dwn.Deferred {
		t.Fatalf("first call with data: %+v %v, want Deferred", r, err)
	}
	if r, err := t2.Apply(ctx, w2.Message, bytes.NewReader(w2.Data)); err != nil || r.Kind != dwn.Applied {
		t.Fatalf("retry: %+v %v", r, err)
	}
}
