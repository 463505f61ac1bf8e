package dwntest

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// subscription is one MessagesSubscribe. It delivers straight from the tenant's feed: replay
// of the rows after the cursor up to the head captured at subscribe time, eose, then every row
// admitted later, in position order. A message removed before its frame went out is not
// delivered (its position is a hole by then). In enbox mode a window of unacknowledged frames
// (MaxInFlight) holds delivery back; the backlog behind a full window counts as the server's
// frame buffer (overflow and stall timeout close the subscription).
type subscription struct {
	c       *wsConn
	id      string // client subscription id (frames carry it)
	t       *tenant
	req     request
	filters []messagesFilter

	// guarded by Node.mu
	next        uint64 // every row at or below next has been delivered or skipped
	replayTo    uint64 // head when the subscription opened (replay range end)
	eosePending bool
	eoseCursor  dwn.Cursor // cursor of the last replayed event, or the input cursor
	lastSent    *dwn.Cursor
	flowControl bool
	unacked     []dwn.Cursor
	ackedAt     int // acks that made progress (resets the stall timer)

	// replyAfterFirstBatch: the subscribe reply (pendingReply) goes out after the first frames.
	replyAfterFirstBatch bool
	pendingReply         any

	kick     chan struct{}
	closed   chan struct{}
	stopOnce sync.Once
}

func (s *subscription) stop() { s.stopOnce.Do(func() { close(s.closed) }) }

// wake nudges the pump (ack progress, resumed delivery).
func (s *subscription) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// ackLocked applies a cumulative ack: the matching unacked frame and all older ones are done.
// Acks for another domain, or matching nothing, are ignored.
func (s *subscription) ackLocked(c dwn.Cursor) {
	if len(s.unacked) == 0 || c.StreamID != s.unacked[0].StreamID || c.Epoch != s.unacked[0].Epoch {
		return
	}
	// Search from the newest: an eose carries the same token as the last replayed event, and
	// one ack of that token must release both.
	for i := len(s.unacked) - 1; i >= 0; i-- {
		if u := s.unacked[i]; u.Position == c.Position && (c.MessageCID == "" || c.MessageCID == u.MessageCID) {
			s.unacked = s.unacked[i+1:]
			s.ackedAt++
			s.wake()
			return
		}
	}
}

// pump writes the subscription's frames until it ends.
func (s *subscription) pump() {
	n := s.c.n
	var stallTimer clock.Timer
	stallAcks := -1
	defer func() {
		if stallTimer != nil {
			stallTimer.Stop()
		}
	}()
	for {
		n.mu.Lock()
		changed := n.changed
		var frames []any
		var terminal bool
		windowFull := false
		if !n.faults.stalled {
			frames, terminal, windowFull = s.framesLocked()
		}
		ackedAt := s.ackedAt
		if terminal {
			delete(s.c.subs, s.id)
		}
		n.mu.Unlock()

		if len(frames) > 0 {
			n.delay()
			for _, f := range frames {
				s.c.send(f)
			}
		}
		if s.pendingReply != nil {
			s.c.send(s.pendingReply)
			s.pendingReply = nil
		}
		if terminal {
			s.stop()
			return
		}
		// Stall timer: armed while the window is full with a backlog and no ack progress.
		if windowFull && stallAcks != ackedAt {
			if stallTimer != nil {
				stallTimer.Stop()
			}
			stallTimer, stallAcks = n.clock.NewTimer(n.opts.BufferTimeout), ackedAt
		} else if !windowFull && stallTimer != nil {
			stallTimer.Stop()
			stallTimer, stallAcks = nil, -1
		}
		var timeout <-chan time.Time
		if stallTimer != nil {
			timeout = stallTimer.C()
		}
		select {
		case <-s.closed:
			return
		case <-s.c.done:
			return
		case <-changed:
		case <-s.kick:
		case <-timeout:
			n.mu.Lock()
			delete(s.c.subs, s.id)
			f := s.errorFrameLocked("SubscriptionBufferTimeout", "no acknowledgement progress while the buffer was full")
			n.mu.Unlock()
			s.c.send(f)
			s.stop()
			return
		}
	}
}

