package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// This file decodes the frames a DWN server sends over the WebSocket and encodes the requests the
// mux sends. Decoding is pure (no I/O, no state) so that FuzzWSFrame can hammer it.

// wsFrameKind says what a subscription frame carries.
type wsFrameKind uint8

const (
	// wsFrameEvent is one message of the feed: web5 `result.event`, enbox
	// `result.subscription` with type "event".
	wsFrameEvent wsFrameKind = iota + 1
	// wsFrameEOSE is enbox's end of stored events (`type: "eose"`); everything after is live.
	FrameEOSE
)

func (k wsFrameKind) String() string {
	switch k {
	case wsFrameEvent:
		return "event"
	case FrameEOSE:
		return "eose"
	}
	return "frame-kind-" + strconv.Itoa(int(k))
}

// Frame is one delivery on a subscription, decoded once by the reader goroutine. The raw JSON
// members are copies (safe to keep). Fields a dialect does not send are zero: web5 events carry
// only Message and InitialWrite.
type Frame struct {
	Kind wsFrameKind
	// Cursor is the enbox ProgressToken exactly as the server sent it; pass it unchanged to
	// (*Subscription).Ack (the server matches on it). nil on web5.
	Cursor json.RawMessage
	// Message is the signed message (the server removed encodedData). nil for EOSE.
	Message json.RawMessage
	// InitialWrite is the record's initial RecordsWrite, sent with updates and deletes.
	InitialWrite json.RawMessage
	// MessageCID, Seq, Protocol and EncodedData are enbox extras (EncodedData is base64url of
	// inline record data ≤ 30,000 bytes). IsLatestBaseState is nil when absent.
	MessageCID        string
	Seq               string
	Protocol          string
	EncodedData       string
	IsLatestBaseState *bool
	// wireBytes is the frame's size on the socket: what it costs the subscription's byte budget.
	wireBytes int64
}

// wsInbound is one decoded server frame, before demultiplexing. ID is "" when the frame had no
// id or a non-string one (our ids are always strings, so such a frame is never ours).
type wsInbound struct {
	ID string
	// Reply is result.reply of a response (subscribe, close and ack replies; rpc.ping's result
	// has none). HasResult says a result member was present at all.
	Reply     json.RawMessage
	HasResult bool
	// RPCError is a JSON-RPC error object (the request failed before the DWN saw it).
	RPCError *wsRPCError
	// Frame is set for event and eose frames; SubError for enbox terminal "error" frames.
	Frame    *Frame
	SubError *wsSubscriptionError
	// UnknownType is an enbox subscription frame type this client does not know (ignored).
	UnknownType string
	// Malformed is set by the demultiplexer when the frame named this id but could not be
	// decoded (decodeWSFrame's ErrMalformedFrame).
	Malformed error
}

var (
	// errWSGarbage marks a frame that is not a JSON-RPC response we can attribute to an id.
	errWSGarbage = errors.New("websocket frame is not a JSON-RPC response")
	// ErrMalformedFrame marks a frame for a string id whose body a DWN server would not send.
	ErrMalformedFrame = errors.New("malformed websocket frame")
)

// wire shapes (decoding only)

type wsWireEnvelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Result  *wsWireResult   `json:"result"`
	Error   *wsRPCError     `json:"error"`
}

type wsWireResult struct {
	Reply        json.RawMessage   `json:"reply"`
	Subscription *wsWireEnboxFrame `json:"subscription"`
	Event        *wsWireEvent      `json:"event"` // web5
}

type wsWireEnboxFrame struct {
	Type              string          `json:"type"`
	Cursor            json.RawMessage `json:"cursor"`
	Event             *wsWireEvent    `json:"event"`
	Seq               wsLooseString   `json:"seq"`
	MessageCID        string          `json:"messageCid"`
	IsLatestBaseState *bool           `json:"isLatestBaseState"`
	Protocol          string          `json:"protocol"`
	EncodedData       string          `json:"encodedData"`
	Error             *wsWireFrameErr `json:"error"`
}

type wsWireEvent struct {
	Message      json.RawMessage `json:"message"`
	InitialWrite json.RawMessage `json:"initialWrite"`
}

type wsWireFrameErr struct {
	Code   wsLooseString `json:"code"`
	Detail string        `json:"detail"`
}

// wsLooseString accepts a JSON string or number (servers disagree on `seq` and error codes) and
// never fails: the value is informational, and a failure here would hide the frame's id.
type wsLooseString string

func (s *wsLooseString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = wsLooseString(v)
		}
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		*s = wsLooseString(b)
	}
	return nil
}

