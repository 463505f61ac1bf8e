package dwntest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	clocktesting "k8s.io/utils/clock/testing"

	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

func TestFaultDropWebSockets(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{})
	n.DropWebSockets()
	if _, _, err := c.next(); err == nil {
		t.Fatal("the client must see its socket die")
	}
	waitFor(t, func() bool { return n.Subscriptions() == 0 && n.WebSockets() == 0 })
	// The node still accepts new sockets.
	c2 := dialWS(t, n)
	c2.ping()
}

func TestFaultRefuseConnectionsForAWhile(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	n := Start(t, Options{Clock: clk})
	alice := MustIdentity(t)
	c := dialWS(t, n)
	c.ping()
	n.RefuseConnections(time.Minute)
	if _, _, err := c.next(); err == nil {
		t.Fatal("open sockets must be cut")
	}
	msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Query", "filters": []any{}}))
	if _, err := tryCall(n.URL(), "dwn.processMessage", alice.DID, msg, nil); err == nil {
		t.Fatal("requests must fail while refusing")
	}
	if _, _, err := websocket.DefaultDialer.Dial("ws"+n.URL()[4:], nil); err == nil {
		t.Fatal("WebSocket dials must fail while refusing")
	}
	if n.Refused() < 2 {
		t.Fatalf("Refused() = %d", n.Refused())
	}
	clk.Step(time.Minute)
	if resp, err := tryCall(n.URL(), "dwn.processMessage", alice.DID, msg, nil); err != nil || resp.HTTPStatus != 200 {
		t.Fatalf("after the window: %v %v", resp.HTTPStatus, err)
	}
	n.SetRefusing(true)
	if _, err := tryCall(n.URL(), "dwn.processMessage", alice.DID, msg, nil); err == nil {
		t.Fatal("SetRefusing(true) must refuse")
	}
	n.SetRefusing(false)
	if _, err := tryCall(n.URL(), "dwn.processMessage", alice.DID, msg, nil); err != nil {
		t.Fatalf("SetRefusing(false): %v", err)
	}
}

func TestFaultFailNextWithStatusAndRetryAfter(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Query", "filters": []any{}}))

	n.FailNext(2, http.StatusTooManyRequests, 1500*time.Millisecond)
	for i := 0; i < 2; i++ {
		resp := call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil)
		if resp.HTTPStatus != 429 || resp.Header.Get("Retry-After") != "2" || resp.Envelope["error"] != "Rate limit exceeded" {
			t.Fatalf("429 #%d: %d %v %v", i, resp.HTTPStatus, resp.Header, resp.Envelope)
		}
	}
	if resp := call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil); resp.HTTPStatus != 200 {
		t.Fatalf("the third request must pass: %d", resp.HTTPStatus)
	}
	n.FailNext(1, http.StatusServiceUnavailable, 0)
	if resp := call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil); resp.HTTPStatus != 503 || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("503: %d %v", resp.HTTPStatus, resp.Header)
	}
	n.FailNext(1, http.StatusInternalServerError, 0)
	if resp := call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil); resp.HTTPStatus != 500 || resp.ErrorCode() != -32603 {
		t.Fatalf("500: %d %v", resp.HTTPStatus, resp.Envelope)
	}
	if got := n.Count("dwn.processMessage"); got != 5 {
		t.Fatalf("Count(dwn.processMessage) = %d, want 5 (failed requests count too)", got)
	}
	if got := n.Count("MessagesQuery"); got != 1 {
		t.Fatalf("Count(MessagesQuery) = %d, want the 1 handled", got)
	}
}

func TestFaultLatencyRunsOnTheNodeClock(t *testing.T) {
	clk := waittest.NewClock(time.Now())
	n := Start(t, Options{Clock: clk})
	n.SetLatency(5 * time.Second)
	done := make(chan int, 1)
	go func() {
		resp, err := httpClient.Get(n.URL() + "/health")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	clk.AwaitTimer(t, 5*time.Second, "the latency holding the request")
	select {
	case <-done:
		t.Fatal("answered before the latency elapsed")
	default:
	}
	clk.Step(5 * time.Second)
	if got := <-done; got != 200 {
		t.Fatalf("after latency: %d", got)
	}
}

func TestFaultStallSubscriptions(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	tenantWithNotes(t, n, alice, 0)
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{})
	n.StallSubscriptions(true)
	w := notesAfter(t, n, alice, 1)[0]
	c.ping() // requests are still answered, no event came
	n.StallSubscriptions(false)
	if f := c.subFrame("s"); f["messageCid"] != w.CID {
		t.Fatalf("after the stall: %v", f)
	}
}

func TestFaultGarbageFrames(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	c := dialWS(t, n)
	c.subscribe(alice, alice.DID, "s", map[string]any{})
	n.SendGarbageFrames()
	kind, b, err := c.next()
	if err != nil || kind != websocket.TextMessage || json.Valid(b) {
		t.Fatalf("first garbage frame must be non-JSON text: %q %v", b, err)
	}
	if kind, _, err = c.next(); err != nil || kind != websocket.BinaryMessage {
		t.Fatalf("second garbage frame must be binary: %v", err)
	}
	f := c.nextJSON()
	if f["id"] == "s" || f["result"] == nil {
		t.Fatalf("third garbage frame must answer an unknown id: %v", f)
	}
	ev := c.subFrame("s")
	if ev["type"] != "event" || ev["cursor"] != nil || ev["event"] != nil {
		t.Fatalf("fourth garbage frame must be an event without cursor or message: %v", ev)
	}
	c.ping()
}

