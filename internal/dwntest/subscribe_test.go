package dwntest

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/waittest"
)

// notesAfter writes count more notes and returns them.
func notesAfter(t *testing.T, n *Node, alice *Identity, count int) []Written {
	t.Helper()
	var out []Written
	for i := 0; i < count; i++ {
		w := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(fmt.Sprintf("live %d", i))}))
		seed(t, n, alice.DID, w)
		out = append(out, w)
	}
	return out
}

func TestSubscribeReplaysThenEOSEThenLiveWithinTheAckWindow(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	stored := tenantWithNotes(t, n, alice, 39) // positions 1..40
	c := dialWS(t, n)

	rep := c.subscribe(alice, alice.DID, "s1", map[string]any{"cursor": n.Token(alice.DID, 0)})
	if code(rep) != 200 || rep["subscription"].(map[string]any)["id"] == "" {
		t.Fatalf("subscribe: %v", rep)
	}
	var cursors []any
	for i := 0; i < 32; i++ {
		f := c.subFrame("s1")
		if f["type"] != "event" || f["messageCid"] != stored[i].CID {
			t.Fatalf("replay frame %d: %v", i, f)
		}
		cursors = append(cursors, f["cursor"])
	}
	c.ping() // the window (32) is full: nothing else may come before an ack

	c.ack("s1", cursors[15]) // cumulative: frees 16 slots
	for i := 32; i < 40; i++ {
		if f := c.subFrame("s1"); f["messageCid"] != stored[i].CID {
			t.Fatalf("replay frame %d: %v", i, f)
		}
	}
	eose := c.subFrame("s1")
	if eose["type"] != "eose" || cursorOf(t, eose["cursor"]).Position != "40" {
		t.Fatalf("want eose at the last replayed event, got %v", eose)
	}
	// 8 + eose = 9 of the 16 freed slots used; 7 live events fit before the window closes.
	live := notesAfter(t, n, alice, 8)
	for i := 0; i < 7; i++ {
		f := c.subFrame("s1")
		if f["type"] != "event" || f["messageCid"] != live[i].CID || cursorOf(t, f["cursor"]).Position != fmt.Sprint(41+i) {
			t.Fatalf("live frame %d: %v", i, f)
		}
		cursors = append(cursors, f["cursor"])
	}
	c.ping()
	c.ack("s1", cursors[len(cursors)-1])
	if f := c.subFrame("s1"); f["messageCid"] != live[7].CID {
		t.Fatalf("last live frame: %v", f)
	}
	// Close: Accepted, and nothing more is delivered.
	c.send(map[string]any{"jsonrpc": "2.0", "id": "close-1", "method": "rpc.subscribe.close", "subscription": map[string]any{"id": "s1"}})
	f := c.nextJSON()
	if f["id"] != "close-1" || f["result"].(map[string]any)["reply"].(map[string]any)["detail"] != "Accepted" {
		t.Fatalf("close: %v", f)
	}
	notesAfter(t, n, alice, 1)
	c.ping()
	if n.Subscriptions() != 0 {
		t.Fatalf("%d subscriptions still open", n.Subscriptions())
	}
}

func TestSubscribeWindowIsConfigurable(t *testing.T) {
	n := Start(t, Options{MaxInFlight: 4})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 9)
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{"cursor": n.Token(alice.DID, 0)})
	var last any
	for i := 0; i < 4; i++ {
		last = c.subFrame("s")["cursor"]
	}
	c.ping()
	c.ack("s", last)
	for i := 0; i < 4; i++ {
		c.subFrame("s")
	}
	c.ping()
	resp := getInfo(t, n)
	if resp["maxInFlight"] != float64(4) {
		t.Fatalf("/info maxInFlight %v", resp["maxInFlight"])
	}
}

func TestLiveOnlySubscriptionReportsHeadAndFingerprint(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 2)
	c := dialWS(t, n)
	rep := c.subscribe(alice, alice.DID, "live", map[string]any{})
	if cursorOf(t, rep["head"]).Position != "3" || rep["fingerprint"] != n.Fingerprint(alice.DID) {
		t.Fatalf("live-only reply: %v", rep)
	}
	w := notesAfter(t, n, alice, 1)[0]
	f := c.subFrame("live") // no replay, no eose: straight to the live event
	if f["type"] != "event" || f["messageCid"] != w.CID || f["encodedData"] != b64(w.Data) || f["protocol"] != notes {
		t.Fatalf("live event: %v", f)
	}
	// An update carries its initial write.
	upd := must[Written](t)(alice.Update(w, []byte("v2")))
	seed(t, n, alice.DID, upd)
	f = c.subFrame("live")
	ev := f["event"].(map[string]any)
	if f["messageCid"] != upd.CID || ev["initialWrite"] == nil {
		t.Fatalf("update event: %v", f)
	}
}

func TestSubscribeGapAndDuplicateID(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 1)
	old := n.Token(alice.DID, 1)
	n.RotateEpoch()
	c := dialWS(t, n)
	rep := c.subscribe(alice, alice.DID, "g", map[string]any{"cursor": old})
	g, _ := rep["error"].(map[string]any)
	if code(rep) != 410 || g["reason"] != "epoch_mismatch" || cursorOf(t, g["latestAvailable"]).Epoch != n.Epoch() {
		t.Fatalf("subscribe with an old-epoch cursor: %v", rep)
	}
	c.subscribe(alice, alice.DID, "dup", map[string]any{})
	msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Subscribe", "filters": []any{}}))
	c.send(map[string]any{"jsonrpc": "2.0", "id": "again", "method": "rpc.subscribe.dwn.processMessage",
		"params": map[string]any{"target": alice.DID, "message": msg}, "subscription": map[string]any{"id": "dup"}})
	f := c.nextJSON()
	if f["id"] != "again" || f["error"].(map[string]any)["code"] != float64(-32602) {
		t.Fatalf("subscription id in use: %v", f)
	}
}

