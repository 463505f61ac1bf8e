package dwntest

import (
	"encoding/json"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// The fixture of docs/protocol-notes.md#smt-fixtures (enbox-rust-core state-index operations,
// recorded from the TS StateIndex).
const (
	vecA1 = "bafyreigyk7urkpepubmp5mzmebds6c6nutoohrf2mbecstmynw333prpie" // ProtocolsConfigure, no protocol
	vecA2 = "bafyreifbgjgqxlmmpu7uflhzdl6hss2oasjlh3iqaawlkaljo2wieiltxi" // notes
	vecA3 = "bafyreief4n6h2bbrm24j6chozaft4mgvh26zvl57rufoqia4s77i5zj3ty" // notes
	vecA4 = "bafyreida2df4ptfdiesyxr3dyt6uoney2dvvbc2p3og72twkiqjzi5lf7u" // chat
	chat  = "https://example.com/protocol/chat"
	vecD0 = "b178c245c947ea7e21ecede07728941a6ab1b706143c06873baff8ebd6de6308"
)

// syncCall sends a signed MessagesSync and returns the reply.
func syncCall(t *testing.T, n *Node, id *Identity, target string, desc map[string]any, grants ...string) map[string]any {
	t.Helper()
	desc["interface"], desc["method"] = "Messages", "Sync"
	return process(t, n, target, must[json.RawMessage](t)(id.Sign(desc, grants...)), nil)
}

func TestSMTVectorsOnTheNodesOwnTrees(t *testing.T) {
	n := Start(t, Options{Mode: ModeEnboxSMT})
	alice := MustIdentity(t)
	// The fixture's CIDs belong to messages we cannot re-sign, so they go straight into the
	// tenant's state index; everything after this is the node's own MessagesSync path.
	n.mu.Lock()
	idx := n.tenantLocked(alice.DID).index
	idx.insert(vecA1, "")
	idx.insert(vecA2, notes)
	idx.insert(vecA3, notes)
	idx.insert(vecA4, chat)
	n.mu.Unlock()

	str := func(v any) string { s, _ := v.(string); return s }
	cases := []struct {
		name string
		desc map[string]any
		key  string
		want string
	}{
		{"global root", map[string]any{"action": "root"}, "root", "f2f21ea039eb03aea488757bdaf27ef520794160acf30d04f574fa5fd7fd62c4"},
		{"notes root", map[string]any{"action": "root", "protocol": notes}, "root", "fb369b80738fefcd406fa18e211d4425432399a0d62c64392bd0d5169a97a3f4"},
		{"chat root", map[string]any{"action": "root", "protocol": chat}, "root", "7ed3e96de1e7f5f8119e778aa41a4b4805e64cf3094c0489cdee772bc8bc7b99"},
		{"unknown protocol root", map[string]any{"action": "root", "protocol": "https://example.com/none"}, "root", vecD0},
		{"global subtree 0", map[string]any{"action": "subtree", "prefix": "0"}, "hash", "56a55f876c95dcd06f642605fffc0fc72567e8a22d8ba38221fb4b044005366e"},
		{"global subtree A2 prefix", map[string]any{"action": "subtree", "prefix": "00010100"}, "hash", "ea7fcee5517fa21a3a0d23050f5c3d27c7d49c78418de314432b8b3804a72552"},
		{"notes subtree 0", map[string]any{"action": "subtree", "prefix": "0", "protocol": notes}, "hash", "df04fd049956ad3b1945b07a3711316fb2f6a70c441c3571691a69abd17cf7cc"},
	}
	for _, tc := range cases {
		rep := syncCall(t, n, alice, alice.DID, tc.desc)
		if code(rep) != 200 || str(rep[tc.key]) != tc.want {
			t.Errorf("%s: got %v, want %s", tc.name, rep, tc.want)
		}
	}
	leaves := func(desc map[string]any) []string {
		desc["action"] = "leaves"
		var out []string
		for _, v := range syncCall(t, n, alice, alice.DID, desc)["entries"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := leaves(map[string]any{"prefix": ""}); !equal(got, []string{vecA4, vecA3, vecA2, vecA1}) {
		t.Errorf("global leaves %v", got)
	}
	if got := leaves(map[string]any{"prefix": "00010100"}); !equal(got, []string{vecA2}) {
		t.Errorf("leaves 00010100 %v", got)
	}
	if got := leaves(map[string]any{"prefix": "", "protocol": notes}); !equal(got, []string{vecA3, vecA2}) {
		t.Errorf("notes leaves %v", got)
	}
	n.mu.Lock()
	idx.remove(vecA2, notes)
	n.mu.Unlock()
	if got := str(syncCall(t, n, alice, alice.DID, map[string]any{"action": "root"})["root"]); got != "e3ec6f484e238b585f6619e3efdc11a4880289ec8b47d220fbbde3bc1788b4d2" {
		t.Errorf("global root after deleting A2: %s", got)
	}
	if got := str(syncCall(t, n, alice, alice.DID, map[string]any{"action": "root", "protocol": notes})["root"]); got != "6fd35d20ba5522f54dce0a1f121a40e6a3f6ff4a5cd2ef385600cacdff6a06b0" {
		t.Errorf("notes root after deleting A2: %s", got)
	}
	if rep := syncCall(t, n, alice, alice.DID, map[string]any{"action": "subtree", "prefix": "012"}); code(rep) != 400 {
		t.Errorf("bad prefix: %v", rep)
	}
}

func TestSMTTreesFollowTheStore(t *testing.T) {
	n := Start(t, Options{Mode: ModeEnboxSMT})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 3)
	upd := must[Written](t)(alice.Update(ws[1], []byte("v2")))
	upd2 := must[Written](t)(alice.Update(ws[1], []byte("v3")))
	seed(t, n, alice.DID, upd, upd2) // upd leaves the store again

	want := msg.NewSMT()
	for _, cid := range n.CIDs(alice.DID) {
		want.Insert(cid)
	}
	if got := syncCall(t, n, alice, alice.DID, map[string]any{"action": "root"})["root"]; got != want.Root() {
		t.Fatalf("root %v, want the tree of the stored CIDs %s", got, want.Root())
	}
	if len(n.CIDs(alice.DID)) != 5 {
		t.Fatalf("stored %v", n.CIDs(alice.DID))
	}
	// The notes tree holds everything but nothing else: the configure is indexed by its protocol.
	if got := syncCall(t, n, alice, alice.DID, map[string]any{"action": "root", "protocol": notes})["root"]; got != want.Root() {
		t.Fatalf("notes root %v", got)
	}
}

func TestSMTDiffOverReportsBothWays(t *testing.T) {
	n := Start(t, Options{Mode: ModeEnboxSMT})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 5) // 6 messages on the server

	// The client holds the first three server messages plus one the server lacks.
	client := msg.NewSMT()
	for _, w := range ws[:3] {
		client.Insert(w.CID)
	}
	extra := must[Written](t)(alice.Write(WriteOpts{Data: []byte("client only")}))
	client.Insert(extra.CID)

	const depth = 8
	hashes := client.Hashes(depth)
	for _, p := range []string{"11111111", "11111110", "11111101", "11111011", "11110111"} {
		if _, used := hashes[p]; !used {
			hashes[p] = msg.EmptySubtree(depth) // an empty subtree's default hash is ignored
			break
		}
	}
	rep := syncCall(t, n, alice, alice.DID, map[string]any{"action": "diff", "hashes": hashes, "depth": depth})
	if code(rep) != 200 {
		t.Fatalf("diff: %v", rep)
	}
	remote := map[string]bool{}
	for _, e := range rep["onlyRemote"].([]any) {
		entry := e.(map[string]any)
		remote[entry["messageCid"].(string)] = true
		raw, _ := json.Marshal(entry["message"])
		if cid := must[string](t)(msg.MessageCID(raw)); cid != entry["messageCid"] {
			t.Fatalf("diff entry message does not match its CID")
		}
		if entry["encodedData"] == nil && entry["messageCid"] != ws[0].CID {
			t.Fatalf("small data must be inline: %v", entry)
		}
	}
	var local []string
	for _, p := range rep["onlyLocal"].([]any) {
		local = append(local, p.(string))
	}
	server := msg.NewSMT()
	for _, w := range ws {
		server.Insert(w.CID)
	}
	serverHashes := server.Hashes(depth)
	// Every server message the client lacks is reported.
	for _, w := range ws[3:] {
		if !remote[w.CID] {
			t.Fatalf("%s missing from onlyRemote", w)
		}
	}
	// A prefix is onlyLocal iff the client has something there that differs.
	for p, h := range client.Hashes(depth) {
		differs := serverHashes[p] != h
		if contains(local, p) != differs {
			t.Fatalf("prefix %s: onlyLocal=%v, differs=%v", p, contains(local, p), differs)
		}
	}
	// Prefixes where both agree report nothing.
	for _, w := range ws[:3] {
		p := bitsOf(w.CID, depth)
		if client.Hashes(depth)[p] == serverHashes[p] && remote[w.CID] {
			t.Fatalf("%s reported although the subtrees agree", w)
		}
	}
}

func bitsOf(cid string, depth int) string {
	tree := msg.NewSMT()
	tree.Insert(cid)
	for p := range tree.Hashes(depth) {
		return p
	}
	return ""
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
