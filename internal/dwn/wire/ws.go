package wire

// WebSocket JSON-RPC multiplexer: one socket per endpoint carries every subscription of every
// tenant on that endpoint (servers limit sockets per peer;
// docs/protocol-notes.md#per-peer-socket-limits).
//
// API for the dialect adapters (everything else in ws*.go is internal to the mux):
//
//	mux, err := NewMux(endpoint, MuxOptions{...})   // http→ws, https→wss; does not dial yet
//	sub, reply, err := mux.Subscribe(ctx, params)    // params = {"target": did, "message": signed MessagesSubscribe}
//	for f := range sub.Frames() { ... }              // Frame: Kind event|eose, Cursor, Message, InitialWrite, ...
//	err = sub.Err()                                  // why Frames was closed (valid once it is closed)
//	err = sub.Ack(f.Cursor)                          // rpc.ack; a no-op unless MuxOptions.MaxInFlight > 0
//	err = sub.Close(ctx)                             // rpc.subscribe.close with "params": {}, waits for the reply
//	mux.Close()                                      // ends every subscription with errWSMuxClosed
//	mux.Stats()                                      // counters: dials, garbage and unknown-id frames, overflows
//
// Subscribe:
//   - opens the socket lazily (first call, or first call after a loss). After a loss or a failed
//     dial the next dial waits an exponential backoff (1 s doubling to 30 s, ±20 % jitter, on the
//     injected clock); a socket that lived ≥ 30 s resets the backoff. Subscribe waits out the
//     backoff (bounded by ctx) and makes one dial attempt; it never loops by itself.
//   - sends rpc.subscribe.dwn.processMessage with a fresh request id and a fresh subscription id,
//     registered before the request is written: event frames that beat the reply (enbox replays
//     synchronously) are buffered on the subscription.
//   - returns reply = result.reply as received (adapters read head/fingerprint from it).
//     status 200 → the subscription; 410 → a *GapError (AsGap); any other status → an *Error
//     with DWNCode and the kind for that status (401 → Unauthorized, ...); a JSON-RPC error → an
//     *Error with RPCCode; no socket → a Transient *Error wrapping ErrDisconnected.
//
// Delivery and termination: frames are delivered in arrival order on a bounded channel
// (MuxOptions.Buffer, default 128; the channel carries *Frame, so its buffer costs ~1 KB a
// subscription up front, where a channel of Frame values cost ~24 KB) and a byte budget (MuxOptions.BufferBytes, default 8 MiB; consumers Release each
// frame they take). The reader goroutine never blocks on a consumer: if the channel is full, or
// the frame would overrun the budget, when a frame arrives, that subscription alone ends with errWSOverflow (frames
// already buffered stay readable; the mux sends rpc.subscribe.close in the background) and the
// engine reopens from its checkpoint. We chose terminate-on-overflow over blocking (one slow
// tenant would stall every tenant on the socket) and over dropping frames (a silent hole in a
// feed). With enbox flow control (MaxInFlight, default 32 < Buffer) a consumer that acks only
// what it handled cannot overflow; on web5 (no flow control) it takes a burst of more than
// Buffer events that the consumer does not keep up with.
//
// Frames is closed exactly once; Err then says why (errors.Is / the *Error kind):
//   - errWSOverflow (Transient): this consumer fell behind;
//   - ErrDisconnected (Transient): the socket was lost, every subscription on it ends;
//   - an *Error wrapping *wsSubscriptionError: enbox terminal error frame (Transient, or
//     Unauthorized for MessagesSubscribeDeliveryAuthorizationFailed);
//   - an *Error with RPCCode: a JSON-RPC error on the subscription id;
//   - errWSClosed (Close) or errWSMuxClosed (mux.Close): the client's own doing.
//
// Liveness: server pings are answered with pongs. The client pings every PingInterval (20 s)
// and declares the socket dead when nothing (frame, pong, ping) arrived for ReadTimeout (40 s):
// this read deadline is checked on the injected clock, so tests drive it with a fake clock.
// Socket I/O deadlines for writes use wall time (they bound kernel I/O, not protocol timing).
//
// Frames with an id the mux does not know (e.g. the replies to rpc.ack, which carry random ids,
// or frames for a subscription that just ended) and enbox frame types it does not know are
// counted (Stats().UnknownFrames) and ignored; frames that are not JSON-RPC responses with a
// string id are counted (GarbageFrames) and ignored. A frame that names a live subscription but
// cannot be read (an event without a message, a non-object result) ends that subscription with
// a Transient *Error wrapping ErrMalformedFrame: skipping it could leave a silent hole in the feed,
// while reopening from the checkpoint loses nothing. Nothing a server sends can panic the
// reader (FuzzWSFrame).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Defaults of MuxOptions.
const (
	wsDefaultBuffer       = 128
	wsDefaultPingInterval = 20 * time.Second
	wsDefaultWriteTimeout = 10 * time.Second
	wsDefaultCallTimeout  = 30 * time.Second
	wsDefaultCloseTimeout = 5 * time.Second
	// wsDefaultMaxFrame: an event carries a signed message (a few KB), its initial write and at
	// most 30,000 bytes of inline data (40 KB as base64). 1 MiB is ~10× the largest real frame;
	// the old 64 MiB let one server make the reader allocate 64 MiB per frame.
	wsDefaultMaxFrame = 1 << 20
	// wsDefaultBufferBytes bounds what one subscription may hold unconsumed (Buffer bounds the
	// frame count): 8 MiB is 128 frames of 64 KB, or 8 maximal frames. 128 × 64 MiB was possible.
	wsDefaultBufferBytes = 8 << 20
	wsBackoffBase        = 1 * time.Second
	wsBackoffMax         = 30 * time.Second
	wsBackoffJitter      = 0.2
)

