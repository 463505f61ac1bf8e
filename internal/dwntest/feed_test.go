package dwntest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

const notes = "https://example.com/protocol/notes"

// tenantWithNotes seeds a protocol and count small notes; it returns the messages in order.
func tenantWithNotes(t *testing.T, n *Node, alice *Identity, count int) []Written {
	t.Helper()
	out := []Written{must[Written](t)(alice.ConfigureProtocol(notes))}
	for i := 0; i < count; i++ {
		out = append(out, must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note",
			Data: []byte(fmt.Sprintf("note %d", i))})))
	}
	seed(t, n, alice.DID, out...)
	return out
}

func TestFeedPagesInPositionOrderWithExclusiveCursors(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 6) // positions 1..7

	var got []string
	var cursor any
	pages := 0
	for {
		desc := map[string]any{"limit": 3}
		if cursor != nil {
			desc["cursor"] = cursor
		}
		rep := query(t, n, alice, alice.DID, desc)
		if code(rep) != 200 {
			t.Fatalf("query: %v", rep)
		}
		pages++
		for _, e := range entries(rep) {
			got = append(got, e["messageCid"].(string))
			if e["seq"] != strconv.Itoa(len(got)) {
				t.Fatalf("entry %d has seq %v, want positions from 1", len(got), e["seq"])
			}
			if e["message"] == nil {
				t.Fatalf("full page entry without message: %v", e)
			}
		}
		cursor = rep["cursor"]
		if rep["fingerprint"] != msg.ListingDigest(n.CIDs(alice.DID)) {
			t.Fatalf("fingerprint %v, want XOR of SHA-256 over the stored CIDs", rep["fingerprint"])
		}
		if rep["drained"] == true {
			break
		}
		if pages > 5 {
			t.Fatal("never drained")
		}
	}
	if len(got) != 7 || pages != 3 {
		t.Fatalf("got %d entries in %d pages, want 7 in 3", len(got), pages)
	}
	for i, w := range ws {
		if got[i] != w.CID {
			t.Fatalf("entry %d = %s, want %s (admission order)", i, got[i], w.CID)
		}
	}
	last := cursorOf(t, cursor)
	if last.Position != "7" || last.StreamID != StreamID(alice.DID) || last.Epoch != n.Epoch() {
		t.Fatalf("final cursor %+v", last)
	}
	// A drained cursor returns nothing more and stays drained.
	rep := query(t, n, alice, alice.DID, map[string]any{"cursor": cursor, "limit": 3})
	if len(entries(rep)) != 0 || rep["drained"] != true {
		t.Fatalf("after the head: %v", rep)
	}
	// Incremental: only what was admitted after the cursor.
	upd := must[Written](t)(alice.Update(ws[1], []byte("note 0 v2")))
	seed(t, n, alice.DID, upd)
	rep = query(t, n, alice, alice.DID, map[string]any{"cursor": cursor, "limit": 10, "cidsOnly": true})
	es := entries(rep)
	if len(es) != 1 || es[0]["messageCid"] != upd.CID || es[0]["seq"] != "8" || es[0]["message"] != nil {
		t.Fatalf("incremental cidsOnly page: %v", es)
	}
}

func TestFeedEmptyTenantAnchorsAtZero(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	rep := query(t, n, alice, alice.DID, map[string]any{"limit": 10})
	c := cursorOf(t, rep["cursor"])
	if c.Position != "0" || rep["drained"] != true || len(entries(rep)) != 0 {
		t.Fatalf("empty feed: %v", rep)
	}
	if rep["fingerprint"] != msg.ListingDigest(nil) {
		t.Fatalf("empty fingerprint %v", rep["fingerprint"])
	}
}

func TestUpdateSupersedesPreviousLatestAndKeepsInitialWrite(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 1)
	initial := ws[1]
	v2 := must[Written](t)(alice.Update(initial, []byte("v2")))
	v3 := must[Written](t)(alice.Update(initial, []byte("v3")))
	seed(t, n, alice.DID, v2, v3)

	rep := query(t, n, alice, alice.DID, map[string]any{"limit": 100})
	byCID := map[string]map[string]any{}
	for _, e := range entries(rep) {
		byCID[e["messageCid"].(string)] = e
	}
	if _, ok := byCID[v2.CID]; ok {
		t.Fatal("the superseded update must leave the feed")
	}
	if e := byCID[initial.CID]; e == nil || e["isLatestBaseState"] != false || e["encodedData"] != nil {
		t.Fatalf("initial write must stay, not latest, without data: %v", e)
	}
	if e := byCID[v3.CID]; e == nil || e["isLatestBaseState"] != true || string(decodeB64(t, e["encodedData"].(string))) != "v3" {
		t.Fatalf("latest write: %v", e)
	}
	if e := byCID[v3.CID]; e["seq"] != "4" {
		t.Fatalf("v3 seq %v, want 4 (position 3 is a hole now)", e["seq"])
	}
	if _, data, _ := n.Message(alice.DID, initial.CID); data != nil {
		t.Fatal("data of a non-latest initial write must be discarded")
	}
	// Delete: the latest write leaves, the initial write stays, the delete is latest.
	del := must[Written](t)(alice.Delete(initial.RecordID))
	seed(t, n, alice.DID, del)
	want := []string{ws[0].CID, initial.CID, del.CID}
	if got := n.CIDs(alice.DID); !sameSet(got, want) {
		t.Fatalf("after delete the store holds %v, want %v", got, want)
	}
	if rep := query(t, n, alice, alice.DID, map[string]any{"limit": 0}); rep["fingerprint"] != msg.ListingDigest(want) {
		t.Fatalf("running fingerprint %v after supersede and delete, want %s", rep["fingerprint"], msg.ListingDigest(want))
	}
	if n.Fingerprint(alice.DID, notes) != msg.ListingDigest(want) {
		t.Fatal("protocol fingerprint after supersede and delete")
	}
}

