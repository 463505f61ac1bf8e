package transfer

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwndialect "github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Reconcile between in-process enbox nodes through the real dwn adapters: fingerprints
// (enbox), the batched SMT diff (enbox-smt), and mixed digest kinds (listing digests).
func TestReconcileEnboxNodes(t *testing.T) {
	cases := []struct {
		name   string
		a, b   dwntest.Mode
		method string
	}{
		{"enbox fingerprints", dwntest.ModeEnbox, dwntest.ModeEnbox, MethodListing},
		{"enbox-smt diff", dwntest.ModeEnboxSMT, dwntest.ModeEnboxSMT, MethodSMT},
		{"mixed digest kinds", dwntest.ModeEnbox, dwntest.ModeEnboxSMT, MethodListing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // generous: seeding runs under it, and a loaded machine is slow
			defer cancel()
			na, nb := dwntest.Start(t, dwntest.Options{Mode: c.a}), dwntest.Start(t, dwntest.Options{Mode: c.b})
			id := dwntest.MustIdentity(t)
			seedEnboxNodes(t, id, na, nb)
			a, b := openNode(ctx, t, na, id), openNode(ctx, t, nb, id)

			res, err := Reconcile(ctx, a, b, dwn.Scope{}, linkstate.Both)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Converged || res.Method != c.method || len(res.Failed) != 0 {
				t.Fatalf("reconcile: converged=%v method=%s failed=%v", res.Converged, res.Method, res.Failed)
			}
			if !reflect.DeepEqual(na.CIDs(id.DID), nb.CIDs(id.DID)) {
				t.Fatalf("CID sets differ: %d vs %d", len(na.CIDs(id.DID)), len(nb.CIDs(id.DID)))
			}
			cids := na.CIDs(id.DID)
			ha, hb := dataHashes(ctx, t, a, cids), dataHashes(ctx, t, b, cids)
			if !reflect.DeepEqual(ha, hb) {
				t.Fatal("data differs")
			}
			t.Logf("%s: %d CIDs, pulled %d, pushed %d, diff %d/%d", c.name, len(cids), res.Pulled, res.Pushed, res.OnlyRemote, res.OnlyLocal)

			again, err := Reconcile(ctx, a, b, dwn.Scope{}, linkstate.Both)
			if err != nil || !again.Converged || again.Method != MethodDigestEqual {
				t.Fatalf("second reconcile: %v %+v", err, again)
			}
		})
	}
}

// seedEnboxNodes writes one shared configure to both nodes, then disjoint records: small and
// 200 KB payloads, children, updates and deletes.
func seedEnboxNodes(t *testing.T, id *dwntest.Identity, na, nb *dwntest.Node) {
	t.Helper()
	must := func(w dwntest.Written, err error) dwntest.Written {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	put := func(n *dwntest.Node, w dwntest.Written) {
		t.Helper()
		if r := n.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("seed: %s %s", r.Kind, r.Reason)
		}
	}
	cfg := must(id.ConfigureProtocol(proto))
	put(na, cfg)
	put(nb, cfg)
	for side, n := range []*dwntest.Node{na, nb} {
		for i := 0; i < 15; i++ {
			size := 100 + i
			if i%4 == 0 {
				size = 200 << 10
			}
			w := must(id.Write(dwntest.WriteOpts{Protocol: proto, ProtocolPath: "note", Data: payload(size, byte(side*50+i))}))
			put(n, w)
			if i%3 == 0 {
				put(n, must(id.Write(dwntest.WriteOpts{Protocol: proto, ProtocolPath: "note/comment", Parent: &w, Data: payload(30, byte(i))})))
			}
			if i%5 == 1 {
				put(n, must(id.Update(w, payload(64, byte(i)))))
			}
			if i%7 == 2 {
				put(n, must(id.Delete(w.RecordID)))
			}
		}
	}
}

func openNode(ctx context.Context, t testing.TB, n *dwntest.Node, id *dwntest.Identity) dwn.Tenant {
	t.Helper()
	dialect := dwn.DialectEnbox
	if n.Mode() == dwntest.ModeEnboxSMT {
		dialect = dwn.DialectEnboxSMT
	}
	c, err := dwndialect.Open(ctx, n.URL(), dwndialect.Options{Dialect: dialect})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.Tenant(id.DID, id.Signer)
}

