package syncer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// feedRun is one subscription of one direction under one epoch. Its context is a child of
// the link's; closing it ends the subscription, its reader, its acks and its workers.
type feedRun struct {
	l      *link
	dir    ls.Dir
	epoch  uint64
	ctx    context.Context
	cancel context.CancelFunc
	// slots is the feed's window: deliveries handed to the supervisor and not yet drained by
	// the tracker (Timing.MaxUncommitted). The reader waits for a slot, so a delivery that is slow
	// or retrying holds the feed back instead of letting later ones pile up behind it.
	slots chan struct{}
	// workers bounds the pull applies running at once (DeliveryConcurrency).
	workers chan struct{}

	mu  sync.Mutex
	sub dwn.Subscription

	// The event drain of a subscription that notifies (dwn.EventNotifier): a goroutine that
	// runs only while events wait. drainAgain is a notify that came while it ran.
	drainMu    sync.Mutex
	draining   bool
	drainAgain bool

	// The ack flusher: a goroutine started when a cursor is pending and none runs.
	ackMu        sync.Mutex
	ackPending   *dwn.Cursor
	ackSub       dwn.Subscription // nil until the subscription is open
	ackRunning   bool
	lastAckEvent time.Time // the flusher's own: one runs at a time
}

func (l *link) openFeed(d ls.Dir, epoch uint64, from *dwn.Cursor) {
	if old := l.feeds[d]; old != nil {
		old.close()
	}
	ctx, cancel := context.WithCancel(l.ctx)
	f := &feedRun{l: l, dir: d, epoch: epoch, ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, l.e.timing.MaxUncommitted), workers: make(chan struct{}, DeliveryConcurrency)}
	l.feeds[d] = f
	var cp *dwn.Cursor
	if from != nil && from.Valid() {
		v := *from
		cp = &v
	}
	go f.run(cp)
}

func (f *feedRun) close() {
	f.cancel()
	f.mu.Lock()
	sub := f.sub
	f.mu.Unlock()
	if sub != nil {
		_ = sub.Close()
	}
}

func (f *feedRun) failed(err error) {
	if f.ctx.Err() != nil {
		return
	}
	in := ls.FeedFailed{Dir: f.dir, Epoch: f.epoch}
	if err != nil {
		in.Err, in.ErrKind = err.Error(), errorKind(err)
		f.l.e.met.countError(f.l.sourceEndpoint(f.dir), in.ErrKind)
		if gap, ok := dwn.AsGap(err); ok {
			in.Gap = gap
		}
	} else {
		in.Err = "subscription ended"
	}
	f.l.e.met.reconnects.WithLabelValues(f.l.sourceEndpoint(f.dir)).Inc()
	f.l.setFeedError(f.dir, in.Err)
	f.l.send(in)
}

func (f *feedRun) run(from *dwn.Cursor) {
	src, err := f.l.tenant(f.ctx, f.dir.Source())
	if err != nil {
		f.failed(err)
		return
	}
	sub, err := src.Subscribe(f.ctx, f.l.cfg.Scope, from)
	if err != nil {
		f.failed(err)
		return
	}
	f.mu.Lock()
	f.sub = sub
	f.mu.Unlock()
	if f.ctx.Err() != nil {
		_ = sub.Close()
		return
	}
	f.l.send(ls.FeedOpened{Dir: f.dir, Epoch: f.epoch})
	f.startAcks(sub)
	if n, ok := sub.(dwn.EventNotifier); ok {
		// The subscription says when events are ready: this goroutine ends here, and an idle
		// feed holds none (a drain runs only while events wait).
		context.AfterFunc(f.ctx, func() { _ = sub.Close() })
		n.Notify(func() { f.kickDrain(n) })
		return
	}
	defer sub.Close()
	next := dwn.NextEvents(sub) // on this goroutine: an idle feed costs no other
	for {
		ev, ok := next(f.ctx)
		if !ok {
			f.failed(errors.New("subscription closed")) // nothing when the feed was closed
			return
		}
		if !f.handle(ev) {
			return
		}
	}
}

// kickDrain starts a drain of n unless one runs; a running drain is told to look again. It is
// the subscription's notify callback, so it never blocks.
func (f *feedRun) kickDrain(n dwn.EventNotifier) {
	f.drainMu.Lock()
	defer f.drainMu.Unlock()
	if f.draining {
		f.drainAgain = true
		return
	}
	f.draining, f.drainAgain = true, false
	go f.drain(n)
}

// drain hands every ready event to the supervisor, in order, then ends; one runs at a time.
// A notify that lands while it runs makes it look once more before ending, so no event is left
// waiting without a drain.
func (f *feedRun) drain(n dwn.EventNotifier) {
	for {
		ev, ok, open := n.TryNext()
		switch {
		case !open:
			// Nothing is reported when the feed was closed. draining stays set: the feed is
			// over, and no drain starts again.
			f.failed(errors.New("subscription closed"))
			return
		case ok:
			if !f.handle(ev) {
				return
			}
			continue
		}
		f.drainMu.Lock()
		if !f.drainAgain {
			f.draining = false
			f.drainMu.Unlock()
			return
		}
		f.drainAgain = false
		f.drainMu.Unlock()
	}
}

