package dwntest

import (
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// gateListener wraps the node's listener so tests can make the node unreachable without
// giving up its port: while the gate is shut every accepted connection is closed at once
// (clients see a reset or EOF, as with a crashed server behind a load balancer), and shutting
// it also closes every open connection, keep-alive ones included.
type gateListener struct {
	net.Listener
	clock clock.PassiveClock

	mu       sync.Mutex
	refusing bool
	until    time.Time // refuse while clock.Now() is before it
	open     map[net.Conn]struct{}
	refused  int
}

func newGateListener(ln net.Listener, c clock.PassiveClock) *gateListener {
	return &gateListener{Listener: ln, clock: c, open: map[net.Conn]struct{}{}}
}

func (g *gateListener) Accept() (net.Conn, error) {
	for {
		conn, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !g.isShut() {
			return conn, nil
		}
		g.mu.Lock()
		g.refused++
		g.mu.Unlock()
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // RST rather than FIN: the client sees "connection reset"
		}
		_ = conn.Close()
	}
}

func (g *gateListener) isShut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refusing || g.clock.Now().Before(g.until)
}

// shut closes the gate (for d, or until reopened when d == 0) and drops open connections.
func (g *gateListener) shut(d time.Duration) {
	g.mu.Lock()
	if d > 0 {
		g.until = g.clock.Now().Add(d)
	} else {
		g.refusing = true
	}
	conns := make([]net.Conn, 0, len(g.open))
	for c := range g.open {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (g *gateListener) reopen() {
	g.mu.Lock()
	g.refusing = false
	g.until = time.Time{}
	g.mu.Unlock()
}

func (g *gateListener) refusedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// track is the http.Server ConnState hook: it remembers live connections (hijacked ones are
// WebSockets, tracked by the node itself).
func (g *gateListener) track(c net.Conn, state http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch state {
	case http.StateNew:
		g.open[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(g.open, c)
	}
}
