package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// wsConn is one live socket of a mux: a reader goroutine that demultiplexes frames by id, a
// pinger goroutine that also enforces the read deadline, and a write lock (gorilla allows one
// writer at a time; control frames may be written concurrently).
type wsConn struct {
	mux      *Mux
	ws       *websocket.Conn
	openedAt time.Time
	// lastHeard is the clock time (UnixNano) of the last inbound frame, ping or pong.
	lastHeard atomic.Int64

	writeMu sync.Mutex

	mu    sync.Mutex
	subs  map[string]*Subscription  // by subscription id
	calls map[string]chan wsInbound // by request id, waiting for a reply
	dead  bool
	cause error
	done  chan struct{} // closed when the socket is dead
}

func newWSConn(m *Mux, ws *websocket.Conn) *wsConn {
	c := &wsConn{
		mux:      m,
		ws:       ws,
		openedAt: m.opts.Clock.Now(),
		subs:     make(map[string]*Subscription),
		calls:    make(map[string]chan wsInbound),
		done:     make(chan struct{}),
	}
	c.heard()
	ws.SetReadLimit(m.opts.MaxFrameBytes)
	ws.SetPongHandler(func(string) error { c.heard(); return nil })
	ws.SetPingHandler(func(data string) error {
		c.heard()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(m.opts.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	return c
}

func (c *wsConn) start() {
	go c.readLoop()
	go c.pingLoop()
}

func (c *wsConn) heard() { c.lastHeard.Store(c.mux.opts.Clock.Now().UnixNano()) }

func (c *wsConn) isDead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *wsConn) subscriptionCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// fail kills the socket once: every subscription ends with cause, every pending call fails, and
// the mux schedules the next dial.
func (c *wsConn) fail(cause error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead, c.cause = true, cause
	subs := c.subs
	c.subs, c.calls = nil, nil
	close(c.done)
	c.mu.Unlock()

	_ = c.ws.Close()
	// Schedule the backoff before anyone hears of the loss, so a consumer that resubscribes
	// at once already waits.
	if !errors.Is(cause, errWSMuxClosed) {
		c.mux.connectionLost(c, cause)
	}
	for _, s := range subs {
		s.end(cause)
	}
}

func (c *wsConn) readLoop() {
	var buf bytes.Buffer
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.fail(wsLost("read: %v", c.readError(err)))
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.fail(wsLost("read: %v", c.readError(err)))
			return
		}
		c.heard()
		if typ != websocket.TextMessage {
			c.mux.n.garbage.Add(1)
			continue
		}
		c.dispatch(buf.Bytes())
		if buf.Cap() > 1<<20 {
			buf = bytes.Buffer{} // do not pin one huge frame's buffer forever
		}
	}
}

// readError names the frame bound when a frame went over it.
func (c *wsConn) readError(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) || strings.Contains(err.Error(), websocket.ErrReadLimit.Error()) {
		return fmt.Errorf("a frame exceeded dwnsync's bound of %d bytes (DWN events are a few KB plus ≤ 30 KB inline data)", c.mux.opts.MaxFrameBytes)
	}
	return err
}

// dispatch routes one frame: a reply to a pending call, or a delivery to a subscription.
func (c *wsConn) dispatch(data []byte) {
	in, err := decodeWSFrame(data)
	if err != nil {
		if n := c.mux.n.garbage.Add(1); n == 1 || n%1000 == 0 {
			c.mux.log.Info("websocket frames that are not DWN JSON-RPC responses", "count", n, "last", err.Error())
		}
		if in.ID == "" {
			return
		}
		in.Malformed = err // addressed to someone: let the owner fail rather than wait or lose an event
	}
	c.mu.Lock()
	if ch, ok := c.calls[in.ID]; ok && in.ID != "" {
		delete(c.calls, in.ID)
		c.mu.Unlock()
		ch <- in // buffered 1, sole sender
		return
	}
	s := c.subs[in.ID]
	c.mu.Unlock()
	if s == nil || in.ID == "" {
		if in.Malformed == nil { // garbage was counted already
			c.mux.n.unknown.Add(1)
		}
		return
	}
	if in.Frame != nil {
		in.Frame.wireBytes = int64(len(data))
	}
	s.deliver(in)
}

