package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// seenRequest is what a fake server received, decoded from either framing.
type seenRequest struct {
	Envelope map[string]any
	Data     []byte
	HasData  bool
}

// decodeTestRequest reads a request the way a DWN server does.
func decodeTestRequest(t *testing.T, r *http.Request) seenRequest {
	t.Helper()
	body, _ := io.ReadAll(r.Body)
	var s seenRequest
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/vnd.enbox.dwn-rpc") {
		if len(body) < 5 {
			t.Errorf("body-v1 body too short")
			return s
		}
		n := binary.BigEndian.Uint32(body[1:5])
		if err := json.Unmarshal(body[5:5+n], &s.Envelope); err != nil {
			t.Errorf("body-v1 envelope: %v", err)
		}
		s.HasData = body[0]&1 == 1
		s.Data = body[5+n:]
		return s
	}
	hdr := r.Header.Get("dwn-request")
	for _, c := range []byte(hdr) {
		if c >= 0x80 {
			t.Errorf("dwn-request header carries a raw non-ASCII byte")
		}
	}
	if err := json.Unmarshal([]byte(hdr), &s.Envelope); err != nil {
		t.Errorf("dwn-request: %v", err)
	}
	s.Data, s.HasData = body, r.ContentLength > 0 || len(r.TransferEncoding) > 0
	return s
}

func testRPC(url string, bodyV1 bool, clk clock.Clock) *RPC {
	return &RPC{Endpoint: url, Shown: url, HTTP: NewHTTPClient(defaultEgress()), Clock: clk, BodyV1: bodyV1, Retries: DefaultRetries}
}