func TestFaultCorruptServedMessages(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 1)
	n.CorruptNextMessages(1)
	rep := query(t, n, alice, alice.DID, map[string]any{})
	es := entries(rep)
	for i, e := range es {
		raw, _ := json.Marshal(e["message"])
		got := must[string](t)(dwnmsg.MessageCID(raw))
		if (got == ws[i].CID) == (i == 0) {
			t.Fatalf("entry %d: served CID %s, labelled %s (only the first must be corrupt)", i, got, e["messageCid"])
		}
	}
}

func TestFaultJSONRPCErrorsDeferredAndTenantGate(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	w := must[Written](t)(alice.Write(WriteOpts{Data: []byte("x")}))

	n.FailNextRPC(1, -50429, "", 3*time.Second)
	resp := call(t, n.URL(), "dwn.applyReplicatedMessage", alice.DID, w.Message, w.Data)
	e, _ := resp.Envelope["error"].(map[string]any)
	if resp.HTTPStatus != 429 || resp.Header.Get("Retry-After") != "3" || resp.ErrorCode() != -50429 ||
		e["data"].(map[string]any)["retryAfterSec"] != float64(3) {
		t.Fatalf("-50429: %d %v %v", resp.HTTPStatus, resp.Header, resp.Envelope)
	}
	n.FailNextRPC(1, -32600, "TenantMessageQuotaExceeded", 0)
	resp = call(t, n.URL(), "dwn.applyReplicatedMessage", alice.DID, w.Message, w.Data)
	e, _ = resp.Envelope["error"].(map[string]any)
	if resp.HTTPStatus != 500 || resp.ErrorCode() != -32600 || e["data"].(map[string]any)["code"] != "TenantMessageQuotaExceeded" {
		t.Fatalf("quota: %d %v", resp.HTTPStatus, resp.Envelope)
	}

	n.DeferNextApplies(1, "storage")
	if r := apply(t, n, alice.DID, w); r["kind"] != "Deferred" || r["reason"] != "storage" {
		t.Fatalf("deferred: %v", r)
	}
	n.SetTenantActive(alice.DID, false)
	if r := apply(t, n, alice.DID, w); r["kind"] != "Deferred" || r["reason"] != "tenant-inactive" {
		t.Fatalf("inactive tenant apply: %v", r)
	}
	if rep := process(t, n, alice.DID, w.Message, w.Data); code(rep) != 401 {
		t.Fatalf("inactive tenant processMessage: %v", rep)
	}
	if len(n.CIDs(alice.DID)) != 0 {
		t.Fatal("nothing may be stored while deferred")
	}
	n.SetTenantActive(alice.DID, true)
	if r := apply(t, n, alice.DID, w); r["kind"] != "Applied" {
		t.Fatalf("after reactivation: %v", r)
	}
}

func TestFaultReplayBeforeReply(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	stored := tenantWithNotes(t, n, alice, 1)
	n.ReplayBeforeReply(true)
	c := dialWS(t, n)
	msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Subscribe",
		"filters": []any{}, "cursor": n.Token(alice.DID, 0)}))
	c.send(map[string]any{"jsonrpc": "2.0", "id": "req", "method": "rpc.subscribe.dwn.processMessage",
		"params": map[string]any{"target": alice.DID, "message": msg}, "subscription": map[string]any{"id": "s"}})
	for _, w := range stored {
		if f := c.subFrame("s"); f["messageCid"] != w.CID {
			t.Fatalf("replay first: %v", f)
		}
	}
	if f := c.subFrame("s"); f["type"] != "eose" {
		t.Fatalf("eose before the reply: %v", f)
	}
	if f := c.nextJSON(); f["id"] != "req" || code(f["result"].(map[string]any)["reply"].(map[string]any)) != 200 {
		t.Fatalf("the reply comes last: %v", f)
	}
}

func TestFaultCorruptServedData(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	big := must[Written](t)(alice.Write(WriteOpts{Data: bytes.Repeat([]byte("d"), 40000)}))
	small := must[Written](t)(alice.Write(WriteOpts{Data: []byte("small")}))
	seed(t, n, alice.DID, big, small)
	read := func() []byte {
		msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Read", "messageCid": big.CID}))
		return call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil).Data
	}
	n.CorruptNextData(2)
	if got := read(); len(got) != len(big.Data) || dwnmsg.RawDataCID(got) == dwnmsg.RawDataCID(big.Data) {
		t.Fatal("the corrupted read must keep the length and change the data CID")
	}
	rep := query(t, n, alice, alice.DID, map[string]any{})
	if inline := decodeB64(t, entries(rep)[1]["encodedData"].(string)); bytes.Equal(inline, small.Data) {
		t.Fatal("the second corruption must hit the inline data")
	}
	if got := read(); !bytes.Equal(got, big.Data) {
		t.Fatal("only two payloads are corrupted")
	}
}

func TestServerPingDropsSilentSockets(t *testing.T) {
	clk := waittest.NewClock(time.Now())
	n := Start(t, Options{Clock: clk, PingInterval: 30 * time.Second})
	url := "ws" + n.URL()[4:]
	answering, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer answering.Close()
	go func() { // a reading gorilla client answers pings
		for {
			if _, _, err := answering.ReadMessage(); err != nil {
				return
			}
		}
	}()
	silent, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close() // never reads, so never pongs
	waitFor(t, func() bool { return n.WebSockets() == 2 })

	bothArmed := func() bool { return clk.Pending(30*time.Second) == 2 } // each socket's next ping
	waitFor(t, bothArmed)
	clk.Step(30 * time.Second) // first ping to both
	waitFor(t, func() bool { return n.Count("websocket:pong") == 1 })
	waitFor(t, bothArmed)
	clk.Step(30 * time.Second) // the silent one missed its pong
	waitFor(t, func() bool { return n.WebSockets() == 1 && n.Count("websocket:ping-timeout") == 1 })
}
