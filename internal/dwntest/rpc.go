package dwntest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// JSON-RPC error codes the node answers with (docs/protocol-notes.md#error-codes).
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeBadRequest     = -50400
	codeRateLimited    = -50429
)

const (
	bodyV1MediaType  = "application/vnd.enbox.dwn-rpc"
	maxEnvelopeBytes = 1 << 20
	maxRequestData   = 64 << 20 // the node's maxFileSize
)

// rpcRequest is one JSON-RPC request (HTTP or WebSocket).
type rpcRequest struct {
	JSONRPC      string          `json:"jsonrpc"`
	ID           json.RawMessage `json:"id,omitempty"`
	Method       string          `json:"method"`
	Params       json.RawMessage `json:"params,omitempty"`
	Subscription *struct {
		ID string `json:"id"`
	} `json:"subscription,omitempty"`
}

// rpcParams are the params of dwn.processMessage / dwn.applyReplicatedMessage / rpc.ack.
type rpcParams struct {
	Target      string          `json:"target"`
	Message     json.RawMessage `json:"message"`
	EncodedData *string         `json:"encodedData,omitempty"`
	Cursor      json.RawMessage `json:"cursor,omitempty"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

func rpcErrorResponse(id json.RawMessage, code int, msg string, data any) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "id": idOrNull(id), "error": rpcError{Code: code, Message: msg, Data: data}}
}

func rpcResult(id json.RawMessage, result any) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "id": idOrNull(id), "result": result}
}

func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}

// reply is a DWN reply plus the record data to stream with it (nil when none).
type reply struct {
	body map[string]any
	data []byte
}

func status(code int, detail string) map[string]any {
	return map[string]any{"status": map[string]any{"code": code, "detail": detail}}
}

func statusReply(code int, detail string) reply { return reply{body: status(code, detail)} }

// ServeHTTP routes the node's HTTP surface: GET /info, GET /health, WebSocket upgrades on any
// path, and JSON-RPC on POST /.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		n.counter.add("websocket")
		n.serveWebSocket(w, r)
		return
	}
	n.delay()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/info":
		n.counter.add("GET /info")
		writeJSON(w, http.StatusOK, n.info())
	case r.Method == http.MethodGet && r.URL.Path == "/health":
		n.counter.add("GET /health")
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case r.Method == http.MethodPost && r.URL.Path == "/":
		n.serveRPC(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (n *Node) info() map[string]any {
	info := map[string]any{
		"url":                      n.url,
		"server":                   "@enbox/dwn-server",
		"version":                  "0.1.35",
		"sdkVersion":               "0.4.20",
		"maxFileSize":              maxRequestData,
		"registrationRequirements": []string{},
		"webSocketSupport":         true,
	}
	if n.opts.Mode == ModeEnbox {
		info["maxInFlight"] = n.opts.MaxInFlight
		info["httpRpcFraming"] = []string{"body-v1"}
	} else {
		// A seed-era server: before flow control and body framing existed.
		info["version"] = "0.1.20"
		info["sdkVersion"] = "0.3.4"
	}
	return info
}

func (n *Node) serveRPC(w http.ResponseWriter, r *http.Request) {
	req, data, err := n.decodeHTTPRequest(r)
	if err != nil {
		n.counter.add("invalid")
	} else {
		n.counter.add(req.Method)
	}
	// Injected failures stand for trouble in front of the handler (proxy, limiter, crash), so
	// they answer even requests the handler would reject.
	if n.injectedFailure(w, req.ID) || n.injectedRPCFailure(w, req.ID) {
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, rpcErrorResponse(nil, codeBadRequest, err.Error(), nil))
		return
	}
	rep, rerr := n.dispatch(req, data, transportHTTP)
	if rerr != nil {
		code := http.StatusInternalServerError
		if rerr.Code == codeRateLimited {
			code = http.StatusTooManyRequests
		}
		writeJSON(w, code, rpcErrorResponse(req.ID, rerr.Code, rerr.Message, rerr.Data))
		return
	}
	var result map[string]any
	if req.Method == "dwn.applyReplicatedMessage" || req.Method == "rpc.ping" {
		result = rep.body
	} else {
		result = map[string]any{"reply": rep.body}
	}
	resp := rpcResult(req.ID, result)
	if rep.data == nil {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	header, err := json.Marshal(resp)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, rpcErrorResponse(req.ID, codeInternal, err.Error(), nil))
		return
	}
	w.Header().Set("dwn-response", string(header))
	w.Header().Set("Access-Control-Expose-Headers", "dwn-response")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rep.data)
}

// decodeHTTPRequest reads a JSON-RPC request in either framing: the legacy dwn-request header
// (body = record data) or, in enbox mode, body-v1 (flags, big-endian length, envelope, data).
func (n *Node) decodeHTTPRequest(r *http.Request) (rpcRequest, []byte, error) {
	var req rpcRequest
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.EqualFold(mediaType, bodyV1MediaType) && n.opts.Mode == ModeEnbox {
		if len(params) != 1 || params["version"] != "1" {
			return req, nil, errors.New("unsupported HTTP DWN RPC body framing version.")
		}
		return decodeBodyV1(r.Body)
	}
	header := r.Header.Get("dwn-request")
	if header == "" {
		return req, nil, errors.New("request payload required.")
	}
	if err := json.Unmarshal([]byte(header), &req); err != nil {
		return req, nil, err
	}
	var data []byte
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRequestData+1))
		if err != nil {
			return req, nil, err
		}
		if len(b) > maxRequestData {
			return req, nil, errors.New("record data exceeds maxFileSize")
		}
		data = b
	}
	return req, data, nil
}

func decodeBodyV1(body io.Reader) (rpcRequest, []byte, error) {
	var req rpcRequest
	var head [5]byte
	if _, err := io.ReadFull(body, head[:]); err != nil {
		return req, nil, errors.New("body-v1: truncated frame header")
	}
	flags := head[0]
	if flags&^0x01 != 0 {
		return req, nil, errors.New("body-v1: unknown flag bits")
	}
	size := binary.BigEndian.Uint32(head[1:])
	if size > maxEnvelopeBytes {
		return req, nil, errors.New("body-v1: envelope larger than 1 MiB")
	}
	envelope := make([]byte, size)
	if _, err := io.ReadFull(body, envelope); err != nil {
		return req, nil, errors.New("body-v1: truncated envelope")
	}
	if err := json.Unmarshal(envelope, &req); err != nil {
		return req, nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(body, maxRequestData+1))
	if err != nil {
		return req, nil, err
	}
	if flags&0x01 == 0 {
		if len(rest) > 0 {
			return req, nil, errors.New("body-v1: data after the envelope without the data flag")
		}
		return req, nil, nil
	}
	if len(rest) > maxRequestData {
		return req, nil, errors.New("record data exceeds maxFileSize")
	}
	return req, rest, nil
}

type transport int

const (
	transportHTTP transport = iota
	transportWS
)

// dispatch runs one non-subscription JSON-RPC method.
func (n *Node) dispatch(req rpcRequest, data []byte, via transport) (reply, *rpcError) {
	switch req.Method {
	case "rpc.ping":
		return reply{body: map[string]any{"ok": true}}, nil
	case "dwn.processMessage":
		p, err := parseParams(req.Params)
		if err != nil {
			return reply{}, err
		}
		return n.processMessage(p, data, via)
	case "dwn.applyReplicatedMessage":
		if n.opts.Mode != ModeEnbox {
			return reply{}, &rpcError{Code: codeMethodNotFound, Message: "Method not found"}
		}
		p, err := parseParams(req.Params)
		if err != nil {
			return reply{}, err
		}
		return n.applyReplicated(p, data, via)
	case "rpc.subscribe.dwn.processMessage":
		return reply{}, &rpcError{Code: codeInvalidRequest, Message: "subscribe methods must contain a subscriptionRequest context"}
	default:
		return reply{}, &rpcError{Code: codeMethodNotFound, Message: "Method not found"}
	}
}

func parseParams(raw json.RawMessage) (rpcParams, *rpcError) {
	var p rpcParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, &rpcError{Code: codeInvalidParams, Message: "params: " + err.Error()}
	}
	if p.Target == "" {
		return p, &rpcError{Code: codeInvalidParams, Message: "params.target is required"}
	}
	if len(p.Message) == 0 {
		return p, &rpcError{Code: codeInvalidParams, Message: "params.message is required"}
	}
	return p, nil
}

// decodeEncodedData checks params.encodedData the way the apply handler does.
func decodeEncodedData(s string) ([]byte, *rpcError) {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, &rpcError{Code: codeInvalidParams, Message: "encodedData is not base64url"}
		}
	}
	if len(s)%4 == 1 {
		return nil, &rpcError{Code: codeInvalidParams, Message: "encodedData has an impossible length"}
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, &rpcError{Code: codeInvalidParams, Message: "encodedData: " + err.Error()}
	}
	return b, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}
