package dwntest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkStart measures a node from nothing to answering GET /health, then closed.
func BenchmarkStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		n, err := Launch(Options{})
		if err != nil {
			b.Fatal(err)
		}
		resp, err := http.Get(n.URL() + "/health")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		n.Close()
	}
}

// benchNodeAndTenant launches a node (closed when the benchmark ends) and an identity to write as.
func benchNodeAndTenant(b *testing.B) (*Node, *Identity) {
	b.Helper()
	n, err := Launch(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Close)
	alice, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	return n, alice
}

// BenchmarkApply measures dwn.applyReplicatedMessage of small records over HTTP.
func BenchmarkApply(b *testing.B) {
	n, alice := benchNodeAndTenant(b)
	ws := make([]Written, b.N)
	for i := range ws {
		var err error
		if ws[i], err = alice.Write(WriteOpts{Data: []byte(fmt.Sprintf("record %d", i))}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range ws {
		resp, err := tryCall(n.URL(), "dwn.applyReplicatedMessage", alice.DID, ws[i].Message, ws[i].Data)
		if err != nil || resp.HTTPStatus != 200 {
			b.Fatalf("apply: %v %d", err, resp.HTTPStatus)
		}
	}
}

// BenchmarkFeedPage measures one 100-entry MessagesQuery page of a 3,000-message tenant.
func BenchmarkFeedPage(b *testing.B) {
	n, alice := benchNodeAndTenant(b)
	for i := 0; i < 3000; i++ {
		w, err := alice.Write(WriteOpts{Data: []byte(fmt.Sprintf("record %d", i))})
		if err != nil {
			b.Fatal(err)
		}
		if r := n.Write(alice.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			b.Fatalf("seed: %+v", r)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg, err := alice.Sign(map[string]any{"interface": "Messages", "method": "Query", "filters": []any{},
			"limit": 100, "cursor": n.Token(alice.DID, uint64(i%2900))})
		if err != nil {
			b.Fatal(err)
		}
		resp, err := tryCall(n.URL(), "dwn.processMessage", alice.DID, json.RawMessage(msg), nil)
		if err != nil || resp.HTTPStatus != 200 {
			b.Fatalf("query: %v %d", err, resp.HTTPStatus)
		}
	}
}

// BenchmarkSubscribeDelivery measures replay delivery over one WebSocket with acks (window
// 32): ns per delivered event.
func BenchmarkSubscribeDelivery(b *testing.B) {
	n, alice := benchNodeAndTenant(b)
	for i := 0; i < b.N; i++ {
		w, err := alice.Write(WriteOpts{Data: []byte(fmt.Sprintf("event %d", i))})
		if err != nil {
			b.Fatal(err)
		}
		n.Write(alice.DID, w.Message, w.Data)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+n.URL()[4:], nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	msg, err := alice.Sign(map[string]any{"interface": "Messages", "method": "Subscribe", "filters": []any{},
		"cursor": n.Token(alice.DID, 0)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": "r", "method": "rpc.subscribe.dwn.processMessage",
		"params": map[string]any{"target": alice.DID, "message": msg}, "subscription": map[string]any{"id": "s"}}); err != nil {
		b.Fatal(err)
	}
	delivered := 0
	for delivered < b.N {
		var f struct {
			ID     string `json:"id"`
			Result struct {
				Subscription *struct {
					Type   string          `json:"type"`
					Cursor json.RawMessage `json:"cursor"`
				} `json:"subscription"`
			} `json:"result"`
		}
		if err := conn.ReadJSON(&f); err != nil {
			b.Fatal(err)
		}
		if f.ID != "s" || f.Result.Subscription == nil || f.Result.Subscription.Type != "event" {
			continue
		}
		delivered++
		if delivered%16 == 0 || delivered == b.N {
			if err := conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "method": "rpc.ack",
				"params": map[string]any{"cursor": f.Result.Subscription.Cursor}, "subscription": map[string]any{"id": "s"}}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
