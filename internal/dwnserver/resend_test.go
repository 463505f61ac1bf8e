package dwnserver

import (
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// A write whose answer is lost with its connection (the server stored it, the client saw
// "fetch failed") is sent again and counts as done: the server answers the second attempt 409,
// which the client takes as stored. On a loaded machine one such failure used to end a
// 10,000-message seed.
func TestClientSendsAgainWhenTheConnectionFailsBeforeTheAnswer(t *testing.T) {
	s := Start(t, 1)[0]
	c := NewClient(t)
	id, err := c.NewTenant()
	noErr(t, err)
	proxy := startAnswerDroppingProxy(t, s.Port)

	w, err := c.Write(proxy.url(), id, WriteOpts{Data: []byte(`{"n":1}`), DataFormat: "application/json"})
	if err != nil {
		t.Fatalf("write through a connection that lost the answer: %v", err)
	}
	if n := proxy.connections.Load(); n < 2 {
		t.Fatalf("the proxy saw %d connection(s), want the write sent again on a new one", n)
	}
	cids, err := c.Query(s.URL, id)
	noErr(t, err)
	if !slices.Equal(cids, []string{w.CID}) {
		t.Fatalf("server lists %v, want exactly the write %s", cids, w.CID)
	}
}

// answerDroppingProxy forwards TCP to a server; on its first connection it forwards the
// request and reads the server's answer, then closes the client's side without relaying it.
type answerDroppingProxy struct {
	ln          net.Listener
	connections atomic.Int64
}

func startAnswerDroppingProxy(t *testing.T, port int) *answerDroppingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err)
	p := &answerDroppingProxy{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			first := p.connections.Add(1) == 1
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(client, target, first)
			}()
		}
	}()
	return p
}

func (p *answerDroppingProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *answerDroppingProxy) serve(client net.Conn, target string, dropAnswer bool) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client) }()
	if dropAnswer {
		// The first bytes of the answer mean the server processed the request: lose them.
		buf := make([]byte, 1)
		_, _ = server.Read(buf)
		return
	}
	_, _ = io.Copy(client, server)
}
