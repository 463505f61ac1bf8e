package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// FuzzDecodeRPCResponse feeds arbitrary HTTP answers (status, dwn-response header, Retry-After,
// body) through the decoding path of every call. It must never panic, and every failure must
// be a classified *Error or *GapError.
func FuzzDecodeRPCResponse(f *testing.F) {
	seeds := []struct {
		status        int
		header, retry string
		body          string
	}{
		{200, "", "", `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":202,"detail":"Accepted"}}}}`},
		{200, `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entry":{"messageCid":"bafy","message":{}}}}}`, "", "rawdata"},
		{200, "", "", `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":410},"error":{"code":"ProgressGap","reason":"token_too_old","latestAvailable":{"streamId":"a","epoch":"b","position":"1"}}}}}`},
		{200, "", "", `{"jsonrpc":"2.0","id":"1","result":{"result":{"kind":"Incomplete","missing":[{"type":"Protocol","protocol":"p"}]}}}`},
		{200, "", "", `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":200,"detail":"Accepted"}}}`},
		{200, "", "", `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200},"entries":["bafy1","bafy2"],"cursor":{"messageCid":"bafy2","value":31}}}}`},
		{500, "", "", `{"jsonrpc":"2.0","id":"1","error":{"code":-32602,"message":"bad"}}`},
		{429, "", "3", `{"jsonrpc":"2.0","id":"1","error":{"code":-50429,"message":"slow","data":{"retryAfterSec":1e308}}}`},
		{429, "", "Wed, 21 Oct 2015 07:28:00 GMT", `{"error":"Rate limit exceeded"}`},
		{400, "", "", ``},
		{200, "\xe9\xff", "", ``},
		{200, "", "", `{"result":null}`},
		{200, "", "", `{"jsonrpc":"2.0","result":{"reply":{"status":{"code":"x"}}}}`},
	}
	for _, s := range seeds {
		f.Add(s.status, s.header, s.retry, []byte(s.body))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, header, retry string, body []byte) {
		result, err := decodeRPCResult("fuzz", httpReply{Status: status, DWNResponse: header, RetryAfter: retry, Body: body}, now)
		if err != nil {
			if _, ok := err.(*dwn.Error); !ok {
				t.Fatalf("unclassified error %T", err)
			}
			if dwn.RetryAfter(err) < 0 {
				t.Fatal("negative retry-after")
			}
			return
		}
		if reply, err := decodeDWNReply("fuzz", result); err == nil {
			_ = reply.StatusError("fuzz")
		}
		_ = json.Valid(result)
	})
}
