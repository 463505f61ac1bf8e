package dialect

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// Open connects to a DWN endpoint.
//
// With opts.Dialect pinned (web5, enbox, enbox-smt) nothing is sent: reachability and framing
// are learned on the first call, whose error (if any) reports the endpoint's trouble. With
// DialectAuto, Open fetches GET /info and probes, in this order:
//
//  1. /info.server == "@web5/dwn-server" → web5 (never probe it: it does not answer unknown
//     JSON-RPC methods at all).
//  2. a MessagesQuery with limit:1, cidsOnly:true answered in the durable-feed shape
//     (drained / ProgressToken cursor) → enbox.
//  3. MessagesSync action "root" answered with a root hash → enbox-smt.
//  4. dwn.applyReplicatedMessage known (anything but -32601) → enbox.
//  5. otherwise → web5 (a server without a durable feed).
//
// Probes are signed by a throwaway did:jwk identity addressing itself, so they need no tenant
// and touch no tenant's data.
func Open(ctx context.Context, endpoint string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &dwn.Error{Op: "open", Kind: dwn.Permanent, Detail: fmt.Sprintf("endpoint %q: want an http(s):// base URL", wire.RedactURL(endpoint))}
	}
	c := &Client{endpoint: baseurl.Normalize(endpoint), opts: opts}
	shown := wire.RedactURL(c.endpoint)
	if c.egress, err = opts.Egress.Compile(); err != nil {
		return nil, &dwn.Error{Op: "open", Kind: dwn.Permanent, Detail: err.Error()}
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc, c.ownsHTTP = wire.NewHTTPClient(c.egress), true
	}
	hc = wire.RefuseRedirects(hc, shown)
	if opts.OnRequest != nil {
		hc.Transport = countingTransport{next: hc.Transport, count: func() { opts.OnRequest(c.endpoint) }}
	}
	c.rpc = &wire.RPC{Endpoint: c.endpoint, Shown: shown, HTTP: hc, Clock: opts.Clock, Retries: opts.Retries,
		CallTimeout: opts.CallTimeout, IdleTimeout: opts.IdleTimeout, MinRate: opts.MinTransferRate}
	switch opts.Dialect {
	case dwn.DialectWeb5, dwn.DialectEnbox, dwn.DialectEnboxSMT:
		c.dialect = opts.Dialect
		return c, nil
	case dwn.DialectAuto:
	default:
		return nil, &dwn.Error{Op: "open", Kind: dwn.Permanent, Detail: fmt.Sprintf("unknown dialect %q (want auto, web5, enbox or enbox-smt)", opts.Dialect)}
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	c.dialect, err = c.detect(ctx, info)
	if err != nil {
		return nil, err
	}
	opts.Logger.V(1).Info("dwn endpoint opened", "endpoint", shown, "dialect", c.dialect, "server", info.Server, "version", info.Version)
	return c, nil
}

func (c *Client) detect(ctx context.Context, info ServerInfo) (dwn.Dialect, error) {
	if info.Server == "@web5/dwn-server" {
		return dwn.DialectWeb5, nil
	}
	probe, _, err := msg.GenerateSigner()
	if err != nil {
		return "", err
	}
	if ok, err := c.probeDurableFeed(ctx, probe); err != nil {
		return "", err
	} else if ok {
		return dwn.DialectEnbox, nil
	}
	if c.probeSMT(ctx, probe) {
		return dwn.DialectEnboxSMT, nil
	}
	if c.probeApply(ctx, probe) {
		return dwn.DialectEnbox, nil
	}
	return dwn.DialectWeb5, nil
}

// probeDurableFeed reports whether MessagesQuery answers in the durable-feed shape. Only a
// transport failure is an error (the endpoint is unusable); rejections mean "no".
func (c *Client) probeDurableFeed(ctx context.Context, probe *msg.Signer) (bool, error) {
	msg, err := probe.SignDescriptor(map[string]any{"interface": "Messages", "method": "Query",
		"messageTimestamp": msg.FormatTimestamp(c.opts.Clock.Now()), "filters": []any{}, "limit": 1, "cidsOnly": true})
	if err != nil {
		return false, err
	}
	reply, err := c.probeCall(ctx, "probe MessagesQuery", probe.DID, msg)
	if err != nil {
		if dwn.IsTransient(err) && !isTimeout(err) {
			return false, err
		}
		return false, nil
	}
	if reply.Status.Code != 200 {
		return false, nil
	}
	var r struct {
		Drained *bool `json:"drained"`
		Cursor  *struct {
			StreamID string `json:"streamId"`
		} `json:"cursor"`
	}
	_ = json.Unmarshal(reply.Raw, &r)
	return r.Drained != nil || (r.Cursor != nil && r.Cursor.StreamID != ""), nil
}

func (c *Client) probeSMT(ctx context.Context, probe *msg.Signer) bool {
	msg, err := probe.SignDescriptor(map[string]any{"interface": "Messages", "method": "Sync",
		"messageTimestamp": msg.FormatTimestamp(c.opts.Clock.Now()), "action": "root"})
	if err != nil {
		return false
	}
	reply, err := c.probeCall(ctx, "probe MessagesSync", probe.DID, msg)
	if err != nil {
		return false
	}
	var r struct {
		Root string `json:"root"`
	}
	_ = json.Unmarshal(reply.Raw, &r)
	return reply.Status.Code == 200 && len(r.Root) == 64
}

func (c *Client) probeApply(ctx context.Context, probe *msg.Signer) bool {
	pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
	defer cancel()
	_, err := c.rpc.Call(pctx, wire.Call{Op: "probe dwn.applyReplicatedMessage", Method: "dwn.applyReplicatedMessage",
		Params: map[string]any{"target": probe.DID, "message": map[string]any{}}})
	if err == nil {
		return true
	}
	if dwn.IsUnsupported(err) || isTimeout(err) || (dwn.IsTransient(err) && dwn.RetryAfter(err) == 0) {
		return false
	}
	return true // rejected our empty message: the method exists
}

// probeCall is processMessage bounded by ProbeTimeout. A data body (never expected from a
// probe) is closed.
func (c *Client) probeCall(ctx context.Context, op, target string, msg json.RawMessage) (wire.Reply, error) {
	pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
	defer cancel()
	reply, body, err := c.rpc.ProcessMessage(pctx, op, target, msg, nil, 0)
	if body != nil {
		body.Close()
	}
	return reply, err
}

func isTimeout(err error) bool {
	return err != nil && (wire.IsStall(err) || strings.Contains(err.Error(), "deadline exceeded") || strings.Contains(err.Error(), "timeout"))
}

// wsDialer is the WebSocket dialer: gorilla's defaults, dialing through the egress policy.
func (c *Client) wsDialer() *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.NetDialContext = c.egress.DialContext(&net.Dialer{Timeout: wire.DefaultDialTimeout, KeepAlive: 30 * time.Second})
	return &d
}

// countingTransport tells count of every request before it goes out.
type countingTransport struct {
	next  http.RoundTripper // nil: http.DefaultTransport
	count func()
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.count()
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// CloseIdleConnections reaches the wrapped transport (Client.Close closes an owned pool's idle
// connections through it).
func (t countingTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
