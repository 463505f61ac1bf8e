package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// This file turns what came back over HTTP into results or classified errors. It does no I/O,
// so FuzzDecodeRPCResponse can feed it anything a server (or a proxy) might send.

// rpcResponse is a JSON-RPC 2.0 response.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// rpcErrorData is what DWN servers put in error.data.
type rpcErrorData struct {
	Code          string   `json:"code"`
	RetryAfterSec *float64 `json:"retryAfterSec"`
}

// Status is a DWN reply status. It accepts both shapes servers send: {"code","detail"} and
// a bare number (web5's rpc.subscribe.close reply).
type Status struct {
	Code   int    `json:"code"`
	Detail string `json:"detail"`
}

func (s *Status) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		code, err := strconv.Atoi(n.String())
		if err != nil {
			return fmt.Errorf("status %q is not an integer", n)
		}
		s.Code = code
		return nil
	}
	type plain Status
	return json.Unmarshal(b, (*plain)(s))
}

// Reply is result.reply of dwn.processMessage, kept raw for the method-specific fields.
type Reply struct {
	Status Status
	Raw    json.RawMessage
}

// httpReply is the transport-independent view of one HTTP answer.
type httpReply struct {
	Status      int
	DWNResponse string // the dwn-response header ("" when absent)
	RetryAfter  string // the Retry-After header
	Body        []byte // the JSON body; ignored when DWNResponse is set (the body is data)
	ContentType string // the Content-Type header, named (never the body) when the reply is not DWN's
}

// decodeRPCResult returns result of a JSON-RPC answer, or a classified *Error. op names the
// call for error messages; now is used to interpret an HTTP-date Retry-After.
func decodeRPCResult(op string, r httpReply, now time.Time) (json.RawMessage, error) {
	raw := r.Body
	if r.DWNResponse != "" {
		raw = []byte(headerText(r.DWNResponse))
	}
	retry := parseRetryAfter(r.RetryAfter, now)
	resp, perr := parseRPCResponse(raw)
	if r.Status != 200 {
		e := &dwn.Error{Op: op, Kind: kindForHTTP(r.Status), HTTPStatus: r.Status, RetryAfter: retry}
		if perr == nil && resp.Error != nil {
			applyRPCError(e, resp.Error)
			if r.Status == 429 {
				e.Kind = dwn.Transient // a rate limit is transient whatever the code says
			}
		} else {
			e.Detail = describeNonDWN(r.Status, r.ContentType, fmt.Sprintf("%d bytes", len(r.Body)))
		}
		return nil, e
	}
	if perr != nil {
		return nil, &dwn.Error{Op: op, Kind: dwn.Transient, HTTPStatus: r.Status, Detail: "malformed JSON-RPC response: " + perr.Error()}
	}
	if resp.Error != nil {
		e := &dwn.Error{Op: op, HTTPStatus: r.Status, RetryAfter: retry}
		applyRPCError(e, resp.Error)
		return nil, e
	}
	if len(resp.Result) == 0 || string(resp.Result) == "null" {
		return nil, &dwn.Error{Op: op, Kind: dwn.Transient, HTTPStatus: r.Status, Detail: "JSON-RPC response has neither result nor error"}
	}
	return resp.Result, nil
}

// applyRPCError fills kind, codes, detail and retry hint from a JSON-RPC error object.
func applyRPCError(e *dwn.Error, re *rpcError) {
	var data rpcErrorData
	_ = json.Unmarshal(re.Data, &data)
	e.Kind = kindForRPC(re.Code, data.Code)
	e.RPCCode = re.Code
	e.Detail = re.Message
	if data.Code != "" {
		e.Detail = data.Code + ": " + re.Message
	}
	if re.Code == rpcRateLimited {
		sec := 1.0 // docs/protocol-notes.md#retry-after: default 1 s
		if data.RetryAfterSec != nil && *data.RetryAfterSec > 0 && *data.RetryAfterSec <= 86400 {
			sec = *data.RetryAfterSec
		}
		if d := time.Duration(sec * float64(time.Second)); d > e.RetryAfter {
			e.RetryAfter = d
		}
	}
}

func parseRPCResponse(raw []byte) (rpcResponse, error) {
	var resp rpcResponse
	if len(bytes.TrimSpace(raw)) == 0 {
		return resp, errors.New("empty body")
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return resp, err
	}
	if resp.Error == nil && resp.Result == nil {
		return resp, errors.New("not a JSON-RPC response")
	}
	return resp, nil
}

// decodeDWNReply reads result.reply of dwn.processMessage.
func decodeDWNReply(op string, result json.RawMessage) (Reply, error) {
	var r struct {
		Reply json.RawMessage `json:"reply"`
	}
	if err := json.Unmarshal(result, &r); err != nil || len(r.Reply) == 0 || string(r.Reply) == "null" {
		return Reply{}, &dwn.Error{Op: op, Kind: dwn.Transient, Detail: "JSON-RPC result has no reply object"}
	}
	var s struct {
		Status *Status `json:"status"`
	}
	if err := json.Unmarshal(r.Reply, &s); err != nil || s.Status == nil || s.Status.Code == 0 {
		return Reply{}, &dwn.Error{Op: op, Kind: dwn.Transient, Detail: "DWN reply has no status code"}
	}
	return Reply{Status: *s.Status, Raw: r.Reply}, nil
}

// statusError is the *Error for a DWN reply status the caller did not expect (410 → *GapError).
func (r Reply) StatusError(op string) error {
	if r.Status.Code == 410 {
		return gapFromReply(r.Raw)
	}
	return &dwn.Error{Op: op, Kind: kindForDWN(r.Status.Code), HTTPStatus: 200, DWNCode: r.Status.Code, Detail: r.Status.Detail}
}

// gapFromReply reads a 410 ProgressGap reply (docs/protocol-notes.md#progress-gap); bounds may be
// absent.
func gapFromReply(reply json.RawMessage) *dwn.GapError {
	var r struct {
		Error *struct {
			Reason          string      `json:"reason"`
			Requested       *dwn.Cursor `json:"requested"`
			OldestAvailable *dwn.Cursor `json:"oldestAvailable"`
			LatestAvailable *dwn.Cursor `json:"latestAvailable"`
		} `json:"error"`
	}
	if json.Unmarshal(reply, &r) != nil || r.Error == nil {
		return &dwn.GapError{}
	}
	return &dwn.GapError{Reason: r.Error.Reason, Requested: r.Error.Requested,
		OldestAvailable: r.Error.OldestAvailable, LatestAvailable: r.Error.LatestAvailable}
}

// parseRetryAfter reads delta-seconds or an HTTP-date; anything else is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 || n > 86400 {
			return 0
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// headerText decodes a header value. Node writes header strings as Latin-1, so bytes that are
// not valid UTF-8 are read as Latin-1 (our own requests escape non-ASCII as \u sequences).
func headerText(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	runes := make([]rune, 0, len(v))
	for i := 0; i < len(v); i++ {
		runes = append(runes, rune(v[i]))
	}
	return string(runes)
}

// asciiJSON escapes every non-ASCII rune of a JSON text as \uXXXX (surrogate pairs above the
// BMP). The value is unchanged, but the text survives an HTTP header read as Latin-1.
func asciiJSON(b []byte) []byte {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r < 0x80:
			out = append(out, byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}
