package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

const wsNotes = "https://example.com/protocol/wsnotes"

func wsEnboxCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // generous: a loaded machine is slow
	t.Cleanup(cancel)
	return ctx
}

// wsEnboxWrite authors count notes for id and stores them on n.
func wsEnboxWrite(t *testing.T, n *dwntest.Node, id *dwntest.Identity, count int) []dwntest.Written {
	t.Helper()
	var out []dwntest.Written
	for i := range count {
		w, err := id.Write(dwntest.WriteOpts{Protocol: wsNotes, ProtocolPath: "note", Data: []byte(fmt.Sprintf("note %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if r := n.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("store %s: %+v", w, r)
		}
		out = append(out, w)
	}
	return out
}

func wsEnboxSubscribeParams(t *testing.T, id *dwntest.Identity, cursor *dwn.Cursor) json.RawMessage {
	t.Helper()
	desc := map[string]any{"interface": "Messages", "method": "Subscribe", "filters": []any{}, "messageTimestamp": id.Timestamp()}
	if cursor != nil {
		desc["cursor"] = cursor
	}
	msg, err := id.Sign(desc)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]any{"target": id.DID, "message": msg})
	return params
}

func wsRecv(t *testing.T, s *Subscription) Frame {
	t.Helper()
	select {
	case f, ok := <-s.Frames():
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return *f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10 s")
	}
	return Frame{}
}

func wsPosition(t *testing.T, f Frame) string {
	t.Helper()
	var c dwn.Cursor
	if err := json.Unmarshal(f.Cursor, &c); err != nil || !c.Valid() {
		t.Fatalf("frame cursor %s: %v", f.Cursor, err)
	}
	return c.Position
}

// Against the in-process enbox node: replay from a cursor (frames that race the reply), the
// ack window (nothing beyond MaxInFlight until an ack), eose, a live event, the node's garbage
// frames, a dropped socket, and a resubscribe from the checkpoint after the backoff.
func TestWSEnboxNode(t *testing.T) {
	const window = 4
	n := dwntest.Start(t, dwntest.Options{MaxInFlight: window})
	alice := dwntest.MustIdentity(t)
	conf, err := alice.ConfigureProtocol(wsNotes)
	if err != nil {
		t.Fatal(err)
	}
	if r := n.Write(alice.DID, conf.Message, nil); !r.Kind.Succeeded() {
		t.Fatalf("configure: %+v", r)
	}
	stored := wsEnboxWrite(t, n, alice, 6) // positions 2..7
	want := append([]string{conf.CID}, wsCIDsOf(stored)...)

	fc := clocktesting.NewFakeClock(time.Now())
	waits := make(chan time.Duration, 4)
	m, err := NewMux(n.URL(), MuxOptions{MaxInFlight: window, Clock: fc, Jitter: func() float64 { return 0.5 },
		OnDialWait: func(d time.Duration) { waits <- d }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	start := n.Token(alice.DID, 0)
	sub, reply, err := m.Subscribe(wsEnboxCtx(t), wsEnboxSubscribeParams(t, alice, &start))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Status struct{ Code int }
		Head   *dwn.Cursor
	}
	if err := json.Unmarshal(reply, &rep); err != nil || rep.Status.Code != 200 {
		t.Fatalf("reply %s: %v", reply, err)
	}

	var got []string
	var last Frame
	for range window {
		last = wsRecv(t, sub)
		got = append(got, last.MessageCID)
	}
	if err := wsPing(wsEnboxCtx(t), m); err != nil {
		t.Fatal(err)
	}
	if k := len(sub.Frames()); k != 0 {
		t.Fatalf("%d frames beyond the window of %d before any ack", k, window)
	}
	if err := sub.Ack(last.Cursor); err != nil {
		t.Fatal(err)
	}
	for len(got) < len(want) {
		f := wsRecv(t, sub)
		if f.Kind != wsFrameEvent {
			t.Fatalf("frame %d is %v, want an event", len(got), f.Kind)
		}
		got = append(got, f.MessageCID)
		last = f
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if err := sub.Ack(last.Cursor); err != nil {
		t.Fatal(err)
	}
	eose := wsRecv(t, sub)
	if eose.Kind != FrameEOSE || wsPosition(t, eose) != wsPosition(t, last) {
		t.Fatalf("want eose at %s, got %+v", wsPosition(t, last), eose)
	}
	_ = sub.Ack(eose.Cursor)
	live := wsEnboxWrite(t, n, alice, 1)[0]
	f := wsRecv(t, sub)
	if f.MessageCID != live.CID || f.Kind != wsFrameEvent {
		t.Fatalf("live frame %+v, want %s", f, live.CID)
	}
	if cid, err := dwnmsg.MessageCID(f.Message); err != nil || cid != live.CID {
		t.Fatalf("live message CID %s (%v), want %s", cid, err, live.CID)
	}
	checkpoint := f.Cursor
	_ = sub.Ack(checkpoint)

	// The node's garbage: three frames the mux ignores, then an event without message or
	// cursor on our subscription, which must end it rather than be skipped.
	if err := wsPing(wsEnboxCtx(t), m); err != nil { // the answers to our acks are in
		t.Fatal(err)
	}
	before := m.Stats()
	n.SendGarbageFrames()
	endErr := wsEnded(t, sub)
	if !errors.Is(endErr, ErrMalformedFrame) || !dwn.IsTransient(endErr) {
		t.Fatalf("after garbage: %v; want a transient malformed-frame end", endErr)
	}
	if st := m.Stats(); st.GarbageFrames-before.GarbageFrames != 3 || st.UnknownFrames-before.UnknownFrames != 1 || st.ConnectionsLost != 0 {
		t.Fatalf("stats %+v (before %+v): want 3 more garbage (text, binary, bad event), 1 more unknown id, no loss", st, before)
	}

	// Resubscribe from the checkpoint on the same socket, then lose the socket.
	var cp dwn.Cursor
	if err := json.Unmarshal(checkpoint, &cp); err != nil {
		t.Fatal(err)
	}
	sub, _, err = m.Subscribe(wsEnboxCtx(t), wsEnboxSubscribeParams(t, alice, &cp))
	if err != nil {
		t.Fatal(err)
	}
	if f := wsRecv(t, sub); f.Kind != FrameEOSE || wsPosition(t, f) != cp.Position {
		t.Fatalf("resubscribe at the head: want eose at %s, got %+v", cp.Position, f)
	}
	n.DropWebSockets()
	if err := wsEnded(t, sub); !errors.Is(err, ErrDisconnected) || !dwn.IsTransient(err) {
		t.Fatalf("after drop: %v", err)
	}
	more := wsEnboxWrite(t, n, alice, 2)
	done := make(chan error, 1)
	go func() {
		s, _, err := m.Subscribe(wsEnboxCtx(t), wsEnboxSubscribeParams(t, alice, &cp))
		sub = s
		done <- err
	}()
	select {
	case d := <-waits:
		if d != time.Second {
			t.Fatalf("redial waits %s, want 1s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no redial")
	}
	fc.Step(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, w := range more {
		if f := wsRecv(t, sub); f.MessageCID != w.CID {
			t.Fatalf("after reconnect: replayed %s, want %s", f.MessageCID, w.CID)
		}
	}
	if f := wsRecv(t, sub); f.Kind != FrameEOSE {
		t.Fatalf("want eose after the missed writes, got %+v", f)
	}
	if err := sub.Close(wsEnboxCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Dials != 2 || st.ConnectionsLost != 1 {
		t.Fatalf("stats %+v: want 2 dials, 1 loss", st)
	}
	if n.WebSockets() != 1 {
		t.Fatalf("node sees %d sockets, want 1", n.WebSockets())
	}
}

func wsCIDsOf(ws []dwntest.Written) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.CID
	}
	return out
}

func wsEnded(t *testing.T, s *Subscription) error {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.Frames():
			if !ok {
				return s.Err()
			}
		case <-deadline:
			t.Fatal("subscription did not end within 10 s")
		}
	}
}

// wsPing does an rpc.ping round trip on the mux's current socket (enbox servers answer it).
// Frames on one socket are ordered, so once it returns every frame the server sent before the
// answer has been delivered.
func wsPing(ctx context.Context, m *Mux) error {
	c, err := m.connection(ctx)
	if err != nil {
		return err
	}
	id := newWSID()
	frame, err := encodeWSRequest(id, "rpc.ping", json.RawMessage(`{}`), "")
	if err != nil {
		return err
	}
	in, err := c.call(ctx, "rpc.ping", id, frame, m.opts.CallTimeout)
	if err == nil && in.RPCError != nil {
		err = in.RPCError
	}
	return err
}
