package dwntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

// Mode selects which generation of the enbox wire protocol the node speaks.
type Mode string

const (
	// ModeEnbox is a current enbox server: durable feed (MessagesQuery with ProgressTokens,
	// drained, fingerprint), MessagesSubscribe with replay/eose and rpc.ack flow control,
	// dwn.applyReplicatedMessage, body-v1 framing.
	ModeEnbox Mode = "enbox"
	// ModeEnboxSMT is a seed-era enbox server (the one @enbox/agent 0.5.15 talked to):
	// MessagesSync over sparse Merkle trees, MessagesSubscribe with cursor replay/eose/410 but no
	// flow control, MessagesRead, and no durable feed. See doc.go for the exact surface.
	ModeEnboxSMT Mode = "enbox-smt"
)

// DefaultMaxInFlight is the enbox server's default per-subscription window.
const DefaultMaxInFlight = 32

// Options configures a node. The zero value is an enbox-mode node on the real clock.
type Options struct {
	Mode Mode
	// Clock drives every timer of the node (subscription buffer timeout, refuse windows,
	// latency, grant expiry). Nil = real clock.
	Clock clock.Clock
	// MaxInFlight is the subscription window advertised in /info (enbox mode). 0 = 32.
	MaxInFlight int
	// BufferLimit is how many frames a subscription may have waiting behind a full window
	// before it is closed with SubscriptionBufferOverflow. 0 = 1000.
	BufferLimit int
	// BufferTimeout is how long a subscription may wait behind a full window without ack
	// progress before it is closed with SubscriptionBufferTimeout. 0 = 30 s.
	BufferTimeout time.Duration
	// PingInterval, when set, makes the node ping every WebSocket at this interval and cut a
	// socket that has not answered with a pong since the previous ping (the enbox server does
	// this every 30 s). 0 = off, so fake clocks see no heartbeat timers unless a test asks.
	PingInterval time.Duration
	// StrictAck makes rpc.ack refuse (-32602) a cursor without messageCid, as one stored
	// enbox server version does; the default accepts any token, like the flow controller.
	StrictAck bool
}

// Node is one in-process enbox DWN server.
type Node struct {
	opts     Options
	clock    clock.Clock
	listener *gateListener
	server   *http.Server
	url      string

	mu      sync.Mutex // guards everything below
	epoch   string
	tenants map[string]*tenant
	changed chan struct{} // closed and replaced on every store change (wakes subscriptions)
	conns   map[*wsConn]struct{}

	faults  faultState
	counter requestCounter

	closed    chan struct{} // closed by Close: releases requests held by injected latency
	closeOnce sync.Once
}

// Start launches a node on a random 127.0.0.1 port and stops it when the test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	n, err := Launch(opts)
	if err != nil {
		t.Fatalf("dwntest: start node: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// Launch starts a node outside a test (benchmarks, hack tools). The caller must Close it.
func Launch(opts Options) (*Node, error) {
	switch opts.Mode {
	case "":
		opts.Mode = ModeEnbox
	case ModeEnbox, ModeEnboxSMT:
	default:
		return nil, errors.New(`dwntest: Options.Mode must be "enbox" or "enbox-smt"`)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.BufferLimit <= 0 {
		opts.BufferLimit = 1000
	}
	if opts.BufferTimeout <= 0 {
		opts.BufferTimeout = 30 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &Node{
		opts:    opts,
		clock:   opts.Clock,
		epoch:   newEpoch(),
		tenants: map[string]*tenant{},
		changed: make(chan struct{}),
		conns:   map[*wsConn]struct{}{},
		closed:  make(chan struct{}),
	}
	n.listener = newGateListener(ln, n.clock)
	n.url = "http://" + ln.Addr().String()
	n.server = &http.Server{Handler: n, ReadHeaderTimeout: 10 * time.Second, ConnState: n.listener.track}
	go func() { _ = n.server.Serve(n.listener) }()
	return n, nil
}

// URL is the node's base URL, e.g. http://127.0.0.1:41234.
func (n *Node) URL() string { return n.url }

// Mode is the protocol generation the node speaks.
func (n *Node) Mode() Mode { return n.opts.Mode }

// Epoch is the store-wide epoch carried by every token the node issues.
func (n *Node) Epoch() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

// Close stops the node: the listener, every HTTP connection and every WebSocket.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		close(n.closed)
		n.DropWebSockets()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := n.server.Shutdown(ctx); err != nil {
			_ = n.server.Close()
		}
		n.mu.Lock()
		n.wakeLocked()
		n.mu.Unlock()
	})
}

// wakeLocked tells every subscription pump that the store changed.
func (n *Node) wakeLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

func newEpoch() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "E" + hex.EncodeToString(b[:])
}