// decodeWSFrame turns one text frame into a wsInbound. It never panics. Three outcomes:
//   - a usable frame: err == nil;
//   - a frame that names a string id but whose body is not what a DWN server sends (an event
//     without a message, a non-object result, ...): err wraps ErrMalformedFrame and in.ID is set,
//     so the demultiplexer can end that one subscription or call instead of losing an event;
//   - anything else (not JSON, no id, neither result nor error): err wraps errWSGarbage.
//
// An enbox subscription frame of a type we do not know is not an error: in.UnknownType is set
// and the frame is ignored (a newer server may add types).
func decodeWSFrame(data []byte) (wsInbound, error) {
	var env wsWireEnvelope
	err := json.Unmarshal(data, &env)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return wsInbound{}, fmt.Errorf("%w: %v", errWSGarbage, err)
	}
	id := wsFrameID(env.ID)
	bad := func(format string, args ...any) (wsInbound, error) {
		if id == "" {
			return wsInbound{}, fmt.Errorf("%w: "+format, append([]any{errWSGarbage}, args...)...)
		}
		return wsInbound{ID: id}, fmt.Errorf("%w: "+format, append([]any{ErrMalformedFrame}, args...)...)
	}
	if err != nil {
		return bad("%v", err)
	}
	if env.Result == nil && env.Error == nil {
		if env.Method != "" {
			return wsInbound{}, fmt.Errorf("%w: server-initiated method %q", errWSGarbage, env.Method)
		}
		return bad("neither result nor error")
	}
	in := wsInbound{ID: id, RPCError: env.Error}
	if env.Error != nil {
		return in, nil
	}
	res := env.Result
	in.HasResult = true
	if isJSONPresent(res.Reply) {
		in.Reply = res.Reply
	}
	switch {
	case res.Subscription != nil:
		return decodeEnboxFrame(in, res.Subscription, bad)
	case res.Event != nil:
		if !isJSONPresent(res.Event.Message) {
			return bad("event without message")
		}
		in.Frame = &Frame{Kind: wsFrameEvent, Message: res.Event.Message, InitialWrite: presentOrNil(res.Event.InitialWrite)}
	}
	return in, nil
}

func decodeEnboxFrame(in wsInbound, f *wsWireEnboxFrame, bad func(string, ...any) (wsInbound, error)) (wsInbound, error) {
	switch f.Type {
	case "event":
		if f.Event == nil || !isJSONPresent(f.Event.Message) {
			return bad("event frame without event.message")
		}
		in.Frame = &Frame{
			Kind:              wsFrameEvent,
			Cursor:            presentOrNil(f.Cursor),
			Message:           f.Event.Message,
			InitialWrite:      presentOrNil(f.Event.InitialWrite),
			MessageCID:        f.MessageCID,
			Seq:               string(f.Seq),
			Protocol:          f.Protocol,
			EncodedData:       f.EncodedData,
			IsLatestBaseState: f.IsLatestBaseState,
		}
	case "eose":
		in.Frame = &Frame{Kind: FrameEOSE, Cursor: presentOrNil(f.Cursor)}
	case "error":
		e := &wsSubscriptionError{Cursor: presentOrNil(f.Cursor)}
		if f.Error != nil {
			e.Code, e.Detail = string(f.Error.Code), f.Error.Detail
		}
		in.SubError = e
	case "":
		return bad("subscription frame without a type")
	default:
		in.UnknownType = f.Type
	}
	return in, nil
}

// wsFrameID returns the id when it is a JSON string, "" otherwise.
func wsFrameID(raw json.RawMessage) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	// Fast path: our ids never need unescaping.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && raw[len(raw)-1] == '"' {
		return string(inner)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func isJSONPresent(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

func presentOrNil(raw json.RawMessage) json.RawMessage {
	if isJSONPresent(raw) {
		return raw
	}
	return nil
}

// wsReplyStatus reads reply.status as either {"code":n,"detail":s} (subscribe replies) or a bare
// number with a sibling "detail" (close and ack replies, docs/protocol-notes.md#websocket-framing).
func wsReplyStatus(reply json.RawMessage) (code int, detail string, err error) {
	var r struct {
		Status json.RawMessage `json:"status"`
		Detail string          `json:"detail"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return 0, "", fmt.Errorf("reply is not an object: %w", err)
	}
	st := bytes.TrimSpace(r.Status)
	if len(st) == 0 {
		return 0, "", errors.New("reply has no status")
	}
	if st[0] == '{' {
		var s struct {
			Code   *int   `json:"code"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(st, &s); err != nil || s.Code == nil {
			return 0, "", fmt.Errorf("reply status %.40s has no numeric code", st)
		}
		return *s.Code, s.Detail, nil
	}
	if err := json.Unmarshal(st, &code); err != nil {
		return 0, "", fmt.Errorf("reply status %.40s is neither an object nor a number", st)
	}
	return code, r.Detail, nil
}

// request encoding

type wsWireSubscriptionRef struct {
	ID string `json:"id"`
}

type wsWireRequest struct {
	JSONRPC      string                 `json:"jsonrpc"`
	ID           string                 `json:"id,omitempty"` // omitted: notification (rpc.ack)
	Method       string                 `json:"method"`
	Params       json.RawMessage        `json:"params"`
	Subscription *wsWireSubscriptionRef `json:"subscription,omitempty"`
}

const (
	wsMethodSubscribe = "rpc.subscribe.dwn.processMessage"
	wsMethodClose     = "rpc.subscribe.close"
	wsMethodAck       = "rpc.ack"
)

// emptyParams is what rpc.subscribe.close carries: web5 throws (and never answers) without it.
var emptyParams = json.RawMessage(`{}`)

func encodeWSRequest(id, method string, params json.RawMessage, subscriptionID string) ([]byte, error) {
	if params == nil {
		params = emptyParams
	}
	req := wsWireRequest{JSONRPC: "2.0", ID: id, Method: method, Params: params}
	if subscriptionID != "" {
		req.Subscription = &wsWireSubscriptionRef{ID: subscriptionID}
	}
	return json.Marshal(req)
}

// encodeWSAck builds the rpc.ack notification: the cursor goes back exactly as received.
func encodeWSAck(subscriptionID string, cursor json.RawMessage) ([]byte, error) {
	params, err := json.Marshal(struct {
		Cursor json.RawMessage `json:"cursor"`
	}{cursor})
	if err != nil {
		return nil, fmt.Errorf("rpc.ack cursor is not valid JSON: %w", err)
	}
	return encodeWSRequest("", wsMethodAck, params, subscriptionID)
}
