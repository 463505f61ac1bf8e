package dialect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// eventStream is the consumer side both Subscription adapters share: the buffered Events
// channel their pump goroutine fills, and closes, until the consumer closes the subscription.
type eventStream struct{ events chan dwn.Event }

func newEventStream() eventStream { return eventStream{events: make(chan dwn.Event, 64)} }

func (s *eventStream) Events() <-chan dwn.Event { return s.events }

// emit delivers ev unless ctx ends first (the consumer closed the subscription).
func (s *eventStream) emit(ctx context.Context, ev dwn.Event) bool {
	select {
	case s.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// feedSubscription adapts a durable-feed WebSocket subscription (enbox) to Subscription:
// replayed and live event frames become EventMessage (cursor = the frame's ProgressToken),
// eose becomes EventEOSE, and the end of the frame stream becomes one EventEnd. It is an
// EventPuller: a consumer that takes events with Next runs the conversion on its own
// goroutine, and the pump goroutine and event buffer of Events exist only for a consumer that
// asks for Events (the engine holds two feeds per link: 10,000 links made 40,000 goroutines
// and 20,000 event buffers of 64 out of them). It is also an EventNotifier: a consumer that
// drains on Notify needs no goroutine at all while the feed is idle.
type feedSubscription struct {
	sub    *wire.Subscription
	ctx    context.Context // ends with the Subscribe context or Close
	cancel context.CancelFunc
	first  *dwn.Event // the EOSE of a live-only subscription, handed out before any frame
	ended  bool       // the EventEnd went out (Next's caller only)

	pumpOnce sync.Once
	stream   eventStream   // Events' buffer, made by the first Events call
	mu       sync.Mutex    // guards done
	done     chan struct{} // closed when the pump has ended; nil while there is no pump

	once sync.Once
}

// newFeedSubscription adapts sub. A live-only subscription (no cursor) gets no eose from the
// server (docs/protocol-notes.md#eose), yet every Subscription promises replay, EOSE, live: for
// those, first is the EOSE to emit before any frame (its cursor is the reply's head when the
// server reports one).
func newFeedSubscription(ctx context.Context, sub *wire.Subscription, first *dwn.Event) *feedSubscription {
	runCtx, cancel := context.WithCancel(ctx)
	s := &feedSubscription{sub: sub, ctx: runCtx, cancel: cancel, first: first}
	// Whoever ends it (Close, or the Subscribe context), the server hears of it, as it did when
	// every subscription had a pump watching its context.
	context.AfterFunc(runCtx, s.closeServer)
	return s
}

// Events starts the pump on first use: it delivers what Next returns into a buffered channel
// and closes it at the end.
func (s *feedSubscription) Events() <-chan dwn.Event {
	s.pumpOnce.Do(func() {
		s.stream = newEventStream()
		done := make(chan struct{})
		s.mu.Lock()
		s.done = done
		s.mu.Unlock()
		go func() {
			s.pump()
			s.closeServer()
			close(done)
		}()
	})
	return s.stream.events
}

func (s *feedSubscription) pump() {
	defer close(s.stream.events)
	for {
		ev, ok := s.Next(s.ctx)
		if !ok || !s.stream.emit(s.ctx, ev) {
			return
		}
	}
}

// Next returns the next event: the pending EOSE of a live-only subscription, then one per
// frame, then one EventEnd when the frame stream ends (not after Close), then false.
func (s *feedSubscription) Next(ctx context.Context) (dwn.Event, bool) {
	if s.first != nil {
		ev := *s.first
		s.first = nil
		return ev, true
	}
	if s.ended {
		return dwn.Event{}, false
	}
	select {
	case <-ctx.Done():
		return dwn.Event{}, false
	case <-s.ctx.Done():
		return dwn.Event{}, false
	case f, more := <-s.sub.Frames():
		ev, ok, _ := s.frameEvent(ctx, f, more)
		return ev, ok
	}
}

// Notify registers fn with the socket: it is called after every frame, at the end, and once
// now (dwn.EventNotifier).
func (s *feedSubscription) Notify(fn func()) { s.sub.SetNotify(fn) }

// TryNext is Next without waiting: the same events in the same order, ok false when no frame
// is buffered yet, open false once the subscription is over.
func (s *feedSubscription) TryNext() (ev dwn.Event, ok, open bool) {
	if s.first != nil {
		ev := *s.first
		s.first = nil
		return ev, true, true
	}
	if s.ended || s.ctx.Err() != nil {
		return dwn.Event{}, false, false
	}
	select {
	case f, more := <-s.sub.Frames():
		return s.frameEvent(s.ctx, f, more)
	default:
		return dwn.Event{}, false, true
	}
}

// frameEvent turns what Frames gave into Next's answer: an event, the one EventEnd when the
// stream ended by itself, or nothing (ok false, open false) when it was closed by us.
func (s *feedSubscription) frameEvent(ctx context.Context, f *wire.Frame, more bool) (dwn.Event, bool, bool) {
	if !more {
		s.ended = true
		if ctx.Err() != nil || s.ctx.Err() != nil {
			return dwn.Event{}, false, false
		}
		return dwn.Event{Kind: dwn.EventEnd, Err: s.sub.Err()}, true, true
	}
	s.sub.Release(f)
	ev, err := s.toEvent(*f)
	if err != nil {
		s.ended = true
		return dwn.Event{Kind: dwn.EventEnd, Err: err}, true, true
	}
	return ev, true, true
}

// liveOnlyEOSE is the EOSE of a subscription opened without a cursor: live starts at the
// reply's head (enbox reports it; seed-era servers do not, so the cursor is then nil). A head
// that is not a valid token is left out rather than trusted.
func liveOnlyEOSE(from *dwn.Cursor, reply json.RawMessage) *dwn.Event {
	if from != nil {
		return nil
	}
	var r struct {
		Head json.RawMessage `json:"head"`
	}
	_ = json.Unmarshal(reply, &r)
	head, err := decodeProgressToken(r.Head)
	if err != nil {
		head = nil
	}
	return &dwn.Event{Kind: dwn.EventEOSE, Cursor: head}
}

// Ack acknowledges c and everything before it (rpc.ack is cumulative). Cursor encodes to the
// ProgressToken's exact member set (messageCid only when present), which is what the server
// matches on.
func (s *feedSubscription) Ack(c dwn.Cursor) {
	raw, _ := json.Marshal(c)
	_ = s.sub.Ack(raw)
}

// Close ends the subscription and closes it on the server, after the pump when there is one.
func (s *feedSubscription) Close() error {
	s.cancel()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	s.closeServer()
	return nil
}

func (s *feedSubscription) closeServer() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.sub.Close(ctx)
	})
}

