package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// BenchmarkDecodeMessagesReadResponse decodes one MessagesRead answer (JSON-RPC envelope,
// reply, entry) as it arrives in a dwn-response header: the per-message decoding cost of a
// copy.
func BenchmarkDecodeMessagesReadResponse(b *testing.B) {
	header := fmt.Sprintf(`{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entry":{"messageCid":"bafyx","message":%s}}}}`, benchMessage(b))
	now := time.Now()
	b.SetBytes(int64(len(header)))
	b.ReportAllocs()
	for b.Loop() {
		result, err := decodeRPCResult("MessagesRead", httpReply{Status: 200, DWNResponse: header}, now)
		if err != nil {
			b.Fatal(err)
		}
		reply, err := decodeDWNReply("MessagesRead", result)
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Entry struct{ Message json.RawMessage } `json:"entry"`
		}
		if err := json.Unmarshal(reply.Raw, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeWeb5Listing10k decodes a web5 MessagesQuery answer listing 10,000 CIDs
// (≈ 620 KB), the size of one inventory of a 10k-record tenant, down to the DWN reply (the
// page itself is decoded by package dialect).
func BenchmarkDecodeWeb5Listing10k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entries":[`)
	for i := 0; i < 10000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"bafyrei%052d"`, i)
	}
	sb.WriteString(`],"cursor":{"messageCid":"bafyreix","value":10001}}}}`)
	body := []byte(sb.String())
	now := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		result, err := decodeRPCResult("MessagesQuery", httpReply{Status: 200, Body: body}, now)
		if err != nil {
			b.Fatal(err)
		}
		reply, err := decodeDWNReply("MessagesQuery", result)
		if err != nil {
			b.Fatal(err)
		}
		if len(reply.Raw) < len(body)/2 {
			b.Fatalf("reply of %d bytes lost its entries", len(reply.Raw))
		}
	}
}

// benchMessage is a signed RecordsWrite of the usual size (~1.5 KB) for decoding benchmarks.
func benchMessage(b testing.TB) json.RawMessage {
	s, _, err := msg.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	now := msg.FormatTimestamp(time.Now())
	m, err := s.SignDescriptor(map[string]any{
		"interface": "Records", "method": "Write", "protocol": "https://example.org/protocols/bench",
		"protocolPath": "note", "schema": "https://example.org/schemas/note", "dataFormat": "application/json",
		"dataCid": msg.RawDataCID(make([]byte, 81)), "dataSize": 81, "dateCreated": now, "messageTimestamp": now,
	})
	if err != nil {
		b.Fatal(err)
	}
	return m
}
