package dialect

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// subscribeByPolling emulates a replaying subscription on servers whose MessagesSubscribe has
// no cursor and no replay (web5, seed-era enbox):
//
//  1. Open the WebSocket MessagesSubscribe FIRST. Its events carry the message (no CID, no
//     cursor, no data): they are a doorbell ("something changed").
//  2. Page the feed with MessagesQuery from `from` up to the head, emitting one EventMessage
//     per CID not yet emitted. With from == nil the head is found without emitting (live only).
//  3. Emit EventEOSE with the last cursor.
//  4. After EOSE, a doorbell event's message is emitted at once (CID computed, no cursor), so
//     the live path costs no MessagesQuery and no Read of the message: only its data, when it
//     has any, is left to fetch. Then every ring (rings coalesce) pages from the last cursor,
//     for what the doorbell did not carry and for the cursor: a CID already emitted comes
//     again only when its page entry carries a cursor, as a Repeat (position only), so that
//     the checkpoint advances once the first delivery is done.
//
// Because the doorbell is open before the first page, a write that lands during paging rings
// it, and the next page picks the write up: no gap. Messages can be seen twice around a ring
// (CIDs are deduplicated, and applying is idempotent anyway). Ack is a no-op (no flow control).
// The subscription ends with EventEnd when the socket or the server ends the doorbell, or when
// a page fails; the engine then resubscribes from its checkpoint.
func subscribeByPolling(ctx context.Context, t *tenantBase, filters []any, feed pager, scope dwn.Scope, from *dwn.Cursor) (dwn.Subscription, error) {
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
		ring: make(chan struct{}, 1), arrivals: make(chan dwn.Entry, pollMaxArrivals), doorbell: doorbell,
		seen: map[string]struct{}{},
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
	FeedPage(ctx context.Context, scope dwn.Scope, after *dwn.Cursor, limit int, cidsOnly bool) (dwn.Page, error)
}

const (
	pollPageLimit = 500
	pollMaxSeen   = 10000 // dedupe memory; cursors are exclusive so older CIDs do not recur
	// pollMaxArrivals bounds the doorbell messages waiting to be emitted; beyond it a message
	// is left to the next page (its ring still counts).
	pollMaxArrivals = 256
)

type pollSubscription struct {
	eventStream
	cancel   context.CancelFunc
	done     chan struct{}
	ring     chan struct{}
	arrivals chan dwn.Entry // doorbell messages, emitted once live (closed with the doorbell)
	doorbell *wire.Subscription

	mu   sync.Mutex // guards seen: pages and arrivals are emitted by two goroutines
	seen map[string]struct{}

	closeOnce sync.Once
	closeErr  error
}

func (s *pollSubscription) Ack(dwn.Cursor) {}

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

// listen turns doorbell frames into arrivals (the message each carried) and coalesced rings,
// and the doorbell's end into a final ring (run then sees the closed frame channel through
// doorbellErr). It never blocks on the consumer: a full arrivals queue leaves the message to
// the next page.
func (s *pollSubscription) listen() {
	defer close(s.arrivals)
	for f := range s.doorbell.Frames() {
		e, ok := doorbellEntry(*f)
		s.doorbell.Release(f) // out of the subscription buffer: the bounded arrivals queue holds it now
		if ok {
			select {
			case s.arrivals <- e:
			default: // full: the page after the ring lists it instead
			}
		}
		select {
		case s.ring <- struct{}{}:
		default: // a ring is already pending; one page covers both
		}
	}
	close(s.ring)
}

// doorbellEntry is the message a doorbell event carried, with its CID; false when the frame
// carried none that hashes.
func doorbellEntry(f wire.Frame) (dwn.Entry, bool) {
	if len(f.Message) == 0 {
		return dwn.Entry{}, false
	}
	cid, err := msg.MessageCID(f.Message)
	if err != nil {
		return dwn.Entry{}, false
	}
	return dwn.Entry{CID: cid, Message: f.Message, InitialWrite: f.InitialWrite}, true
}

func (s *pollSubscription) run(ctx context.Context, feed pager, scope dwn.Scope, from *dwn.Cursor) {
	defer close(s.events)
	cursor, err := s.page(ctx, feed, scope, from, from != nil)
	if err != nil {
		s.end(ctx, err)
		return
	}
	if !s.emit(ctx, dwn.Event{Kind: dwn.EventEOSE, Cursor: cursor}) {
		return
	}
	// Live: doorbell messages are emitted as they arrive, while pages run beside them (a page
	// waiting on a slow query must not hold a message the doorbell already carried).
	emitCtx, stopEmitting := context.WithCancel(ctx)
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		s.emitArrivals(emitCtx)
	}()
	err = s.follow(ctx, feed, scope, cursor)
	stopEmitting()
	<-emitted
	if err != nil {
		s.end(ctx, err)
	}
}

// follow pages from cursor at every ring until ctx ends (nil) or the doorbell or a page fails.
func (s *pollSubscription) follow(ctx context.Context, feed pager, scope dwn.Scope, cursor *dwn.Cursor) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-s.ring:
			if !ok {
				return s.doorbell.Err()
			}
			next, err := s.page(ctx, feed, scope, cursor, true)
			if err != nil {
				return err
			}
			if next != nil {
				cursor = next
			}
		}
	}
}

// emitArrivals emits each doorbell message not emitted yet, until ctx ends or the doorbell closes.
func (s *pollSubscription) emitArrivals(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-s.arrivals:
			if !ok {
				return
			}
			if s.wasSeen(e.CID) {
				continue
			}
			if !s.emitEntry(ctx, e) {
				return
			}
		}
	}
}

// page reads the feed after `after` to the end; it emits new CIDs when emit is set and
// returns the last cursor seen (after itself when nothing new arrived). A CID already emitted
// comes again only as a Repeat, when it carries the page's cursor.
func (s *pollSubscription) page(ctx context.Context, feed pager, scope dwn.Scope, after *dwn.Cursor, emit bool) (*dwn.Cursor, error) {
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
			if s.wasSeen(e.CID) {
				if e.Cursor == nil {
					continue
				}
				e.Repeat = true // only its position is news
			}
			if !s.emitEntry(ctx, e) {
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

func (s *pollSubscription) wasSeen(cid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[cid]
	return ok
}

// emitEntry emits e and only then remembers its CID: a Repeat (position only) can follow
// only a delivery already emitted, so the checkpoint never passes a message not yet handed
// over. (Both goroutines may emit a message they checked at the same moment: applying twice
// is harmless.) False when the consumer closed the subscription.
func (s *pollSubscription) emitEntry(ctx context.Context, e dwn.Entry) bool {
	if !s.emit(ctx, dwn.Event{Kind: dwn.EventMessage, Entry: e, Cursor: e.Cursor}) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) >= pollMaxSeen {
		s.seen = map[string]struct{}{}
	}
	s.seen[e.CID] = struct{}{}
	return true
}

// end delivers the one terminal event (unless the consumer already closed us).
func (s *pollSubscription) end(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.emit(ctx, dwn.Event{Kind: dwn.EventEnd, Err: err})
}
