package e2e

import (
	"net"
	"sync"
	"testing"
)

// cutProxy is a 127.0.0.1 TCP proxy in front of a server: the engine talks to the server
// through it (HTTP and WebSocket alike), and the test can hold every byte in flight (Freeze)
// and then cut every open connection without a close frame (Cut), as a crashed load balancer
// would. New connections are accepted and forwarded as usual after a cut.
type cutProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	thawed   chan struct{} // closed while bytes flow; a fresh one while frozen
	cuts     int
	accepted int
}

// startCutProxy listens on a free 127.0.0.1 port and forwards to target (host:port) until the
// test ends.
func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, thawed: make(chan struct{})}
	close(p.thawed)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
	})
	return p
}

// URL is the proxy's http:// address.
func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		p.mu.Unlock()
		go p.forward(client)
	}
}

func (p *cutProxy) forward(client net.Conn) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.track(client, upstream)
	go p.pipe(upstream, client)
	p.pipe(client, upstream)
}

// track registers both ends of a forwarded connection, for Cut.
func (p *cutProxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
}

// pipe copies src to dst, waiting while the proxy is frozen: what it read then is held and
// dropped if the connection is cut before it thaws.
func (p *cutProxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thawed := p.thawed
			cuts := p.cuts
			p.mu.Unlock()
			<-thawed
			p.mu.Lock()
			cut := p.cuts != cuts
			p.mu.Unlock()
			if cut {
				return // the held bytes die with the connection
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut: the deferred closes end the other direction too
		}
	}
}

// Accepted is how many connections the proxy has accepted.
func (p *cutProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Freeze holds every byte read from now on (both ways, every connection) until Cut.
func (p *cutProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default:
	}
}

// Cut closes every open connection (held bytes are dropped) and lets bytes flow again.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.cuts++
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}