func TestRPCFramings(t *testing.T) {
	for _, bodyV1 := range []bool{false, true} {
		name := map[bool]string{false: "legacy header", true: "body-v1"}[bodyV1]
		t.Run(name, func(t *testing.T) {
			var got seenRequest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = decodeTestRequest(t, r)
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"x","result":{"reply":{"status":{"code":202,"detail":"Accepted"}}}}`))
			}))
			defer srv.Close()
			c := testRPC(srv.URL, bodyV1, clocktesting.NewFakeClock(time.Now()))
			msg := json.RawMessage(`{"descriptor":{"interface":"Records","method":"Write","note":"héllo 🌍"}}`)
			reply, body, err := c.ProcessMessage(context.Background(), "RecordsWrite", "did:jwk:t", msg, strings.NewReader("payload"), 7)
			if err != nil || body != nil {
				t.Fatalf("err %v body %v", err, body)
			}
			if reply.Status.Code != 202 {
				t.Fatalf("status %d", reply.Status.Code)
			}
			if got.Envelope["method"] != "dwn.processMessage" || !got.HasData || string(got.Data) != "payload" {
				t.Fatalf("server saw %+v", got)
			}
			params := got.Envelope["params"].(map[string]any)
			note := params["message"].(map[string]any)["descriptor"].(map[string]any)["note"]
			if params["target"] != "did:jwk:t" || note != "héllo 🌍" {
				t.Fatalf("params changed in transit: %v", params)
			}
			// Without data: no body at all (legacy) / flag clear (body-v1).
			if _, _, err := c.ProcessMessage(context.Background(), "MessagesQuery", "did:jwk:t", msg, nil, 0); err != nil {
				t.Fatal(err)
			}
			if got.HasData || len(got.Data) != 0 {
				t.Fatalf("data sent for a data-less call: %+v", got)
			}
		})
	}
}

func TestRPCStreamsDWNResponseBody(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 5000) // 50 KB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("dwn-response", `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entry":{"messageCid":"bafyx","message":{"descriptor":{"dataSize":50000}}}}}}`)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	c := testRPC(srv.URL, false, clocktesting.NewFakeClock(time.Now()))
	reply, body, err := c.ProcessMessage(context.Background(), "MessagesRead", "did:jwk:t", json.RawMessage(`{}`), nil, 0)
	if err != nil || body == nil {
		t.Fatalf("err %v body %v", err, body)
	}
	got, err := io.ReadAll(NewExactReader(body, int64(len(data))))
	body.Close()
	if err != nil || !bytes.Equal(got, data) || reply.Status.Code != 200 {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
}

func TestExactReader(t *testing.T) {
	short := NewExactReader(io.NopCloser(strings.NewReader("abc")), 5)
	if _, err := io.ReadAll(short); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short stream: %v", err)
	}
	long := NewExactReader(io.NopCloser(strings.NewReader("abcdef")), 3)
	if _, err := io.ReadAll(long); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("long stream: %v", err)
	}
	exact := NewExactReader(io.NopCloser(strings.NewReader("abc")), 3)
	if b, err := io.ReadAll(exact); err != nil || string(b) != "abc" {
		t.Fatalf("exact: %q %v", b, err)
	}
}

func TestRPCErrorMapping(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		kind       dwn.ErrorKind
		rpcCode    int
		retryAfter time.Duration
	}{
		{"invalid params is permanent despite 500", 500, `{"jsonrpc":"2.0","id":"1","error":{"code":-32602,"message":"RecordsWrite is not supported via ws"}}`, nil, dwn.Permanent, -32602, 0},
		{"internal error is transient", 500, `{"jsonrpc":"2.0","id":"1","error":{"code":-32603,"message":"boom"}}`, nil, dwn.Transient, -32603, 0},
		{"missing dwn-request", 400, `{"jsonrpc":"2.0","id":"1","error":{"code":-50400,"message":"request payload required."}}`, nil, dwn.Permanent, -50400, 0},
		{"method not found", 500, `{"jsonrpc":"2.0","id":"1","error":{"code":-32601,"message":"not found"}}`, nil, dwn.Unsupported, -32601, 0},
		{"rate limited json-rpc", 429, `{"jsonrpc":"2.0","id":"1","error":{"code":-50429,"message":"slow down","data":{"retryAfterSec":3}}}`, map[string]string{"Retry-After": "3"}, dwn.Transient, -50429, 3 * time.Second},
		{"rate limited plain", 429, `{"error":"Rate limit exceeded"}`, map[string]string{"Retry-After": "7"}, dwn.Transient, 0, 7 * time.Second},
		{"header too large", 431, ``, nil, dwn.Permanent, 0, 0},
		{"plain 500", 500, `Internal Server Error`, nil, dwn.Transient, 0, 0},
		{"local node 401", 401, `{"error":"Unauthorized"}`, nil, dwn.Unauthorized, 0, 0},
		{"garbage 200", 200, `<html>`, nil, dwn.Transient, 0, 0},
		{"quota", 500, `{"jsonrpc":"2.0","id":"1","error":{"code":-32600,"message":"q","data":{"code":"TenantStorageQuotaExceeded"}}}`, nil, dwn.Transient, -32600, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeRPCResult("op", httpReply{Status: c.status, Body: []byte(c.body), RetryAfter: c.header["Retry-After"]}, time.Now())
			var e *dwn.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if e.Kind != c.kind || e.RPCCode != c.rpcCode || e.RetryAfter != c.retryAfter || e.HTTPStatus != c.status {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

func TestDWNReplyStatusShapes(t *testing.T) {
	r, err := decodeDWNReply("op", json.RawMessage(`{"reply":{"status":200,"detail":"Accepted"}}`))
	if err != nil || r.Status.Code != 200 {
		t.Fatalf("bare number status: %v %+v", err, r)
	}
	r, err = decodeDWNReply("op", json.RawMessage(`{"reply":{"status":{"code":410,"detail":"Progress token gap"},"error":{"code":"ProgressGap","reason":"stream_mismatch","latestAvailable":{"streamId":"s","epoch":"e","position":"5"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := dwn.AsGap(r.StatusError("MessagesQuery"))
	if !ok || g.Reason != "stream_mismatch" || g.LatestAvailable == nil || g.LatestAvailable.Position != "5" {
		t.Fatalf("gap: %+v", g)
	}
	if _, err := decodeDWNReply("op", json.RawMessage(`{"reply":{}}`)); err == nil {
		t.Fatal("reply without status accepted")
	}
}

// A transient failure of a body-less call is retried after Retry-After on the injected clock.
func TestRPCRetriesHonourRetryAfter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(429)
			_, _ = w.Write([]byte(`{"error":"Rate limit exceeded"}`))
			return
		}
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"}}}}`))
	}))
	defer srv.Close()
	clk := waittest.NewClock(time.Now())
	c := testRPC(srv.URL, false, clk)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ProcessMessage(context.Background(), "MessagesQuery", "did:jwk:t", json.RawMessage(`{}`), nil, 0)
		done <- err
	}()
	if err := clk.FiresAfter(t, 2*time.Second, "the Retry-After wait", done); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls = %d", calls.Load())
	}
	// A Retry-After beyond maxRetryWait is surfaced, not waited for; a call with data is never replayed.
	calls.Store(0)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(503)
	})
	_, _, err := c.ProcessMessage(context.Background(), "MessagesQuery", "did:jwk:t", json.RawMessage(`{}`), nil, 0)
	if dwn.RetryAfter(err) != time.Minute || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
	calls.Store(0)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); w.WriteHeader(502) })
	_, _, err = c.ProcessMessage(context.Background(), "RecordsWrite", "did:jwk:t", json.RawMessage(`{}`), strings.NewReader("x"), 1)
	if !dwn.IsTransient(err) || calls.Load() != 1 {
		t.Fatalf("streamed call replayed: %d calls, %v", calls.Load(), err)
	}
}

// web5 never answers an unknown method: the header timeout must end the call.
func TestRPCTimesOutOnSilentServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := testRPC(srv.URL, false, clocktesting.NewFakeClock(time.Now()))
	c.Retries = 0
	c.HTTP.Transport.(*http.Transport).ResponseHeaderTimeout = 100 * time.Millisecond
	const op = "dwn.applyReplicatedMessage"
	_, err := c.Call(context.Background(), Call{Op: op, Method: op, Params: map[string]any{"target": "did:jwk:t", "message": json.RawMessage(`{}`)}})
	if !dwn.IsTransient(err) {
		t.Fatalf("want a transient timeout, got %v", err)
	}
}

func TestASCIIJSONAndHeaderText(t *testing.T) {
	in := `{"a":"héllo 🌍 \u00e9"}`
	out := asciiJSON([]byte(in))
	var x, y any
	if json.Unmarshal([]byte(in), &x) != nil || json.Unmarshal(out, &y) != nil {
		t.Fatal("not JSON")
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	if !bytes.Equal(xb, yb) {
		t.Fatalf("value changed: %s vs %s", xb, yb)
	}
	if headerText(string([]byte{'"', 0xe9, '"'})) != `"é"` {
		t.Fatal("latin-1 header not decoded")
	}
}
