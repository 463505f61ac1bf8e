package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

func wsNewTestMux(t *testing.T, f *fakeWS, opts MuxOptions) *Mux {
	t.Helper()
	m, err := NewMux(f.srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func wsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // generous: a loaded machine is slow
	t.Cleanup(cancel)
	return ctx
}

// wsMustSubscribe opens a subscription for tenant on m or fails the test.
func wsMustSubscribe(t *testing.T, m *Mux, tenant string) *Subscription {
	t.Helper()
	s, _, err := m.Subscribe(wsCtx(t), wsTestParams(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:3000":      "ws://127.0.0.1:3000",
		"https://dwn.example.com/":   "wss://dwn.example.com/",
		"HTTPS://dwn.example.com/x":  "wss://dwn.example.com/x",
		"ws://127.0.0.1:1":           "ws://127.0.0.1:1",
		"wss://dwn.example.com:8443": "wss://dwn.example.com:8443",
	} {
		got, err := wsURL(in)
		if err != nil || got != want {
			t.Errorf("wsURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:3000", "http://", "://"} {
		if _, err := wsURL(bad); err == nil {
			t.Errorf("wsURL(%q) accepted a bad endpoint", bad)
		}
	}
	// Credentials in an endpoint never reach an error message.
	m, err := NewMux("http://user:s3cret@127.0.0.1:1", MuxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = m.Subscribe(wsCtx(t), wsTestParams("did:example:alice"))
	if !dwn.IsTransient(err) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("dial error %q: want a transient error without the password", err)
	}
}

// The subscribe request carries fresh ids and the params verbatim; frames sent before the reply
// are buffered and delivered in order once Subscribe returns.
func TestWSEventsBeforeReply(t *testing.T) {
	f := wsNewFake(t)
	m := wsNewTestMux(t, f, MuxOptions{})
	params := wsTestParams("did:example:alice")

	type result struct {
		sub   *Subscription
		reply json.RawMessage
		err   error
	}
	done := make(chan result, 1)
	go func() {
		s, r, err := m.Subscribe(wsCtx(t), params)
		done <- result{s, r, err}
	}()

	req := f.next()
	if req.Method != wsMethodSubscribe {
		t.Fatalf("method %q, want %q", req.Method, wsMethodSubscribe)
	}
	if req.id() == "" || req.SubID == "" || req.id() == req.SubID {
		t.Fatalf("want distinct non-empty request and subscription ids, got %q and %q", req.id(), req.SubID)
	}
	if string(req.Params) != string(params) {
		t.Fatalf("params %s, want them verbatim %s", req.Params, params)
	}
	for pos := 1; pos <= 3; pos++ {
		req.Conn.sendRaw(wsEnboxEvent(req.SubID, pos))
	}
	req.Conn.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"type":"eose","cursor":{"streamId":"s","epoch":"e","position":"3"}}}}`, req.SubID))
	req.Conn.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":{"code":200,"detail":"OK"},"subscription":{"id":"bafysub"},"fingerprint":"ab"}}}`, req.ID))

	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if !strings.Contains(string(res.reply), `"fingerprint":"ab"`) {
		t.Errorf("reply %s: want result.reply as received", res.reply)
	}
	if res.sub.ID() != req.SubID {
		t.Errorf("sub.ID() = %q, want %q", res.sub.ID(), req.SubID)
	}
	for pos := 1; pos <= 3; pos++ {
		fr := wsRecvFrame(t, res.sub)
		if fr.Kind != wsFrameEvent || wsFrameN(t, fr) != pos || fr.MessageCID != fmt.Sprintf("bafy%d", pos) || fr.Seq != fmt.Sprint(pos) {
			t.Fatalf("frame %d: got %+v", pos, fr)
		}
		var c dwn.Cursor
		if err := json.Unmarshal(fr.Cursor, &c); err != nil || c.Position != fmt.Sprint(pos) || !c.Valid() {
			t.Fatalf("frame %d cursor %s: %v", pos, fr.Cursor, err)
		}
	}
	if fr := wsRecvFrame(t, res.sub); fr.Kind != FrameEOSE || !strings.Contains(string(fr.Cursor), `"position":"3"`) {
		t.Fatalf("want eose with cursor, got %+v", fr)
	}
	// A live event after the reply, web5 style.
	req.Conn.sendRaw(wsWeb5Event(req.SubID, 4))
	if fr := wsRecvFrame(t, res.sub); fr.Kind != wsFrameEvent || wsFrameN(t, fr) != 4 || fr.Cursor != nil {
		t.Fatalf("want web5 event 4 without cursor, got %+v", fr)
	}
	if res.sub.Err() != nil {
		t.Fatalf("open subscription has Err %v", res.sub.Err())
	}
}