// MuxOptions configures a Mux. The zero value is usable.
type MuxOptions struct {
	// Clock drives backoff, pings, the read deadline and call timeouts. Default: real clock.
	Clock clock.WithTicker
	// Logger gets connection-level events (dial, loss, garbage). Never message contents.
	Logger logr.Logger
	// Dialer defaults to a copy of websocket.DefaultDialer. Header is sent with the upgrade.
	Dialer *websocket.Dialer
	Header http.Header
	// Buffer is the per-subscription frame buffer (default 128; > enbox's window of 32).
	Buffer int
	// BufferBytes is the per-subscription byte budget of frames delivered but not yet consumed
	// (default 8 MiB); going over it ends that subscription like a full Buffer does.
	BufferBytes int64
	// MaxInFlight is the server's unacknowledged-event window (/info.maxInFlight). 0 means the
	// server has no flow control and Ack is a no-op.
	MaxInFlight int
	// PingInterval (default 20 s) and ReadTimeout (default 2×PingInterval): see the file comment.
	PingInterval time.Duration
	ReadTimeout  time.Duration
	// WriteTimeout bounds one frame write (default 10 s).
	WriteTimeout time.Duration
	// CallTimeout bounds the wait for a subscribe reply when ctx has no earlier deadline
	// (default 30 s; web5 never answers some malformed requests). CloseTimeout bounds Close's
	// wait for the rpc.subscribe.close reply (default 5 s).
	CallTimeout  time.Duration
	CloseTimeout time.Duration
	// MaxFrameBytes caps one inbound frame (default 1 MiB); a bigger frame ends the socket (and
	// so its subscriptions, which reopen from their checkpoints) with an error naming the bound.
	MaxFrameBytes int64
	// Jitter returns a number in [0,1) used to spread backoff delays. Default math/rand/v2.
	Jitter func() float64
	// OnDialWait, when set, sees each dial's backoff wait once its timer is armed on Clock (so a
	// test on a fake clock can step past it). Nil in production.
	OnDialWait func(time.Duration)
}

