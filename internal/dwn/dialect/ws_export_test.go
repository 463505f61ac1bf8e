package dialect

import (
	"context"
	"encoding/json"
)

// Test-only exports of the WebSocket mux for external tests (package dwn_test), which can use
// internal/dwntest without an import cycle.

type (
	WSMux          = wsMux
	WSOptions      = wsOptions
	WSSubscription = wsSubscription
	WSFrame        = wsFrame
)

var (
	NewWSMux          = newWSMux
	WSFrameEvent      = wsFrameEvent
	WSFrameEOSE       = wsFrameEOSE
	ErrWSDisconnected = errWSDisconnected
	ErrWSMalformed    = errWSMalformed
	ErrWSClosed       = errWSClosed
)

// WSPing does an rpc.ping round trip on the mux's current socket (enbox servers answer it).
// Frames on one socket are ordered, so once it returns every frame the server sent before the
// answer has been delivered.
func WSPing(ctx context.Context, m *wsMux) error {
	c, err := m.connection(ctx)
	if err != nil {
		return err
	}
	id := newWSID()
	frame, err := encodeWSRequest(id, "rpc.ping", json.RawMessage(`{}`), "")
	if err != nil {
		return err
	}
	in, err := c.call(ctx, "rpc.ping", id, frame, m.opts.CallTimeout)
	if err == nil && in.RPCError != nil {
		err = in.RPCError
	}
	return err
}
