package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Subscription is one subscription on a mux socket. Frames delivers in arrival order and is
// closed exactly once; Err says why.
type Subscription struct {
	conn *wsConn
	id   string

	mu       sync.Mutex
	frames   chan *Frame // pointers: a buffer of values cost ~24 KB a subscription up front
	err      error       // set once, when frames is closed
	buffered int64       // wire bytes delivered and not yet Released
	budget   int64       // wsOptions.BufferBytes
	notify   func()      // called after each frame and at the end (SetNotify); nil = none
}

func newWSSubscription(c *wsConn, id string, buffer int, budget int64) *Subscription {
	return &Subscription{conn: c, id: id, frames: make(chan *Frame, buffer), budget: budget}
}

// Release returns a consumed frame's bytes to the subscription's byte budget. Consumers call it
// for every frame they receive from Frames.
func (s *Subscription) Release(f *Frame) {
	s.mu.Lock()
	s.buffered -= f.wireBytes
	s.mu.Unlock()
}

// SetNotify registers fn, called on the socket's reader goroutine after every frame put in
// Frames and once when Frames is closed, so that a consumer can drain Frames without a
// goroutine waiting on it. fn must not block. It is also called once right away: frames that
// arrived before it was registered are not missed.
func (s *Subscription) SetNotify(fn func()) {
	s.mu.Lock()
	s.notify = fn
	s.mu.Unlock()
	fn()
}

// ID is the client-chosen subscription id (frames carry it).
func (s *Subscription) ID() string { return s.id }

// Frames delivers event and eose frames. It is closed when the subscription ends; buffered
// frames stay readable after that.
func (s *Subscription) Frames() <-chan *Frame { return s.frames }

// Err is nil while the subscription is open, then the reason it ended.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// deliver runs on the reader goroutine and never blocks.
func (s *Subscription) deliver(in wsInbound) {
	switch {
	case in.Malformed != nil:
		// An event we cannot read would be a silent hole in the feed: end this subscription
		// so the engine reopens from its checkpoint (which precedes the hole).
		s.end(wsMalformedError("MessagesSubscribe", in.Malformed))
		return
	case in.RPCError != nil:
		s.end(wsCallError("MessagesSubscribe", in.RPCError))
		return
	case in.SubError != nil:
		s.end(wsServerEnded(in.SubError))
		return
	case in.UnknownType != "":
		s.conn.mux.n.unknown.Add(1) // a frame type from a newer server: not ours to judge
		return
	case in.Frame == nil:
		s.conn.mux.n.garbage.Add(1)
		s.end(wsMalformedError("MessagesSubscribe", fmt.Errorf("%w: a result that is neither event, eose nor error", ErrMalformedFrame)))
		return
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	overflow := wsOverflow(cap(s.frames))
	if s.buffered+in.Frame.wireBytes <= s.budget {
		select {
		case s.frames <- in.Frame:
			s.buffered += in.Frame.wireBytes
			notify := s.notify
			s.mu.Unlock()
			if notify != nil {
				notify()
			}
			return
		default:
		}
	} else {
		overflow = wsOverflowBytes(s.budget)
	}
	s.mu.Unlock()
	s.conn.mux.n.overflows.Add(1)
	if s.end(overflow) {
		// Stop the server from sending more; nobody waits for the answer.
		go s.closeOnServer(context.Background())
	}
}

// end closes Frames with err once and forgets the subscription on its socket. It reports
// whether this call ended it.
func (s *Subscription) end(err error) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.err = err
	close(s.frames)
	notify := s.notify
	s.mu.Unlock()
	s.conn.unregister(s.id)
	if notify != nil {
		notify()
	}
	return true
}

// Ack sends rpc.ack with cursor exactly as received (a notification: no id; the server's answer
// carries a random id and is ignored). A no-op when the server has no flow control
// (MuxOptions.MaxInFlight == 0) or the subscription has ended.
func (s *Subscription) Ack(cursor json.RawMessage) error {
	if s.conn.mux.opts.MaxInFlight <= 0 || s.Err() != nil {
		return nil
	}
	if !isJSONPresent(cursor) {
		return errors.New("dwn websocket: rpc.ack needs the cursor object of a frame; got none")
	}
	frame, err := encodeWSAck(s.id, cursor)
	if err != nil {
		return err
	}
	return s.conn.write(frame)
}

// Close ends the subscription (Err becomes errWSClosed) and sends rpc.subscribe.close with
// "params": {}, waiting for the reply for at most CloseTimeout. Closing an ended subscription
// is a no-op; so is the server side when the socket is already gone (the server dropped it).
func (s *Subscription) Close(ctx context.Context) error {
	if !s.end(errWSClosed) {
		return nil
	}
	return s.closeOnServer(ctx)
}

func (s *Subscription) closeOnServer(ctx context.Context) error {
	c := s.conn
	if c.isDead() {
		return nil
	}
	reqID := newWSID()
	frame, err := encodeWSRequest(reqID, wsMethodClose, emptyParams, s.id)
	if err != nil {
		return err
	}
	in, err := c.call(ctx, wsMethodClose, reqID, frame, c.mux.opts.CloseTimeout)
	switch {
	case errors.Is(err, ErrDisconnected) || errors.Is(err, errWSMuxClosed):
		return nil // the socket is gone and took the subscription with it
	case err != nil:
		return fmt.Errorf("dwn websocket: %s %s: %w", wsMethodClose, s.id, err)
	case in.Malformed != nil:
		return wsMalformedError(wsMethodClose, in.Malformed)
	case in.RPCError != nil:
		return wsCallError(wsMethodClose, in.RPCError)
	case in.Reply == nil:
		return wsMalformedError(wsMethodClose, fmt.Errorf("%w: the reply has no result.reply", ErrMalformedFrame))
	}
	code, detail, err := wsReplyStatus(in.Reply)
	if err != nil {
		return wsMalformedError(wsMethodClose, fmt.Errorf("%w: %v", ErrMalformedFrame, err))
	}
	if code != 200 {
		return wsStatusError(wsMethodClose, code, detail)
	}
	return nil
}
