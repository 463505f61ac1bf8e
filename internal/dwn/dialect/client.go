package dialect

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// Options configures a Client (and every Client of a Pool).
type Options struct {
	// Dialect pins the endpoint's dialect; "" or DialectAuto detects it (see Open).
	Dialect dwn.Dialect
	// HTTPClient replaces the default per-endpoint client (own keep-alive pool, 30 s header
	// timeout, 16 MiB header cap). A replacement must set its own dial and header timeouts, and
	// Egress does not reach its dialer (it applies to the WebSocket still); CallTimeout and
	// IdleTimeout below apply to it all the same, and its redirects are refused all the same.
	HTTPClient *http.Client
	// OnRequest, when set, hears of every HTTP request to an endpoint (retries and probes
	// included), with the endpoint's base URL: the operator counts requests per endpoint.
	OnRequest func(endpoint string)
	// Egress adds allowed and denied addresses to the default policy (link-local and cloud
	// metadata addresses refused, checked at dial time on the resolved IP). See EgressPolicy.
	Egress wire.EgressPolicy
	// Clock drives retries and WebSocket timing (a clock.WithTicker is used for the latter when
	// it is one; otherwise the real clock). Default: real clock.
	Clock clock.Clock
	// Logger gets connection-level events only, never message contents or keys.
	Logger logr.Logger
	// ProbeTimeout bounds each detection probe (default 5 s): web5 never answers an unknown
	// JSON-RPC method, so probing must not wait for the header timeout.
	ProbeTimeout time.Duration
	// Retries is how often a body-less call is retried on a transient failure (default 2;
	// negative = never).
	Retries int
	// CallTimeout bounds each attempt of a JSON call: sending a body-less request, awaiting the
	// reply and reading a JSON reply (default 30 s; negative = none). A caller's shorter
	// context deadline still wins. It does not limit data streams (see IdleTimeout), and for a
	// streamed listing (a web5 tenant in one reply) it bounds each wait for bytes, not the whole
	// reply, which MinTransferRate bounds instead.
	CallTimeout time.Duration
	// IdleTimeout fails a data stream, request or response, when no bytes move for this long
	// (default 60 s; negative = none). The read or the call then fails as Transient.
	IdleTimeout time.Duration
	// MinTransferRate fails a data stream (a record's data being read) whose average over a
	// 60 s window falls below this many bytes per second (default 4 KiB/s; negative = none).
	// The read then fails as Transient.
	MinTransferRate int64
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = wire.DefaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	o.CallTimeout = orDefaultTimeout(o.CallTimeout, wire.DefaultCallTimeout)
	o.IdleTimeout = orDefaultTimeout(o.IdleTimeout, wire.DefaultIdleTimeout)
	switch {
	case o.MinTransferRate == 0:
		o.MinTransferRate = wire.DefaultMinTransferRate
	case o.MinTransferRate < 0:
		o.MinTransferRate = 0
	}
	if o.Dialect == "" {
		o.Dialect = dwn.DialectAuto
	}
	return o
}