func TestFeedFiltersAndProtocolFingerprint(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 2)
	other := must[Written](t)(alice.ConfigureProtocol("https://example.com/protocol/chat"))
	plain := must[Written](t)(alice.Write(WriteOpts{Data: []byte("no protocol")}))
	seed(t, n, alice.DID, other, plain)

	rep := query(t, n, alice, alice.DID, map[string]any{"filters": []any{map[string]any{"protocol": notes}}})
	var got []string
	for _, e := range entries(rep) {
		got = append(got, e["messageCid"].(string))
		if e["protocol"] != notes {
			t.Fatalf("entry protocol %v", e["protocol"])
		}
	}
	want := []string{ws[0].CID, ws[1].CID, ws[2].CID}
	if !sameSet(got, want) || rep["fingerprint"] != msg.ListingDigest(want) {
		t.Fatalf("notes scope: %v fingerprint %v", got, rep["fingerprint"])
	}
	if rep["fingerprint"] != n.Fingerprint(alice.DID, notes) {
		t.Fatal("Fingerprint helper disagrees with the wire")
	}
	// Not fingerprintable: a method filter.
	rep = query(t, n, alice, alice.DID, map[string]any{"filters": []any{map[string]any{"interface": "Records", "method": "Write"}}})
	if rep["fingerprint"] != nil || len(entries(rep)) != 3 {
		t.Fatalf("Records Write filter: %d entries, fingerprint %v", len(entries(rep)), rep["fingerprint"])
	}
}

func TestFeedCursorGaps(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 3) // head 4
	good := n.Token(alice.DID, 2)

	cases := []struct {
		name   string
		cursor dwn.Cursor
		before func()
		reason string
	}{
		{"stream", dwn.Cursor{StreamID: "wrong-stream", Epoch: "wrong-epoch", Position: "0"}, nil, "stream_mismatch"},
		{"too new", dwn.Cursor{StreamID: good.StreamID, Epoch: good.Epoch, Position: "99"}, nil, "token_too_new"},
		{"message", dwn.Cursor{StreamID: good.StreamID, Epoch: good.Epoch, Position: "2", MessageCID: "bafyreiwrong"}, nil, "message_mismatch"},
		{"compacted", good, n.CompactFeed, "token_too_old"},
		{"epoch", good, n.RotateEpoch, "epoch_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			rep := query(t, n, alice, alice.DID, map[string]any{"cursor": tc.cursor, "limit": 10})
			if code(rep) != 410 {
				t.Fatalf("want 410, got %v", rep)
			}
			g := rep["error"].(map[string]any)
			if g["code"] != "ProgressGap" || g["reason"] != tc.reason {
				t.Fatalf("gap %v, want reason %s", g, tc.reason)
			}
			latest := cursorOf(t, g["latestAvailable"])
			cursorOf(t, g["oldestAvailable"])
			if latest.Position != "4" || latest.Epoch != n.Epoch() {
				t.Fatalf("latestAvailable %+v", latest)
			}
			if cursorOf(t, g["requested"]) != tc.cursor {
				t.Fatalf("requested %v", g["requested"])
			}
		})
	}
	// After compaction the head itself is still a valid resume point.
	rep := query(t, n, alice, alice.DID, map[string]any{"cursor": n.Token(alice.DID, 4), "limit": 10})
	if code(rep) != 200 || rep["drained"] != true {
		t.Fatalf("resume at head after compaction: %v", rep)
	}
	// A malformed position is a 400, not a gap.
	bad := n.Token(alice.DID, 1)
	bad.Position = "01"
	if rep := query(t, n, alice, alice.DID, map[string]any{"cursor": bad}); code(rep) != 400 {
		t.Fatalf("non-canonical position: %v", rep)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