func (s *feedSubscription) toEvent(f wire.Frame) (dwn.Event, error) {
	cursor, err := decodeProgressToken(f.Cursor)
	if err != nil {
		return dwn.Event{}, &dwn.GapError{Reason: "invalid_token"}
	}
	if f.Kind == wire.FrameEOSE {
		return dwn.Event{Kind: dwn.EventEOSE, Cursor: cursor}, nil
	}
	entry := dwn.Entry{CID: f.MessageCID, Cursor: cursor, Message: f.Message, InitialWrite: f.InitialWrite}
	if entry.CID == "" && len(f.Message) > 0 {
		if entry.CID, err = msg.MessageCID(f.Message); err != nil {
			return dwn.Event{}, &dwn.Error{Op: "MessagesSubscribe", Kind: dwn.Permanent, Detail: "event message: " + err.Error()}
		}
	}
	if f.EncodedData != "" {
		data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(f.EncodedData, "="))
		if err != nil {
			return dwn.Event{}, &dwn.Error{Op: "MessagesSubscribe", Kind: dwn.Permanent, Detail: "event " + entry.CID + ": encodedData is not base64url"}
		}
		entry.InlineData = data
	}
	return dwn.Event{Kind: dwn.EventMessage, Entry: entry, Cursor: cursor}, nil
}
