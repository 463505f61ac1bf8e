package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Why a WebSocket subscription ended or a WebSocket call failed. Terminal errors of a
// subscription and failed calls are *Error values (so IsTransient, IsUnauthorized, ... work)
// or a *GapError; the ones the mux itself decides wrap one of these sentinels (errors.Is).
var (
	// ErrDisconnected: the socket died (dial, read or write error, missed pongs, server went
	// away). Every subscription on that socket ends with it. Transient: resubscribe; the mux
	// redials with backoff.
	ErrDisconnected = errors.New("websocket connection lost")
	// errWSOverflow: this subscription's buffer was full when a frame arrived, i.e. its consumer
	// fell behind by more than the buffer. Only this subscription ends (the reader never waits on
	// a consumer). Transient: reopen it from the last checkpoint.
	errWSOverflow = errors.New("subscription buffer full, consumer too slow")
	// errWSTimeout: the server did not answer a call in time. Transient.
	errWSTimeout = errors.New("no reply in time")
	// errWSClosed: the client closed the subscription (Close). Not an *Error: nobody retries it.
	errWSClosed = errors.New("dwn websocket: subscription closed by client")
	// errWSMuxClosed: the mux itself was closed (client shutdown). Not an *Error either.
	errWSMuxClosed = errors.New("dwn websocket: endpoint connection closed by client")
)

const wsOp = "websocket"

// wsLost is the terminal error of a dead socket.
func wsLost(format string, args ...any) error {
	return &dwn.Error{Op: wsOp, Kind: dwn.Transient, Err: fmt.Errorf("%w: "+format, append([]any{ErrDisconnected}, args...)...)}
}

func wsOverflow(buffer int) error {
	return &dwn.Error{Op: wsOp, Kind: dwn.Transient, Detail: fmt.Sprintf("more than %d frames waiting; reopen from the checkpoint", buffer), Err: errWSOverflow}
}

func wsOverflowBytes(budget int64) error {
	return &dwn.Error{Op: wsOp, Kind: dwn.Transient, Detail: fmt.Sprintf("more than %d bytes of frames waiting (dwnsync's per-subscription bound); reopen from the checkpoint", budget), Err: errWSOverflow}
}

func wsTimedOut(method string, after time.Duration) error {
	return &dwn.Error{Op: method, Kind: dwn.Transient, Err: fmt.Errorf("%w (%s)", errWSTimeout, after)}
}

// wsMalformedError: the server sent something for this call or subscription that no DWN server
// sends. Transient: reopening from the checkpoint loses nothing, and backoff bounds a loop.
func wsMalformedError(op string, cause error) error {
	return &dwn.Error{Op: op, Kind: dwn.Transient, Detail: "the server sent a frame this client cannot read; reopen from the checkpoint", Err: cause}
}

// wsCallError classifies a JSON-RPC error answer to method.
func wsCallError(method string, e *wsRPCError) error {
	var data struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(e.Data, &data)
	return &dwn.Error{Op: method, Kind: kindForRPC(e.Code, data.Code), RPCCode: e.Code, Detail: e.Message, Err: e}
}

// wsStatusError classifies a DWN reply status other than 200 (410 is a gap: see gapFromReply).
func wsStatusError(method string, code int, detail string) error {
	return &dwn.Error{Op: method, Kind: kindForDWN(code), DWNCode: code, Detail: detail}
}

// wsServerEnded classifies an enbox terminal error frame.
func wsServerEnded(e *wsSubscriptionError) error {
	kind := dwn.Transient // buffer overflow/timeout, delivery failure: reopen from the checkpoint
	if e.Code == "MessagesSubscribeDeliveryAuthorizationFailed" {
		kind = dwn.Unauthorized // the delegate's grant expired or was revoked
	}
	return &dwn.Error{Op: "MessagesSubscribe", Kind: kind, Detail: e.Code + ": " + e.Detail, Err: e}
}

// wsRPCError is a JSON-RPC error object sent instead of a result (e.g. -32602 "the subscribe id
// is in use", -32600 "subscribe methods must contain a subscriptionRequest context").
type wsRPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *wsRPCError) Error() string {
	return fmt.Sprintf("JSON-RPC error %d", e.Code)
}

// wsSubscriptionError is an enbox terminal `type:"error"` frame: the server ended the
// subscription (SubscriptionBufferOverflow, SubscriptionBufferTimeout,
// MessagesSubscribeDeliveryAuthorizationFailed, MessagesSubscribeDeliveryFailed). Cursor is the
// token the server attached, as received.
type wsSubscriptionError struct {
	Code   string
	Detail string
	Cursor json.RawMessage
}

func (e *wsSubscriptionError) Error() string {
	return "server ended the subscription with a terminal error frame"
}