// framesLocked collects the frames that may go out now. terminal = the subscription ends after
// them; windowFull = delivery is held back by unacknowledged frames with more waiting.
func (s *subscription) framesLocked() (frames []any, terminal, windowFull bool) {
	n := s.c.n
	t := s.t
	for {
		if s.flowControl && len(s.unacked) >= n.opts.MaxInFlight {
			backlog := s.backlogLocked()
			if backlog > n.opts.BufferLimit {
				frames = append(frames, s.errorFrameLocked("SubscriptionBufferOverflow",
					"more than "+strconv.Itoa(n.opts.BufferLimit)+" frames waiting for acknowledgement"))
				return frames, true, false
			}
			return frames, false, backlog > 0 || s.eosePending
		}
		var m *stored
		for i := t.after(s.next); i < len(t.feed); i++ {
			row := t.feed[i]
			if s.eosePending && row.pos > s.replayTo {
				break
			}
			s.next = row.pos
			if matchesAny(s.filters, row) {
				m = row
				break
			}
		}
		if m == nil && s.eosePending {
			s.eosePending = false
			if s.next < s.replayTo {
				s.next = s.replayTo
			}
			frames = append(frames, s.frameLocked(map[string]any{"type": "eose", "cursor": s.eoseCursor}, s.eoseCursor))
			continue
		}
		if m == nil {
			return frames, false, false
		}
		if s.req.author != t.did {
			if code, detail := n.authorizeMessagesLocked(t, s.req, "MessagesSubscribe", nil); code != 0 {
				frames = append(frames, s.errorFrameLocked("MessagesSubscribeDeliveryAuthorizationFailed", detail))
				return frames, true, false
			}
		}
		cursor := n.tokenLocked(t, m.pos, m.cid)
		if s.eosePending {
			s.eoseCursor = cursor
		}
		frames = append(frames, s.frameLocked(s.eventLocked(m, cursor), cursor))
	}
}

// backlogLocked counts the live rows waiting behind the window (replay rows are read from the
// store on demand and do not count).
func (s *subscription) backlogLocked() int {
	from := s.next
	if s.replayTo > from {
		from = s.replayTo
	}
	count := 0
	for i := s.t.after(from); i < len(s.t.feed); i++ {
		if matchesAny(s.filters, s.t.feed[i]) {
			count++
		}
	}
	return count
}

func (s *subscription) frameLocked(body map[string]any, cursor dwn.Cursor) any {
	if s.flowControl {
		s.unacked = append(s.unacked, cursor)
	}
	c := cursor
	s.lastSent = &c
	idJSON, _ := json.Marshal(s.id)
	return rpcResult(idJSON, map[string]any{"subscription": body})
}

func (s *subscription) eventLocked(m *stored, cursor dwn.Cursor) map[string]any {
	event := map[string]any{"message": s.c.n.serveMessageLocked(m, servedEvent)}
	if iw := s.t.initialWriteOf(m); iw != nil {
		event["initialWrite"] = iw.raw
	}
	body := map[string]any{
		"type": "event", "cursor": cursor, "event": event,
		"seq": strconv.FormatUint(m.pos, 10), "messageCid": m.cid, "isLatestBaseState": m.latest,
	}
	if m.protocol != "" {
		body["protocol"] = m.protocol
	}
	if d := s.c.n.inlineDataLocked(m); d != "" {
		body["encodedData"] = d
	}
	return body
}

// errorFrameLocked is the terminal error frame of a subscription.
func (s *subscription) errorFrameLocked(code, detail string) any {
	cursor := s.eoseCursor
	if s.lastSent != nil {
		cursor = *s.lastSent
	}
	if !cursor.Valid() {
		cursor = s.c.n.tokenLocked(s.t, s.next, "")
	}
	idJSON, _ := json.Marshal(s.id)
	return rpcResult(idJSON, map[string]any{"subscription": map[string]any{
		"type": "error", "cursor": cursor, "error": map[string]any{"code": code, "detail": detail},
	}})
}