func (o MuxOptions) withDefaults() MuxOptions {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.Dialer == nil {
		d := *websocket.DefaultDialer
		o.Dialer = &d
	}
	if o.Buffer <= 0 {
		o.Buffer = wsDefaultBuffer
	}
	if o.PingInterval <= 0 {
		o.PingInterval = wsDefaultPingInterval
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 2 * o.PingInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = wsDefaultWriteTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = wsDefaultCallTimeout
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = wsDefaultCloseTimeout
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = wsDefaultBufferBytes
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = wsDefaultMaxFrame
	}
	if o.Jitter == nil {
		o.Jitter = mrand.Float64
	}
	return o
}

// wsStats are cumulative counters of one mux.
type wsStats struct {
	Dials, DialFailures, ConnectionsLost int64
	GarbageFrames, UnknownFrames         int64
	Overflows                            int64
	PingsSent                            int64
	ActiveSubscriptions                  int
}

type wsCounters struct {
	dials, dialFailures, lost, garbage, unknown, overflows, pings atomic.Int64
}

// Mux owns the one socket to one endpoint.
type Mux struct {
	url  string // ws:// or wss://
	opts MuxOptions
	log  logr.Logger
	n    wsCounters

	mu       sync.Mutex
	conn     *wsConn
	dialing  *wsDialAttempt
	failures int       // consecutive losses/dial failures; sets the next backoff
	retryAt  time.Time // no dial before this (clock time)
	closed   bool
}

type wsDialAttempt struct {
	done chan struct{}
	err  error // the dial's error; nil if it succeeded or was abandoned (ctx ended)
}

// NewMux prepares a mux for endpoint (an http(s) or ws(s) base URL). It does not dial.
func NewMux(endpoint string, opts MuxOptions) (*Mux, error) {
	u, err := wsURL(endpoint)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	shown := u
	if p, err := url.Parse(u); err == nil {
		shown = p.Redacted() // never log credentials embedded in the URL
	}
	return &Mux{url: u, opts: opts, log: opts.Logger.WithValues("endpoint", shown)}, nil
}

// wsURL maps http→ws and https→wss (ws and wss pass through).
func wsURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", errors.New("endpoint is not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("endpoint %q: scheme must be http, https, ws or wss", RedactURL(endpoint))
	}
	if u.Host == "" {
		return "", fmt.Errorf("endpoint %q has no host", RedactURL(endpoint))
	}
	return u.String(), nil
}

// URL is the ws(s) URL the mux dials.
func (m *Mux) URL() string { return m.url }

func (m *Mux) redactedURL() string {
	if p, err := url.Parse(m.url); err == nil {
		return p.Redacted()
	}
	return "the endpoint"
}

// Stats returns the counters.
func (m *Mux) Stats() wsStats {
	s := wsStats{
		Dials: m.n.dials.Load(), DialFailures: m.n.dialFailures.Load(), ConnectionsLost: m.n.lost.Load(),
		GarbageFrames: m.n.garbage.Load(), UnknownFrames: m.n.unknown.Load(),
		Overflows: m.n.overflows.Load(), PingsSent: m.n.pings.Load(),
	}
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c != nil {
		s.ActiveSubscriptions = c.subscriptionCount()
	}
	return s
}

// Close ends every subscription with errWSMuxClosed and closes the socket. Later Subscribe calls
// fail with errWSMuxClosed.
func (m *Mux) Close() error {
	m.mu.Lock()
	m.closed = true
	c := m.conn
	m.conn = nil
	m.mu.Unlock()
	if c != nil {
		c.fail(errWSMuxClosed)
	}
	return nil
}