// orDefaultTimeout maps the zero value to def and a negative one to 0 (disabled).
func orDefaultTimeout(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// ServerInfo is GET /info (docs/protocol-notes.md#server-info). Missing optional fields mean "not
// supported".
type ServerInfo struct {
	URL                      string   `json:"url"`
	Server                   string   `json:"server"`
	Version                  string   `json:"version"`
	SDKVersion               string   `json:"sdkVersion"`
	MaxFileSize              int64    `json:"maxFileSize"`
	MaxInFlight              int      `json:"maxInFlight"`
	RegistrationRequirements []string `json:"registrationRequirements"`
	WebSocketSupport         bool     `json:"webSocketSupport"`
	HTTPRPCFraming           []string `json:"httpRpcFraming"`
}

func (i ServerInfo) bodyV1() bool {
	for _, f := range i.HTTPRPCFraming {
		if f == "body-v1" {
			return true
		}
	}
	return false
}

// Client is one DWN endpoint: a keep-alive HTTP pool, at most one WebSocket (opened on first
// subscribe, shared by every tenant's subscriptions) and the endpoint's dialect.
type Client struct {
	endpoint string
	dialect  dwn.Dialect
	opts     Options
	rpc      *wire.RPC
	egress   *wire.EgressRules

	mu       sync.Mutex
	info     *ServerInfo // nil until fetched (pinned dialects fetch lazily)
	ws       *wire.Mux
	noApply  bool // the server answered -32601 to dwn.applyReplicatedMessage
	closed   bool
	ownsHTTP bool
}

// Dialect is the detected or pinned dialect.
func (c *Client) Dialect() dwn.Dialect { return c.dialect }

// Endpoint is the base URL (no trailing slash).
func (c *Client) Endpoint() string { return c.endpoint }

// Info returns GET /info, fetching it if a pinned Open skipped it.
func (c *Client) Info(ctx context.Context) (ServerInfo, error) {
	c.mu.Lock()
	if c.info != nil {
		defer c.mu.Unlock()
		return *c.info, nil
	}
	c.mu.Unlock()
	var info ServerInfo
	if err := c.rpc.GetJSON(ctx, "/info", &info); err != nil {
		return ServerInfo{}, err
	}
	c.setInfo(info)
	return info, nil
}

func (c *Client) setInfo(info ServerInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.info = &info
	c.rpc.BodyV1 = info.bodyV1()
}

// ensureInfo lets a pinned client learn the framing on its first call. A failure is not fatal
// here: the call itself will report the endpoint's trouble.
func (c *Client) ensureInfo(ctx context.Context) {
	c.mu.Lock()
	known := c.info != nil
	c.mu.Unlock()
	if !known {
		pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
		defer cancel()
		_, _ = c.Info(pctx)
	}
}

// mux returns the endpoint's WebSocket multiplexer, creating it on first use.
func (c *Client) mux(ctx context.Context) (*wire.Mux, error) {
	c.ensureInfo(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("dwn: client closed")
	}
	if c.ws != nil {
		return c.ws, nil
	}
	o := wire.MuxOptions{Logger: c.opts.Logger, Dialer: c.wsDialer()}
	if t, ok := c.opts.Clock.(clock.WithTicker); ok {
		o.Clock = t
	}
	if c.info != nil {
		o.MaxInFlight = c.info.MaxInFlight
	}
	m, err := wire.NewMux(c.endpoint, o)
	if err != nil {
		return nil, &dwn.Error{Op: "websocket", Kind: dwn.Permanent, Err: err}
	}
	c.ws = m
	return m, nil
}

// Tenant returns the tenant did on this endpoint, signed for by signer (the tenant itself or a
// delegate with Messages grants). enbox-smt tenants also implement SMTTenant.
func (c *Client) Tenant(did string, signer *msg.Signer) dwn.Tenant {
	base := tenantBase{c: c, did: did, signer: signer, pluralGrants: c.dialect == dwn.DialectEnbox || c.dialect == dwn.DialectEnboxSMT}
	switch c.dialect {
	case dwn.DialectEnbox:
		return &enboxTenant{tenantBase: base}
	case dwn.DialectEnboxSMT:
		return &smtTenant{tenantBase: base}
	default:
		return &web5Tenant{tenantBase: base, cache: &web5PageCache{}}
	}
}

// Close ends the WebSocket (every subscription) and drops idle HTTP connections.
func (c *Client) Close() error {
	c.mu.Lock()
	ws := c.ws
	c.ws, c.closed = nil, true
	c.mu.Unlock()
	if ws != nil {
		_ = ws.Close()
	}
	if c.ownsHTTP {
		c.rpc.HTTP.CloseIdleConnections()
	}
	return nil
}

func (c *Client) applyUnsupported() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noApply
}

func (c *Client) markApplyUnsupported() {
	c.mu.Lock()
	c.noApply = true
	c.mu.Unlock()
}

// Pool shares one Client per (endpoint, dialect) between links: one WebSocket and one
// keep-alive pool per endpoint however many tenants replicate through it.
type Pool struct {
	opts    Options
	mu      sync.Mutex
	clients map[string]*poolEntry
	closed  bool
}

type poolEntry struct {
	ready  chan struct{}
	client *Client
	err    error
}

// NewPool returns an empty pool; opts apply to every Client it opens (Dialect is per Get).
func NewPool(opts Options) *Pool { return &Pool{opts: opts, clients: map[string]*poolEntry{}} }

// Get returns the pooled Client of endpoint, opening it once (concurrent callers wait for the
// same Open). A failed Open is not cached: the next Get tries again.
func (p *Pool) Get(ctx context.Context, endpoint string, dialect dwn.Dialect) (*Client, error) {
	if dialect == "" {
		dialect = dwn.DialectAuto
	}
	key := string(dialect) + " " + baseurl.Normalize(endpoint)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("dwn: pool closed")
	}
	e, ok := p.clients[key]
	if !ok {
		e = &poolEntry{ready: make(chan struct{})}
		p.clients[key] = e
		p.mu.Unlock()
		opts := p.opts
		opts.Dialect = dialect
		e.client, e.err = Open(ctx, endpoint, opts)
		close(e.ready)
		if e.err != nil {
			p.mu.Lock()
			delete(p.clients, key)
			p.mu.Unlock()
		}
		return e.client, e.err
	}
	p.mu.Unlock()
	select {
	case <-e.ready:
		if e.err != nil {
			return p.Get(ctx, endpoint, dialect)
		}
		return e.client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Tenant opens (or shares) endpoint's Client and returns the tenant did on it: a Pool is the
// engine's dwn.Opener.
func (p *Pool) Tenant(ctx context.Context, endpoint string, dialect dwn.Dialect, did string, signer *msg.Signer) (dwn.Tenant, error) {
	c, err := p.Get(ctx, endpoint, dialect)
	if err != nil {
		return nil, err
	}
	return c.Tenant(did, signer), nil
}

// Close closes every pooled Client.
func (p *Pool) Close() {
	p.mu.Lock()
	entries := p.clients
	p.clients, p.closed = map[string]*poolEntry{}, true
	p.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.client != nil {
			_ = e.client.Close()
		}
	}
}