// pingLoop pings every PingInterval and kills the socket when nothing was heard for ReadTimeout.
func (c *wsConn) pingLoop() {
	opts := c.mux.opts
	t := opts.Clock.NewTicker(opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C():
		}
		silent := opts.Clock.Since(time.Unix(0, c.lastHeard.Load()))
		if silent >= opts.ReadTimeout {
			c.fail(wsLost("nothing heard for %s (read deadline %s)", silent, opts.ReadTimeout))
			return
		}
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(opts.WriteTimeout)); err != nil {
			c.fail(wsLost("ping: %v", err))
			return
		}
		c.mux.n.pings.Add(1)
	}
}

// write sends one text frame; a failed write kills the socket.
func (c *wsConn) write(frame []byte) error {
	c.writeMu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.mux.opts.WriteTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, frame)
	c.writeMu.Unlock()
	if err != nil {
		err = wsLost("write: %v", err)
		c.fail(err)
		return err
	}
	return nil
}

func (c *wsConn) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return c.cause
	}
	return wsLost("socket closed")
}

// call writes a request with id and waits for the frame carrying that id.
func (c *wsConn) call(ctx context.Context, method, id string, frame []byte, timeout time.Duration) (wsInbound, error) {
	ch := make(chan wsInbound, 1)
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return wsInbound{}, c.deadErr()
	}
	c.calls[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
	}
	if err := c.write(frame); err != nil {
		forget()
		return wsInbound{}, err
	}
	t := c.mux.opts.Clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case in := <-ch:
		return in, nil
	case <-c.done:
		return wsInbound{}, c.deadErr()
	case <-ctx.Done():
		forget()
		return wsInbound{}, ctx.Err()
	case <-t.C():
		forget()
		return wsInbound{}, wsTimedOut(method, timeout)
	}
}

// register adds a subscription before its request is sent, so early frames find it.
func (c *wsConn) register(s *Subscription) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return c.cause
	}
	c.subs[s.id] = s
	return nil
}

func (c *wsConn) unregister(id string) {
	c.mu.Lock()
	if c.subs != nil {
		delete(c.subs, id)
	}
	c.mu.Unlock()
}

func (c *wsConn) subscribe(ctx context.Context, params json.RawMessage) (*Subscription, json.RawMessage, error) {
	reqID, subID := newWSID(), newWSID()
	frame, err := encodeWSRequest(reqID, wsMethodSubscribe, params, subID)
	if err != nil {
		return nil, nil, &dwn.Error{Op: wsMethodSubscribe, Kind: dwn.Permanent, Detail: "encode the request", Err: err}
	}
	s := newWSSubscription(c, subID, c.mux.opts.Buffer, c.mux.opts.BufferBytes)
	if err := c.register(s); err != nil {
		return nil, nil, err
	}
	in, err := c.call(ctx, wsMethodSubscribe, reqID, frame, c.mux.opts.CallTimeout)
	if err != nil {
		s.end(err)
		if ctx.Err() != nil || errors.Is(err, errWSTimeout) {
			// The server may still open it: tell it to drop the subscription.
			go s.closeOnServer(context.Background())
		}
		return nil, nil, err
	}
	if in.Malformed != nil {
		err := wsMalformedError(wsMethodSubscribe, in.Malformed)
		s.end(err)
		return nil, nil, err
	}
	if in.RPCError != nil {
		err := wsCallError(wsMethodSubscribe, in.RPCError)
		s.end(err)
		return nil, nil, err
	}
	if in.Reply == nil {
		err := wsMalformedError(wsMethodSubscribe, fmt.Errorf("%w: the reply has no result.reply", ErrMalformedFrame))
		s.end(err)
		return nil, nil, err
	}
	code, detail, err := wsReplyStatus(in.Reply)
	if err != nil {
		err = wsMalformedError(wsMethodSubscribe, fmt.Errorf("%w: %v", ErrMalformedFrame, err))
		s.end(err)
		return nil, in.Reply, err
	}
	switch code {
	case 200:
		return s, in.Reply, nil
	case 410:
		err = gapFromReply(in.Reply)
	default:
		err = wsStatusError(wsMethodSubscribe, code, detail)
	}
	s.end(err)
	return nil, in.Reply, err
}
