package dwntest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
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

// BenchmarkApply measures dwn.applyReplicatedMessage of small records over HTTP.
func BenchmarkApply(b *testing.B) {
	n, err := Launch(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	alice, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	ws := make([]Written, b.N)
	for i := range ws {
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
	n, err := Launch(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	alice, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
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