// Many subscriptions (tenants) share one socket and each gets only its own frames, in order.
func TestWSManySubscriptionsOneSocket(t *testing.T) {
	const subs, perSub = 50, 20
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	m := wsNewTestMux(t, f, MuxOptions{Buffer: perSub})

	all := make([]*Subscription, subs)
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	for i := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := m.Subscribe(wsCtx(t), wsTestParams(fmt.Sprintf("did:example:tenant%d", i)))
			if err != nil {
				errs <- err
				return
			}
			all[i] = s
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.upgrades.Load(); n != 1 {
		t.Fatalf("%d sockets opened, want 1", n)
	}
	if got := m.Stats().ActiveSubscriptions; got != subs {
		t.Fatalf("ActiveSubscriptions = %d, want %d", got, subs)
	}
	// Interleave: round k sends event k to every subscription; n encodes (subscription, k).
	c := f.conn(0)
	for k := range perSub {
		for i, s := range all {
			c.sendRaw(wsWeb5Event(s.ID(), i*1000+k))
		}
	}
	for i, s := range all {
		for k := range perSub {
			if n := wsFrameN(t, wsRecvFrame(t, s)); n != i*1000+k {
				t.Fatalf("subscription %d frame %d: got n=%d, want %d", i, k, n, i*1000+k)
			}
		}
	}
	if st := m.Stats(); st.UnknownFrames != 0 || st.GarbageFrames != 0 || st.Overflows != 0 {
		t.Fatalf("stats %+v: want no unknown, garbage or overflow", st)
	}
}