// A reconcile between two enbox-smt nodes costs a fixed number of requests plus a few per
// difference, whatever the tenant's size: digests, one leaf listing, one diff, a write per
// pulled message (the diff carries it), a read and a write per pushed one, digests again.
func TestReconcileSMTRequestsGrowWithDifferencesOnly(t *testing.T) {
	const onlyB, onlyA = 6, 4
	for _, shared := range []int{300, 3000} {
		budget := 6 + onlyB + 2*onlyA
		if got := reconcileRequests(t, dwntest.ModeEnboxSMT, shared, onlyA, onlyB); got > budget {
			t.Fatalf("%d shared, %d differences: %d requests, want at most %d", shared, onlyA+onlyB, got, budget)
		}
	}
}

// Between enbox nodes a fingerprint mismatch cannot be narrowed (the protocol fingerprints
// whole scopes only), so both feeds are listed, a page per 1,000 CIDs (the schema's cap on
// limit): the fixed part grows with the tenant by pages, not by messages.
func TestReconcileEnboxRequestsGrowByListingPages(t *testing.T) {
	const onlyB, onlyA = 6, 4
	for _, shared := range []int{300, 3000} {
		pages := (shared+onlyA+onlyB)/1000 + 1
		budget := 4 + 2*pages + 2*(onlyA+onlyB)
		if got := reconcileRequests(t, dwntest.ModeEnbox, shared, onlyA, onlyB); got > budget {
			t.Fatalf("%d shared, %d differences: %d requests, want at most %d", shared, onlyA+onlyB, got, budget)
		}
	}
}

// reconcileRequests seeds two nodes of mode with shared records, onlyA more on the first and
// onlyB on the second, reconciles them both ways and returns the requests the reconcile made
// to both nodes (the pool's first contact apart).
func reconcileRequests(t *testing.T, mode dwntest.Mode, shared, onlyA, onlyB int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // generous: seeding runs under it, and a loaded machine is slow
	defer cancel()
	na, nb := dwntest.Start(t, dwntest.Options{Mode: mode}), dwntest.Start(t, dwntest.Options{Mode: mode})
	id := dwntest.MustIdentity(t)
	writeRecords(t, id, shared, na, nb)
	writeRecords(t, id, onlyB, nb)
	writeRecords(t, id, onlyA, na)
	a, b := openNode(ctx, t, na, id), openNode(ctx, t, nb, id)
	for _, tenant := range []dwn.Tenant{a, b} { // first contact (GET /info) is the pool's, not the reconcile's
		if _, err := tenant.Digest(ctx, dwn.Scope{}); err != nil {
			t.Fatal(err)
		}
	}
	before := requestsTo(na) + requestsTo(nb)
	res, err := Reconcile(ctx, a, b, dwn.Scope{}, linkstate.Both)
	if err != nil || !res.DigestsEqual || res.Pulled != onlyB || res.Pushed != onlyA {
		t.Fatalf("%s, %d shared: %v %+v", mode, shared, err, res)
	}
	return requestsTo(na) + requestsTo(nb) - before
}

// writeRecords stores n fresh protocol-less records of id on each node directly (no requests).
func writeRecords(t *testing.T, id *dwntest.Identity, n int, nodes ...*dwntest.Node) {
	t.Helper()
	for i := range n {
		w, err := id.Write(dwntest.WriteOpts{Data: fmt.Appendf(nil, `{"n":%d}`, i), DataFormat: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			if r := nd.Write(id.DID, w.Message, w.Data); r.Kind != dwn.Applied {
				t.Fatalf("seed: %s %s", r.Kind, r.Reason)
			}
		}
	}
}

// requestsTo counts the requests a node answered (JSON-RPC calls, GETs, WebSocket upgrades),
// not the DWN message kinds it also counts.
func requestsTo(n *dwntest.Node) int {
	total := 0
	for name, c := range n.Counts() {
		if strings.HasPrefix(name, "dwn.") || strings.HasPrefix(name, "GET ") || name == "websocket" {
			total += c
		}
	}
	return total
}
