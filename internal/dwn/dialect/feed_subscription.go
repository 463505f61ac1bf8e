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
// eose becomes EventEOSE, and the end of the frame stream becomes one EventEnd.
type feedSubscription struct {
	eventStream
	sub    *wire.Subscription
	cancel context.CancelFunc
	done   chan struct{}

	once sync.Once
}

// newFeedSubscription adapts sub and starts its pump. A live-only subscription (no cursor) gets no
// eose from the server (docs/protocol-notes.md#eose), yet every Subscription promises replay, EOSE,
// live: for those, first is the EOSE to emit before any frame (its cursor is the reply's head when
// the server reports one).
func newFeedSubscription(ctx context.Context, sub *wire.Subscription, first *dwn.Event) *feedSubscription {
	runCtx, cancel := context.WithCancel(ctx)
	s := &feedSubscription{eventStream: newEventStream(), sub: sub, cancel: cancel, done: make(chan struct{})}
	if first != nil {
		s.events <- *first // the buffer is empty: never blocks
	}
	go func() {
		s.run(runCtx)
		s.closeServer()
		close(s.done)
	}()
	return s
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

func (s *feedSubscription) Close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *feedSubscription) closeServer() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.sub.Close(ctx)
	})
}

func (s *feedSubscription) run(ctx context.Context) {
	defer close(s.events)
	frames := s.sub.Frames()
	for {
		select {
		case <-ctx.Done():
			return
		case f, ok := <-frames:
			if !ok {
				if ctx.Err() == nil {
					s.emit(ctx, dwn.Event{Kind: dwn.EventEnd, Err: s.sub.Err()})
				}
				return
			}
			s.sub.Release(f)
			ev, err := s.toEvent(f)
			if err != nil {
				s.emit(ctx, dwn.Event{Kind: dwn.EventEnd, Err: err})
				return
			}
			if !s.emit(ctx, ev) {
				return
			}
		}
	}
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