// A consumer that stops reading loses only its own subscription (errWSOverflow), keeps the
// frames already buffered, and the server is told to close it; its neighbour is untouched.
func TestWSSlowConsumerIsolation(t *testing.T) {
	const buffer = 4
	f := wsNewFake(t)
	closes := make(chan fakeWSRequest, 4)
	f.setAuto(func(c *fakeWSConn, r fakeWSRequest) bool {
		if r.Method == wsMethodClose {
			closes <- r
		}
		return wsAutoOK(c, r)
	})
	m := wsNewTestMux(t, f, MuxOptions{Buffer: buffer})
	slow := wsMustSubscribe(t, m, "did:example:slow")
	fast := wsMustSubscribe(t, m, "did:example:fast")
	c := f.conn(0)
	for k := range 10 {
		c.sendRaw(wsWeb5Event(slow.ID(), k))
	}
	for k := range buffer - 1 {
		c.sendRaw(wsWeb5Event(fast.ID(), k))
	}
	for k := range buffer - 1 {
		if n := wsFrameN(t, wsRecvFrame(t, fast)); n != k {
			t.Fatalf("fast frame %d: n=%d", k, n)
		}
	}
	// The socket is ordered: fast's frames came after slow's, so slow has overflowed by now.
	err, drained := wsWaitEnded(t, slow)
	if !errors.Is(err, errWSOverflow) || !dwn.IsTransient(err) {
		t.Fatalf("slow ended with %v; want a transient errWSOverflow", err)
	}
	if drained != buffer {
		t.Fatalf("slow kept %d buffered frames, want %d", drained, buffer)
	}
	select {
	case r := <-closes:
		if r.SubID != slow.ID() || string(r.Params) != "{}" {
			t.Fatalf("close for %q with params %s; want %q with {}", r.SubID, r.Params, slow.ID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rpc.subscribe.close for the overflowed subscription")
	}
	// Frames still arriving for the dead subscription are ignored; fast keeps working.
	c.sendRaw(wsWeb5Event(slow.ID(), 99))
	c.sendRaw(wsWeb5Event(fast.ID(), 100))
	if n := wsFrameN(t, wsRecvFrame(t, fast)); n != 100 {
		t.Fatalf("fast after overflow: n=%d", n)
	}
	st := m.Stats()
	if st.Overflows != 1 || st.ActiveSubscriptions != 1 || st.UnknownFrames < 1 {
		t.Fatalf("stats %+v: want 1 overflow, 1 active, ≥1 unknown", st)
	}
}

// Close sends rpc.subscribe.close with "params": {} (web5 never answers without it) and reads
// the bare-number status; an error reply or no reply are reported.
func TestWSCloseSendsEmptyParams(t *testing.T) {
	f := wsNewFake(t)
	fc := waittest.NewClock(time.Unix(1_700_000_000, 0))
	m := wsNewTestMux(t, f, MuxOptions{Clock: fc, CloseTimeout: 5 * time.Second})
	f.setAuto(wsAutoSubscribeOK)
	subscribe := func() *Subscription {
		return wsMustSubscribe(t, m, "did:example:alice")
	}

	// 1. accepted
	s := subscribe()
	closed := make(chan error, 1)
	go func() { closed <- s.Close(wsCtx(t)) }()
	req := f.next()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(req.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if req.Method != wsMethodClose || string(raw["params"]) != "{}" || req.SubID != s.ID() || req.id() == "" {
		t.Fatalf("close frame %s: want method %s, params {}, subscription %s and an id", req.Raw, wsMethodClose, s.ID())
	}
	req.Conn.replyClose(req.ID)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err, _ := wsWaitEnded(t, s); !errors.Is(err, errWSClosed) {
		t.Fatalf("Err after Close = %v, want errWSClosed", err)
	}
	if err := s.Close(wsCtx(t)); err != nil {
		t.Fatalf("second Close: %v, want a no-op", err)
	}

	// 2. the server says the subscription does not exist
	s = subscribe()
	go func() { closed <- s.Close(wsCtx(t)) }()
	req = f.next()
	req.Conn.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"subscription %s does not exist."}}`, req.ID, s.ID()))
	var de *dwn.Error
	if err := <-closed; !errors.As(err, &de) || de.RPCCode != -32602 {
		t.Fatalf("Close with -32602 reply: %v", err)
	}

	// 3. no reply: Close gives up after CloseTimeout on the injected clock
	s = subscribe()
	go func() { closed <- s.Close(wsCtx(t)) }()
	req = f.next()
	fc.AwaitTimer(t, 5*time.Second, "the close call's reply timer")
	fc.Step(5 * time.Second)
	if err := <-closed; !errors.Is(err, errWSTimeout) {
		t.Fatalf("Close without reply: %v, want errWSTimeout", err)
	}
}

// Status and JSON-RPC errors of subscribe are classified; a 410 is the package's *GapError.
func TestWSSubscribeErrors(t *testing.T) {
	f := wsNewFake(t)
	m := wsNewTestMux(t, f, MuxOptions{})
	cases := []struct {
		name  string
		reply func(r fakeWSRequest) string
		check func(t *testing.T, err error)
	}{
		{"gap", func(r fakeWSRequest) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":{"code":410,"detail":"Progress token gap"},"error":{"code":"ProgressGap","reason":"epoch_mismatch","requested":{"streamId":"s","epoch":"old","position":"7"},"oldestAvailable":{"streamId":"s","epoch":"new","position":"0"},"latestAvailable":{"streamId":"s","epoch":"new","position":"9"}}}}}`, r.ID)
		}, func(t *testing.T, err error) {
			g, ok := dwn.AsGap(err)
			if !ok || g.Reason != "epoch_mismatch" || g.Requested == nil || g.Requested.Epoch != "old" || g.LatestAvailable.Position != "9" || g.OldestAvailable.Epoch != "new" {
				t.Fatalf("want a *GapError with the payload, got %#v", err)
			}
		}},
		{"gap without payload", func(r fakeWSRequest) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":{"code":410,"detail":"gone"}}}}`, r.ID)
		}, func(t *testing.T, err error) {
			if _, ok := dwn.AsGap(err); !ok {
				t.Fatalf("want a *GapError, got %v", err)
			}
		}},
		{"unauthorized", func(r fakeWSRequest) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":{"code":401,"detail":"GrantAuthorizationGrantMissing: no grant"}}}}`, r.ID)
		}, func(t *testing.T, err error) {
			var e *dwn.Error
			if !dwn.IsUnauthorized(err) || !errors.As(err, &e) || e.DWNCode != 401 || e.DWNErrorCode() != "GrantAuthorizationGrantMissing" {
				t.Fatalf("want Unauthorized 401, got %v", err)
			}
		}},
		{"rpc error", func(r fakeWSRequest) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"the subscribe id: %s is in use by an active subscription"}}`, r.ID, r.SubID)
		}, func(t *testing.T, err error) {
			var e *dwn.Error
			if !errors.As(err, &e) || e.RPCCode != -32602 || e.Kind != dwn.Permanent {
				t.Fatalf("want Permanent rpc -32602, got %v", err)
			}
		}},
		{"reply without status", func(r fakeWSRequest) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"detail":"?"}}}`, r.ID)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, ErrMalformedFrame) || !dwn.IsTransient(err) || !strings.Contains(err.Error(), "no status") {
				t.Fatalf("want a transient malformed no-status error, got %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() {
				s, _, err := m.Subscribe(wsCtx(t), wsTestParams("did:example:alice"))
				if s != nil {
					err = errors.New("got a subscription for a failed subscribe")
				}
				errc <- err
			}()
			req := f.next()
			req.Conn.sendRaw(wsWeb5Event(req.SubID, 1)) // an early frame for a subscription that fails
			req.Conn.sendRaw(tc.reply(req))
			tc.check(t, <-errc)
			before := m.Stats().UnknownFrames
			req.Conn.sendRaw(wsWeb5Event(req.SubID, 2))
			wsEventually(t, "frame for the failed subscription counted as unknown", func() bool { return m.Stats().UnknownFrames == before+1 })
		})
	}
	if n := m.Stats().ActiveSubscriptions; n != 0 {
		t.Fatalf("%d subscriptions left registered after failures", n)
	}
}

