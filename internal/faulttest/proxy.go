package faulttest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a reverse proxy on 127.0.0.1 in front of one DWN server. It forwards everything
// (JSON-RPC posts, data streams and WebSocket upgrades) and counts the message writes that pass
// through it, per message CID.
type Proxy struct {
	URL string // http://127.0.0.1:PORT, to use as the server's endpoint

	mu     sync.Mutex
	total  int            // writes forwarded
	writes map[string]int // message CID → times written
}

// StartProxy starts a counting proxy in front of target (a base URL) and closes it when the test
// ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("proxy target %q: %v", target, err)
	}
	p := &Proxy{writes: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) },
		// A killed client or a stopped server ends exchanges midway: that is the test, not
		// news; the client sees a 502 as from any gateway.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cid, ok := WrittenCID(r); ok {
			p.mu.Lock()
			p.total++
			p.writes[cid]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Writes is how many writes the proxy forwarded, and to how many distinct messages.
func (p *Proxy) Writes() (total, distinct int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total, len(p.writes)
}

// WritesOf is how many times message cid was written through the proxy.
func (p *Proxy) WritesOf(cid string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes[cid]
}

// MostWritten is the largest number of times one message was written, and that message.
func (p *Proxy) MostWritten() (cid string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, k := range p.writes {
		if k > n {
			cid, n = c, k
		}
	}
	return cid, n
}