// handle passes one event to the supervisor. It waits for a slot of the feed's window before a
// message, and reports false when the feed is over (closed, or the event was its end).
func (f *feedRun) handle(ev dwn.Event) bool {
	switch ev.Kind {
	case dwn.EventMessage:
		select {
		case f.slots <- struct{}{}:
		case <-f.ctx.Done():
			return false
		}
		entry := ev.Entry
		if entry.Cursor == nil && ev.Cursor != nil {
			entry.Cursor = ev.Cursor
		}
		f.l.observeCursor(f.dir, entry.Cursor)
		// A Repeat only tells the position of a message already delivered: like an
		// out-of-scope one it is committed in order and never applied.
		skip := entry.Repeat || outOfScope(f.l.cfg.Scope, entry)
		f.l.send(ls.Delivered{Dir: f.dir, Epoch: f.epoch, Entry: entry, OutOfScope: skip})
	case dwn.EventEOSE:
		f.l.observeCursor(f.dir, ev.Cursor)
		f.l.send(ls.EOSE{Dir: f.dir, Epoch: f.epoch, Cursor: ev.Cursor})
	case dwn.EventEnd:
		f.failed(ev.Err)
		return false
	}
	return true
}

func (f *feedRun) release(n int) {
	for i := 0; i < n; i++ {
		select {
		case <-f.slots:
		default:
			return
		}
	}
}

// ack hands the newest committed cursor to the ack flusher (latest wins), starting it when it
// is not running: an idle feed keeps no goroutine waiting for acks.
func (f *feedRun) ack(c dwn.Cursor) {
	f.ackMu.Lock()
	defer f.ackMu.Unlock()
	f.ackPending = &c
	f.kickAcksLocked()
}

// startAcks hands the flusher the subscription (acks committed before it opened wait for it).
func (f *feedRun) startAcks(sub dwn.Subscription) {
	f.ackMu.Lock()
	defer f.ackMu.Unlock()
	f.ackSub = sub
	f.kickAcksLocked()
}

func (f *feedRun) kickAcksLocked() {
	if f.ackRunning || f.ackSub == nil || f.ackPending == nil {
		return
	}
	f.ackRunning = true
	go f.flushAcks(f.ackSub)
}

// flushAcks makes committed checkpoints durable (ledger.Flush) before acknowledging them to the
// server, and reports each durable advance once, until no ack is pending.
func (f *feedRun) flushAcks(sub dwn.Subscription) {
	for {
		f.ackMu.Lock()
		c := f.ackPending
		f.ackPending = nil
		if c == nil || f.ctx.Err() != nil {
			f.ackRunning = false
			f.ackMu.Unlock()
			return
		}
		f.ackMu.Unlock()
		if err := f.l.e.opts.Ledger.Flush(f.ctx); err != nil {
			if f.ctx.Err() == nil {
				f.l.log.Error(err, "flushing the ledger before an ack")
			}
			continue
		}
		sub.Ack(*c)
		// Checkpoint advances are reported at most once a second per feed: they wake the
		// controller, and the snapshot always holds the latest position anyway.
		if now := f.l.e.clock.Now(); now.Sub(f.lastAckEvent) >= CheckpointEventInterval {
			f.lastAckEvent = now
			typ := ls.EvPullAdvance
			if f.dir == ls.Push {
				typ = ls.EvPushAdvance
			}
			f.l.e.publish(Event{Key: f.l.key, Name: f.l.cfg.Name, Type: typ, Reason: c.Position, Message: c.MessageCID})
		}
	}
}

// outOfScope reports whether a delivered message lies outside the link's scope (the server
// filters by protocol; path prefixes are checked here, docs/engine-behaviour.md#scope-filter).
func outOfScope(sc dwn.Scope, e dwn.Entry) bool {
	if (sc.Protocol == "" && len(sc.ProtocolPathPrefixes) == 0) || e.Message == nil {
		return false
	}
	info, err := msg.Inspect(e.Message)
	if err != nil {
		return false
	}
	if sc.Protocol != "" {
		p := info.Protocol
		if p == "" {
			p = info.ConfiguredProtocol
		}
		if p != sc.Protocol {
			return true
		}
	}
	if len(sc.ProtocolPathPrefixes) == 0 {
		return false
	}
	for _, prefix := range sc.ProtocolPathPrefixes {
		if info.ProtocolPath == prefix || strings.HasPrefix(info.ProtocolPath, prefix+"/") {
			return false
		}
	}
	return true
}

// sourceEndpoint is the server a direction's feed reads: the remote for pull, local for push.
func (l *link) sourceEndpoint(d ls.Dir) string {
	if d.Source() == ls.Remote {
		return l.cfg.RemoteEndpoint
	}
	return l.cfg.LocalEndpoint
}