// Garbage never kills the socket or a subscription: it is counted and ignored. A malformed
// frame addressed to a subscription ends only that subscription (it may have been an event).
func TestWSGarbageFrames(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	m := wsNewTestMux(t, f, MuxOptions{})
	s := wsMustSubscribe(t, m, "did:example:alice")
	c := f.conn(0)
	garbage := []string{
		`not json`, `{"jsonrpc":"2.0","id":`, `[]`, `null`, `42`, `""`, `{}`,
		`{"jsonrpc":"2.0","method":"rpc.server.push","params":{}}`,
		`{"jsonrpc":"2.0","id":7,"result":"x"}`,
		strings.Repeat("[", 100000),
	}
	unknown := []string{
		`{"jsonrpc":"2.0","id":"5b0e7c4e-0000-4000-8000-000000000000","result":{"reply":{"status":200,"detail":"OK"}}}`, // ack reply, random id
		`{"jsonrpc":"2.0","id":17,"result":{"event":{"message":{}}}}`,                                                   // numeric id: never ours
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
		`{"jsonrpc":"2.0","id":"` + s.ID() + `","result":{"subscription":{"type":"heartbeat"}}}`, // a type from a newer server
	}
	for _, g := range garbage {
		c.sendRaw(g)
	}
	c.sendBinary([]byte{0xff, 0x00})
	for _, u := range unknown {
		c.sendRaw(u)
	}
	c.sendRaw(wsWeb5Event(s.ID(), 7))
	if n := wsFrameN(t, wsRecvFrame(t, s)); n != 7 {
		t.Fatalf("after garbage: n=%d", n)
	}
	st := m.Stats()
	if st.GarbageFrames != int64(len(garbage)+1) || st.UnknownFrames != int64(len(unknown)) || st.ConnectionsLost != 0 {
		t.Fatalf("stats %+v: want %d garbage, %d unknown, no loss", st, len(garbage)+1, len(unknown))
	}

	// Each malformed frame ends its own subscription, Transient; the neighbour lives on.
	malformed := []string{
		`{"jsonrpc":"2.0","id":%q,"result":{"event":{}}}`,
		`{"jsonrpc":"2.0","id":%q,"result":{"event":{"message":null}}}`,
		`{"jsonrpc":"2.0","id":%q,"result":{"event":"not an object"}}`,
		`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"type":"event"}}}`,
		`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"cursor":{}}}}`,
		`{"jsonrpc":"2.0","id":%q,"result":{"reply":{"status":200}}}`,
		`{"jsonrpc":"2.0","id":%q,"result":[1,2]}`,
		`{"jsonrpc":"2.0","id":%q}`,
	}
	for _, frame := range malformed {
		victim := wsMustSubscribe(t, m, "did:example:victim")
		c.sendRaw(fmt.Sprintf(frame, victim.ID()))
		err, _ := wsWaitEnded(t, victim)
		if !errors.Is(err, ErrMalformedFrame) || !dwn.IsTransient(err) {
			t.Fatalf("%s: victim ended with %v; want a transient ErrMalformedFrame", frame, err)
		}
	}
	c.sendRaw(wsWeb5Event(s.ID(), 8))
	if n := wsFrameN(t, wsRecvFrame(t, s)); n != 8 {
		t.Fatalf("neighbour after malformed frames: n=%d", n)
	}

	// A malformed answer to a subscribe fails that Subscribe instead of leaving it waiting.
	f.setAuto(func(c *fakeWSConn, r fakeWSRequest) bool {
		c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":{"code":200}}},"error":"x"}`, r.ID))
		return true
	})
	if _, _, err := m.Subscribe(wsCtx(t), wsTestParams("did:example:alice")); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("malformed subscribe reply: %v", err)
	}
}

