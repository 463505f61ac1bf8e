package dwn

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// subscribeByPolling emulates a replaying subscription on servers whose MessagesSubscribe has
// no cursor and no replay (web5, seed-era enbox):
//
//  1. Open the WebSocket MessagesSubscribe FIRST. Its events are used only as a doorbell
//     ("something changed"), never as data: they carry no CID and no cursor.
//  2. Page the feed with MessagesQuery from `from` up to the head, emitting one EventMessage
//     per CID not yet emitted. With from == nil the head is found without emitting (live only).
//  3. Emit EventEOSE with the last cursor.
//  4. On every doorbell ring (rings coalesce), page again from the last cursor.
//
// Because the doorbell is open before the first page, a write that lands during paging rings
// it, and the next page picks the write up: no gap. Messages can be seen twice around a ring
// (CIDs are deduplicated, and applying is idempotent anyway). Ack is a no-op (no flow control).
// The subscription ends with EventEnd when the socket or the server ends the doorbell, or when
// a page fails; the engine then resubscribes from its checkpoint.
func subscribeByPolling(ctx context.Context, t *tenantBase, filters []any, feed pager, scope Scope, from *Cursor) (Subscription, error) {
	mux, err := t.c.mux(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := t.signMessages("Subscribe", map[string]any{"filters": filters})
	if err != nil {
		return nil, err
	}
	params, _ := json.Marshal(map[string]any{"target": t.did, "message": msg})
	doorbell, _, err := mux.Subscribe(ctx, params)
	if err != nil {
		return nil, err
	}
	// The subscription lives until Close or until the caller's ctx ends.
	runCtx, cancel := context.WithCancel(ctx)
	s := &pollSubscription{
		eventStream: newEventStream(), cancel: cancel, done: make(chan struct{}),
		ring: make(chan struct{}, 1), doorbell: doorbell, seen: map[string]struct{}{},
	}
	go s.listen()
	go func() {
		s.run(runCtx, feed, scope, from)
		s.closeDoorbell()
		close(s.done)
	}()
	return s, nil
}

// pager is the feed half of a Tenant.
type pager interface {
	FeedPage(ctx context.Context, scope Scope, after *Cursor, limit int, cidsOnly bool) (Page, error)
}

const (
	pollPageLimit = 500
	pollMaxSeen   = 10000 // dedupe memory; cursors are exclusive so older CIDs do not recur
)

type pollSubscription struct {
	eventStream
	cancel   context.CancelFunc
	done     chan struct{}
	ring     chan struct{}
	doorbell *wsSubscription
	seen     map[string]struct{}

	closeOnce sync.Once
	closeErr  error
}

func (s *pollSubscription) Ack(Cursor) {}

// Close stops paging, closes the doorbell on the server and closes Events.
func (s *pollSubscription) Close() error {
	s.cancel()
	<-s.done
	return s.closeErr
}

// closeDoorbell tells the server to drop the doorbell subscription (once).
func (s *pollSubscription) closeDoorbell() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.closeErr = s.doorbell.Close(ctx)
	})
}

// listen turns doorbell frames into coalesced rings, and the doorbell's end into a final ring
// (run then sees the closed frame channel through doorbellErr).
func (s *pollSubscription) listen() {
	for f := range s.doorbell.Frames() {
		s.doorbell.Release(f)
		select {
		case s.ring <- struct{}{}:
		default: // a ring is already pending; one page covers both
		}
	}
	close(s.ring)
}

func (s *pollSubscription) run(ctx context.Context, feed pager, scope Scope, from *Cursor) {
	defer close(s.events)
	cursor := from
	var err error
	if from == nil {
		cursor, err = s.page(ctx, feed, scope, nil, false)
	} else {
		cursor, err = s.page(ctx, feed, scope, from, true)
	}
	if err != nil {
		s.end(ctx, err)
		return
	}
	if !s.emit(ctx, Event{Kind: EventEOSE, Cursor: cursor}) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-s.ring:
			if !ok {
				s.end(ctx, s.doorbell.Err())
				return
			}
			next, err := s.page(ctx, feed, scope, cursor, true)
			if err != nil {
				s.end(ctx, err)
				return
			}
			if next != nil {
				cursor = next
			}
		}
	}
}

// page reads the feed after `after` to the end; it emits new CIDs when emit is set and
// returns the last cursor seen (after itself when nothing new arrived).
func (s *pollSubscription) page(ctx context.Context, feed pager, scope Scope, after *Cursor, emit bool) (*Cursor, error) {
	cursor := after
	for {
		p, err := feed.FeedPage(ctx, scope, cursor, pollPageLimit, true)
		if err != nil {
			return cursor, err
		}
		for _, e := range p.Entries {
			if !emit {
				continue
			}
			if _, dup := s.seen[e.CID]; dup {
				continue
			}
			if len(s.seen) >= pollMaxSeen {
				s.seen = map[string]struct{}{}
			}
			s.seen[e.CID] = struct{}{}
			if !s.emit(ctx, Event{Kind: EventMessage, Entry: e, Cursor: e.Cursor}) {
				return cursor, ctx.Err()
			}
		}
		if p.Cursor != nil {
			cursor = p.Cursor
		}
		if p.Drained || len(p.Entries) == 0 {
			return cursor, nil
		}
	}
}

// end delivers the one terminal event (unless the consumer already closed us).
func (s *pollSubscription) end(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.emit(ctx, Event{Kind: EventEnd, Err: err})
}