func TestSubscriptionBufferOverflowAndTimeout(t *testing.T) {
	t.Run("overflow", func(t *testing.T) {
		n := Start(t, Options{MaxInFlight: 2, BufferLimit: 3})
		alice := MustIdentity(t)
		tenantWithNotes(t, n, alice, 0)
		c := dialWS(t, n)
		c.subscribe(alice, alice.DID, "o", map[string]any{})
		notesAfter(t, n, alice, 6) // 2 delivered, 4 waiting > 3
		c.subFrame("o")
		c.subFrame("o")
		f := c.subFrame("o")
		if f["type"] != "error" || f["error"].(map[string]any)["code"] != "SubscriptionBufferOverflow" {
			t.Fatalf("want overflow, got %v", f)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		clk := waittest.NewClock(time.Now())
		n := Start(t, Options{Clock: clk, MaxInFlight: 1})
		alice := MustIdentity(t)
		tenantWithNotes(t, n, alice, 0)
		c := dialWS(t, n)
		c.subscribe(alice, alice.DID, "s", map[string]any{})
		notesAfter(t, n, alice, 2)
		c.subFrame("s") // the window of 1 is full, one frame waits
		clk.AwaitTimer(t, 30*time.Second, "the buffer timeout of the waiting frame")
		clk.Step(30 * time.Second)
		f := c.subFrame("s")
		if f["type"] != "error" || f["error"].(map[string]any)["code"] != "SubscriptionBufferTimeout" {
			t.Fatalf("want buffer timeout, got %v", f)
		}
	})
}

func TestSeedEraSubscribeHasNoFlowControl(t *testing.T) {
	n := Start(t, Options{Mode: ModeEnboxSMT})
	alice := MustIdentity(t)
	stored := tenantWithNotes(t, n, alice, 49)
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{"cursor": n.Token(alice.DID, 10)})
	for i := 10; i < 50; i++ { // more than 32 without a single ack
		if f := c.subFrame("s"); f["messageCid"] != stored[i].CID {
			t.Fatalf("frame %d: %v", i, f)
		}
	}
	if f := c.subFrame("s"); f["type"] != "eose" {
		t.Fatalf("want eose, got %v", f)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "method": "rpc.ack", "params": map[string]any{"cursor": n.Token(alice.DID, 50)},
		"subscription": map[string]any{"id": "s"}})
	if f := c.nextJSON(); f["error"].(map[string]any)["code"] != float64(-32601) {
		t.Fatalf("rpc.ack on a seed-era server: %v", f)
	}
	info := getInfo(t, n)
	if _, ok := info["maxInFlight"]; ok {
		t.Fatal("seed-era /info must not advertise maxInFlight")
	}
	if _, ok := info["httpRpcFraming"]; ok {
		t.Fatal("seed-era /info must not advertise httpRpcFraming")
	}
}

// waitFor polls a condition with a deadline (never a fixed sleep).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waittest.For(t, 10*time.Second, time.Millisecond, "the condition", cond)
}

func TestOneAckOfTheEOSECursorReleasesTheWholeWindow(t *testing.T) {
	n := Start(t, Options{MaxInFlight: 3})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 1) // 2 events + eose = 3 frames, the whole window
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{"cursor": n.Token(alice.DID, 0)})
	c.subFrame("s")
	last := c.subFrame("s")
	eose := c.subFrame("s")
	if eose["type"] != "eose" || cursorOf(t, eose["cursor"]) != cursorOf(t, last["cursor"]) {
		t.Fatalf("eose %v must carry the last event's cursor %v", eose, last["cursor"])
	}
	c.ack("s", eose["cursor"])
	live := notesAfter(t, n, alice, 3)
	for _, w := range live { // all three fit: nothing is left unacknowledged
		if f := c.subFrame("s"); f["messageCid"] != w.CID {
			t.Fatalf("live %v", f)
		}
	}
}

func TestCloseEndsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	n, err := Launch(Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 3)
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{"cursor": n.Token(alice.DID, 0)})
	c.subFrame("s")
	n.Close()
	_ = c.conn.Close()
	httpClient.CloseIdleConnections()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func TestStrictAckRefusesTokensWithoutMessageCID(t *testing.T) {
	n := Start(t, Options{StrictAck: true, MaxInFlight: 1})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 0)
	c := dialWS(t, n)
	anchor := n.Token(alice.DID, 1)
	anchor.MessageCID = ""
	c.subscribe(alice, alice.DID, "s", map[string]any{"cursor": anchor})
	eose := c.subFrame("s") // nothing to replay: eose carries the input token, without messageCid
	if eose["type"] != "eose" {
		t.Fatalf("want eose, got %v", eose)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "method": "rpc.ack", "params": map[string]any{"cursor": eose["cursor"]},
		"subscription": map[string]any{"id": "s"}})
	f := c.nextJSON()
	if e, _ := f["error"].(map[string]any); e == nil || e["code"] != float64(-32602) {
		t.Fatalf("strict ack of a token without messageCid: %v", f)
	}
	notesAfter(t, n, alice, 1)
	c.ping() // the window of 1 is still held by the eose
}