// rpc.ack is a notification carrying the cursor exactly as received, only when the server has
// flow control; its reply (random id) is ignored.
func TestWSAck(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoSubscribeOK)
	cursor := json.RawMessage(`{"streamId":"6742201863cf8f21","epoch":"e1","position":"5","messageCid":"bafy5"}`)

	withFlow := wsNewTestMux(t, f, MuxOptions{MaxInFlight: 32})
	s, _, err := withFlow.Subscribe(wsCtx(t), wsTestParams("did:example:alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(cursor); err != nil {
		t.Fatal(err)
	}
	req := f.next()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(req.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if _, hasID := raw["id"]; hasID || req.Method != wsMethodAck || req.SubID != s.ID() {
		t.Fatalf("ack frame %s: want a notification (no id) %s for %s", req.Raw, wsMethodAck, s.ID())
	}
	if want := `{"cursor":` + string(cursor) + `}`; string(req.Params) != want {
		t.Fatalf("ack params %s, want %s", req.Params, want)
	}
	req.Conn.sendRaw(`{"jsonrpc":"2.0","id":"random-ack-reply","result":{"reply":{"status":200,"detail":"OK"}}}`)
	wsEventually(t, "ack reply ignored as unknown", func() bool { return withFlow.Stats().UnknownFrames == 1 })
	if err := s.Ack(nil); err == nil {
		t.Fatal("Ack without a cursor: want an error naming the cursor")
	}

	noFlow := wsNewTestMux(t, f, MuxOptions{})
	s2, _, err := noFlow.Subscribe(wsCtx(t), wsTestParams("did:example:bob"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Ack(cursor); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s2.Close(context.Background()) }()
	if req := f.next(); req.Method != wsMethodClose {
		t.Fatalf("server saw %s after a no-flow-control Ack; want nothing before the close", req.Raw)
	}
}

// An enbox terminal error frame ends only that subscription, classified.
func TestWSServerErrorFrame(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	m := wsNewTestMux(t, f, MuxOptions{})
	a := wsMustSubscribe(t, m, "did:example:a")
	b := wsMustSubscribe(t, m, "did:example:b")
	c := f.conn(0)
	c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"type":"error","cursor":{"streamId":"s","epoch":"e","position":"4"},"error":{"code":"MessagesSubscribeDeliveryAuthorizationFailed","detail":"grant revoked"}}}}`, a.ID()))
	err, _ := wsWaitEnded(t, a)
	var se *wsSubscriptionError
	if !dwn.IsUnauthorized(err) || !errors.As(err, &se) || !strings.Contains(string(se.Cursor), `"position":"4"`) {
		t.Fatalf("a ended with %v; want Unauthorized carrying the frame's cursor", err)
	}
	c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"type":"error","error":{"code":"SubscriptionBufferOverflow","detail":"too slow"}}}}`, b.ID()))
	if err, _ := wsWaitEnded(t, b); !dwn.IsTransient(err) || !strings.Contains(err.Error(), "SubscriptionBufferOverflow") {
		t.Fatalf("b ended with %v; want a transient SubscriptionBufferOverflow", err)
	}
}

// Cancelling a Subscribe that waits for its reply tells the server to drop the subscription.
func TestWSSubscribeCancelled(t *testing.T) {
	f := wsNewFake(t)
	m := wsNewTestMux(t, f, MuxOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := m.Subscribe(ctx, wsTestParams("did:example:alice"))
		errc <- err
	}()
	req := f.next()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe after cancel: %v", err)
	}
	cl := f.next()
	if cl.Method != wsMethodClose || cl.SubID != req.SubID || string(cl.Params) != "{}" {
		t.Fatalf("want rpc.subscribe.close for %s after cancel, got %s", req.SubID, cl.Raw)
	}
	cl.Conn.replyClose(cl.ID)
}

// Closing the mux ends every subscription and refuses new ones.
func TestWSMuxClose(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	m := wsNewTestMux(t, f, MuxOptions{})
	s := wsMustSubscribe(t, m, "did:example:alice")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err, _ := wsWaitEnded(t, s); !errors.Is(err, errWSMuxClosed) {
		t.Fatalf("Err after mux Close = %v", err)
	}
	if _, _, err := m.Subscribe(wsCtx(t), wsTestParams("did:example:alice")); !errors.Is(err, errWSMuxClosed) {
		t.Fatalf("Subscribe after Close = %v", err)
	}
	if _, _, err := m.Subscribe(wsCtx(t), json.RawMessage(`{`)); err == nil {
		t.Fatal("invalid params accepted")
	}
}