// Subscribe sends rpc.subscribe.dwn.processMessage with params ({target, message}) and waits for
// the reply (ctx, at most CallTimeout). See the file comment for the outcomes.
func (m *Mux) Subscribe(ctx context.Context, params json.RawMessage) (*Subscription, json.RawMessage, error) {
	if !json.Valid(params) {
		return nil, nil, &dwn.Error{Op: wsMethodSubscribe, Kind: dwn.Permanent, Detail: `params are not valid JSON; want {"target": <tenant DID>, "message": <signed MessagesSubscribe>}`}
	}
	c, err := m.connection(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.subscribe(ctx, params)
}

// connection returns the live socket, dialling one (after the backoff) if there is none.
func (m *Mux) connection(ctx context.Context) (*wsConn, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, errWSMuxClosed
		}
		if c := m.conn; c != nil {
			if !c.isDead() {
				m.mu.Unlock()
				return c, nil
			}
			m.forgetLocked(c, c.deadErr()) // its reader has not reported yet: same backoff
		}
		if d := m.dialing; d != nil {
			m.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil {
					return nil, d.err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		d := &wsDialAttempt{done: make(chan struct{})}
		m.dialing = d
		wait := m.retryAt.Sub(m.opts.Clock.Now())
		m.mu.Unlock()

		c, err := m.dialAfter(ctx, wait)

		m.mu.Lock()
		m.dialing = nil
		switch {
		case err != nil && ctx.Err() != nil:
			// Abandoned by this caller, not a server failure: leave the backoff alone and let
			// a waiter with a live context try.
			err = ctx.Err()
		case err != nil:
			m.failures++
			m.retryAt = m.opts.Clock.Now().Add(m.backoff(m.failures))
			m.n.dialFailures.Add(1)
			d.err = err
		case m.closed:
			err = errWSMuxClosed
			d.err = err
		default:
			m.conn = c
		}
		m.mu.Unlock()
		close(d.done)
		if err != nil {
			if c != nil {
				c.fail(err)
			}
			return nil, err
		}
		c.start()
		return c, nil
	}
}

// dialAfter waits (on the clock) until the backoff has passed, then dials once.
func (m *Mux) dialAfter(ctx context.Context, wait time.Duration) (*wsConn, error) {
	if wait > 0 {
		t := m.opts.Clock.NewTimer(wait)
		if m.opts.OnDialWait != nil {
			m.opts.OnDialWait(wait)
		}
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	m.n.dials.Add(1)
	ws, resp, err := m.opts.Dialer.DialContext(ctx, m.url, m.opts.Header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, wsLost("dial %s: HTTP %d: %v", m.redactedURL(), resp.StatusCode, err)
		}
		return nil, wsLost("dial %s: %v", m.redactedURL(), err)
	}
	m.log.V(1).Info("websocket connected")
	return newWSConn(m, ws), nil
}

// connectionLost is called once per socket when it dies; it schedules the next dial.
func (m *Mux) connectionLost(c *wsConn, cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(c, cause)
}

// forgetLocked drops c as the current socket (once) and sets the backoff before the next dial.
func (m *Mux) forgetLocked(c *wsConn, cause error) {
	if m.conn != c {
		return
	}
	m.conn = nil
	m.n.lost.Add(1)
	now := m.opts.Clock.Now()
	if now.Sub(c.openedAt) >= wsBackoffMax {
		m.failures = 0 // it was stable: start the schedule over
	}
	m.failures++
	delay := m.backoff(m.failures)
	m.retryAt = now.Add(delay)
	m.log.Info("websocket lost; next dial not before backoff", "error", cause.Error(), "backoff", delay.String())
}

// backoff is 1 s × 2^(n-1), capped at 30 s, with ±20 % jitter (never above the cap).
func (m *Mux) backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(wsBackoffBase) * math.Pow(2, float64(min(n-1, 16)))
	d = min(d, float64(wsBackoffMax))
	d *= 1 + wsBackoffJitter*(2*m.opts.Jitter()-1)
	return time.Duration(min(d, float64(wsBackoffMax)))
}

// newWSID returns a random UUIDv4-shaped id (request and subscription ids).
func newWSID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
