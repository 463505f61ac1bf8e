package wire

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// HTTP JSON-RPC transport (docs/protocol-notes.md#http-json-rpc).
//
// Framing: the JSON-RPC request travels in the `dwn-request` header and the record data is the
// raw body (every server), or — when /info advertises "body-v1" — both travel in the body
// behind a 5-byte prefix. Answers with data come back as a `dwn-response` header plus a
// streamed body; everything else is a JSON body.
//
// Retries: a call without a request body that fails transiently is retried a few times (the
// wait honours Retry-After, bounded by maxRetryWait); calls that stream data are never replayed
// because the reader is one-shot. The engine owns longer-term retry policy.
//
// Stalls: the JSON parts of an exchange (a body-less request, awaiting the reply, reading a
// JSON reply) share one per-call deadline (Options.CallTimeout); data streams instead fail when
// no bytes move for Options.IdleTimeout, in either direction, because a large payload may
// legitimately take long but a server that stops mid-body must not pin a worker forever.

const (
	headerDWNRequest  = "dwn-request"
	headerDWNResponse = "dwn-response"
	bodyV1MediaType   = "application/vnd.enbox.dwn-rpc; version=1"
	bodyV1MaxEnvelope = 1 << 20 // docs/protocol-notes.md#body-v1-framing

	// maxInfoReply caps GET /info: a small object of server facts.
	maxInfoReply = 1 << 20
	// maxResponseHeader leaves room for dwn-response headers carrying large messages (the
	// header holds the message and its initial write).
	maxResponseHeader = 16 << 20

	DefaultRetries     = 2
	DefaultCallTimeout = 30 * time.Second
	DefaultIdleTimeout = 60 * time.Second
	// defaultMinTransferRate and transferRateWindow: a data stream whose average over a 60 s
	// window is below 4 KiB/s fails as Transient. The idle timeout alone let a server send one
	// byte every 59 s forever; at the floor, the largest record a server admits still arrives
	// (1 GiB in under 3 days), while a trickle ends within two windows.
	DefaultMinTransferRate = 4 << 10
	transferRateWindow     = 60 * time.Second
	defaultRetryBase       = 500 * time.Millisecond
	maxRetryWait           = 5 * time.Second
	defaultHeaderTimeout   = 30 * time.Second
	DefaultDialTimeout     = 10 * time.Second
	defaultMaxIdlePerHost  = 16
)

// RPC speaks JSON-RPC over HTTP to one endpoint.
type RPC struct {
	Endpoint string // base URL without trailing slash
	Shown    string // endpoint with any password redacted: the only form printed
	HTTP     *http.Client
	Clock    clock.Clock
	BodyV1   bool // the server advertised body-v1 framing
	Retries  int
	// callTimeout bounds the JSON parts of one attempt; idleTimeout is the longest a data
	// stream may sit without a byte moving. Zero disables either.
	CallTimeout time.Duration
	IdleTimeout time.Duration
	// minRate is the data-stream floor in bytes per second, averaged over transferRateWindow
	// (0 = none).
	MinRate int64
}

// NewHTTPClient is the default client of one endpoint: its own keep-alive pool, a header
// timeout (web5 never answers an unknown method, so a call must not wait forever) but no
// overall timeout, because data streams may legitimately take long.
func NewHTTPClient(egress *EgressRules) *http.Client {
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            egress.DialContext(&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}),
		MaxIdleConns:           defaultMaxIdlePerHost,
		MaxIdleConnsPerHost:    defaultMaxIdlePerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    DefaultDialTimeout,
		ResponseHeaderTimeout:  defaultHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeader,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{Transport: tr}
}

// Call is one request. Data (may be nil) is the record data, DataLen its length (-1 =
// unknown, sent chunked).
type Call struct {
	Op      string // for errors, e.g. "MessagesRead"
	Method  string // JSON-RPC method
	Params  any
	Data    io.Reader
	DataLen int64
	// EachEntry, when set, receives every element of result.reply.entries in order as the
	// reply streams in (the answer's reply then has an empty entries array). A later error in
	// the same reply fails the call: the caller must then drop what it was handed.
	EachEntry func(json.RawMessage) error
}

// Answer is a successful JSON-RPC result. Body is the streamed data of a dwn-response
// answer (the caller must Close it), nil otherwise.
type Answer struct {
	Result json.RawMessage
	Body   io.ReadCloser
}

// call performs c, retrying transient failures of body-less calls.
func (r *RPC) Call(ctx context.Context, c Call) (Answer, error) {
	attempts := 1
	if c.Data == nil {
		attempts += r.Retries
	}
	delivered := false // a streamed listing that handed out entries is never replayed
	if each := c.EachEntry; each != nil {
		c.EachEntry = func(raw json.RawMessage) error { delivered = true; return each(raw) }
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			wait := defaultRetryBase << (i - 1)
			if ra := dwn.RetryAfter(lastErr); ra > 0 {
				wait = ra
			}
			if wait > maxRetryWait {
				return Answer{}, lastErr // the server asked for more patience than a call has
			}
			select {
			case <-ctx.Done():
				return Answer{}, lastErr
			case <-r.Clock.After(wait):
			}
		}
		ans, err := r.once(ctx, c)
		if err == nil || !dwn.IsTransient(err) || ctx.Err() != nil || IsStall(err) || delivered {
			return ans, err // a stalled attempt already used the call's time: the caller decides
		}
		lastErr = err
	}
	return Answer{}, lastErr
}

func (r *RPC) once(ctx context.Context, c Call) (Answer, error) {
	envelope, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": newRequestID(), "method": c.Method, "params": c.Params})
	if err != nil {
		return Answer{}, &dwn.Error{Op: c.Op, Kind: dwn.Permanent, Detail: "encode request", Err: err}
	}
	wctx, w := r.watch(ctx)
	streaming := false // the answer's body outlives this function and finishes the watch
	defer func() {
		if !streaming {
			w.finish()
		}
	}()
	data := c.Data
	var upload *watchedUpload
	if data != nil && c.DataLen != 0 {
		upload = &watchedUpload{r: data, w: w, idle: r.IdleTimeout, reply: r.CallTimeout}
		data = upload
		w.arm(r.IdleTimeout, stallUpload)
	} else {
		w.arm(r.CallTimeout, stallReply)
	}
	req, err := r.newRequest(wctx, envelope, data, c.DataLen)
	if err != nil {
		return Answer{}, &dwn.Error{Op: c.Op, Kind: dwn.Permanent, Err: err}
	}
	resp, err := r.HTTP.Do(req)
	if upload != nil {
		upload.answered()
		w.arm(r.CallTimeout, stallReply) // reading the reply is a JSON part again
	}
	if err != nil {
		if ctx.Err() != nil {
			return Answer{}, &dwn.Error{Op: c.Op, Kind: dwn.Transient, Detail: "cancelled", Err: ctx.Err()}
		}
		if s := stallOf(wctx); s != nil {
			return Answer{}, &dwn.Error{Op: c.Op, Kind: dwn.Transient, Detail: "request to " + r.Shown + " stalled", Err: s}
		}
		if errors.Is(err, errRedirectRefused) || errors.Is(err, ErrEgressRefused) {
			return Answer{}, &dwn.Error{Op: c.Op, Kind: dwn.Permanent, Detail: "request to " + r.Shown + " refused", Err: err}
		}
		return Answer{}, &dwn.Error{Op: c.Op, Kind: dwn.Transient, Detail: "request to " + r.Shown + " failed", Err: err}
	}
	reply := httpReply{Status: resp.StatusCode, DWNResponse: resp.Header.Get(headerDWNResponse), RetryAfter: resp.Header.Get("Retry-After")}
	if reply.DWNResponse != "" && resp.StatusCode == 200 {
		result, err := decodeRPCResult(c.Op, reply, r.Clock.Now())
		if err != nil {
			resp.Body.Close()
			return Answer{}, err
		}
		w.disarm()
		streaming = true
		body := &watchedBody{rc: resp.Body, ctx: wctx, w: w, idle: r.IdleTimeout, op: c.Op, from: r.Shown,
			floor: newRateFloor(r.Clock, r.MinRate)}
		return Answer{Result: result, Body: body}, nil // data streams to the caller
	}
	defer resp.Body.Close()
	reply.ContentType = resp.Header.Get("Content-Type")
	limit := int64(MaxJSONReply)
	if c.EachEntry != nil {
		limit = maxListingReply
	}
	body := &replyBody{r: resp.Body, limit: limit}
	if c.EachEntry != nil {
		// A listing may be a whole tenant: like a data stream, it may take long while it moves,
		// so CallTimeout bounds each wait for bytes and the rate floor bounds a trickle.
		floor := newRateFloor(r.Clock, r.MinRate)
		body.progress = func(n int) error {
			w.arm(r.CallTimeout, stallReply)
			return floor.add(n)
		}
	}
	reply.Body, err = readJSONReply(body, c.EachEntry)
	if err != nil {
		return Answer{}, r.replyError(ctx, wctx, c.Op, resp, body, err)
	}
	result, err := decodeRPCResult(c.Op, reply, r.Clock.Now())
	if err != nil {
		return Answer{}, err
	}
	return Answer{Result: result}, nil
}

// replyError classifies a JSON reply that could not be read: a transport failure or stall is
// Transient, a reply over dwnsync's bounds is Permanent (it will not shrink), and a body that
// is not a DWN reply is described, never echoed.
func (r *RPC) replyError(ctx, wctx context.Context, op string, resp *http.Response, body *replyBody, err error) error {
	status := resp.StatusCode
	switch {
	case errors.Is(err, errReplyTooLarge):
		return &dwn.Error{Op: op, Kind: dwn.Permanent, HTTPStatus: status, Detail: fmt.Sprintf(
			"reply from %s exceeds dwnsync's bound (%d bytes a reply, %d entries, %d bytes a listing value); the call was abandoned",
			r.Shown, body.limit, maxReplyEntries, maxListingValue)}
	case errors.Is(err, errNotDWNReply):
		kind := dwn.Transient // a 200 that is not DWN's: a proxy or captive portal, maybe passing
		if status != 200 {
			kind = kindForHTTP(status)
		}
		return &dwn.Error{Op: op, Kind: kind, HTTPStatus: status, Detail: nonDWNReply(status, resp.Header.Get("Content-Type"), body),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), r.Clock.Now())}
	case body.readErr != nil:
		if s := stallOf(wctx); s != nil && ctx.Err() == nil {
			err = s
		}
		return &dwn.Error{Op: op, Kind: dwn.Transient, HTTPStatus: status, Detail: "reading response", Err: err}
	}
	return err // the caller's entry callback refused the listing
}

// newRequest frames the envelope and data as POST / using body-v1 when the server has it.
func (r *RPC) newRequest(ctx context.Context, envelope []byte, data io.Reader, dataLen int64) (*http.Request, error) {
	if data != nil && dataLen == 0 {
		data = nil // nothing to send; a zero-length body would still count as "data" to some servers
	}
	url := r.Endpoint + "/"
	if r.BodyV1 {
		if len(envelope) > bodyV1MaxEnvelope {
			return nil, fmt.Errorf("JSON-RPC envelope of %d bytes exceeds the body-v1 limit of %d", len(envelope), bodyV1MaxEnvelope)
		}
		prefix := make([]byte, 5)
		if data != nil {
			prefix[0] = 0x01 // record data follows the envelope
		}
		binary.BigEndian.PutUint32(prefix[1:], uint32(len(envelope)))
		readers := []io.Reader{bytes.NewReader(prefix), bytes.NewReader(envelope)}
		length := int64(5 + len(envelope))
		if data != nil {
			readers = append(readers, data)
			if dataLen < 0 {
				length = -1
			} else {
				length += dataLen
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, io.MultiReader(readers...))
		if err != nil {
			return nil, err
		}
		req.ContentLength = length
		req.Header.Set("Content-Type", bodyV1MediaType)
		return req, nil
	}
	var body io.Reader = http.NoBody
	if data != nil {
		body = data
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerDWNRequest, string(asciiJSON(envelope)))
	if data != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.ContentLength = dataLen // -1 → chunked; the server treats Transfer-Encoding as data
	}
	return req, nil
}

// ProcessMessage sends one DWN message for target and returns the reply. Body is the streamed
// data when the reply carries some. Unexpected reply statuses are NOT errors here: callers map
// them (Apply turns 409 into Superseded, MessagesRead 404 into "not found", ...).
func (r *RPC) ProcessMessage(ctx context.Context, op, target string, message json.RawMessage, data io.Reader, dataLen int64) (Reply, io.ReadCloser, error) {
	ans, err := r.Call(ctx, Call{Op: op, Method: "dwn.processMessage",
		Params: map[string]any{"target": target, "message": message}, Data: data, DataLen: dataLen})
	if err != nil {
		return Reply{}, nil, err
	}
	reply, err := decodeDWNReply(op, ans.Result)
	if err != nil {
		if ans.Body != nil {
			ans.Body.Close()
		}
		return Reply{}, nil, err
	}
	return reply, ans.Body, nil
}

// ProcessListing is ProcessMessage for a listing: every reply entry goes to each as it
// streams in, and the returned reply has an empty entries array.
func (r *RPC) ProcessListing(ctx context.Context, op, target string, message json.RawMessage, each func(json.RawMessage) error) (Reply, error) {
	ans, err := r.Call(ctx, Call{Op: op, Method: "dwn.processMessage",
		Params: map[string]any{"target": target, "message": message}, EachEntry: each})
	if err != nil {
		return Reply{}, err
	}
	if ans.Body != nil {
		ans.Body.Close() // a listing carries no data
	}
	return decodeDWNReply(op, ans.Result)
}

// GetJSON fetches a GET route (e.g. /info) into v.
func (r *RPC) GetJSON(ctx context.Context, path string, v any) error {
	op := "GET " + path
	wctx, w := r.watch(ctx)
	defer w.finish()
	w.arm(r.CallTimeout, stallReply)
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, r.Endpoint+path, nil)
	if err != nil {
		return &dwn.Error{Op: op, Kind: dwn.Permanent, Err: err}
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		if s := stallOf(wctx); s != nil && ctx.Err() == nil {
			err = s
		}
		kind := dwn.Transient
		if errors.Is(err, errRedirectRefused) || errors.Is(err, ErrEgressRefused) {
			kind = dwn.Permanent
		}
		return &dwn.Error{Op: op, Kind: kind, Detail: "request to " + r.Shown + " failed", Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInfoReply+1))
	if err != nil {
		if s := stallOf(wctx); s != nil && ctx.Err() == nil {
			err = s
		}
		return &dwn.Error{Op: op, Kind: dwn.Transient, HTTPStatus: resp.StatusCode, Err: err}
	}
	contentType := resp.Header.Get("Content-Type")
	if resp.StatusCode != 200 {
		return &dwn.Error{Op: op, Kind: kindForHTTP(resp.StatusCode), HTTPStatus: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), r.Clock.Now()),
			Detail:     describeNonDWN(resp.StatusCode, contentType, fmt.Sprintf("%d bytes", len(body)))}
	}
	if len(body) > maxInfoReply || json.Unmarshal(body, v) != nil {
		return &dwn.Error{Op: op, Kind: dwn.Permanent, HTTPStatus: 200, Detail: describeNonDWN(200, contentType, fmt.Sprintf("%d bytes", len(body)))}
	}
	return nil
}

// exactReader passes through exactly n bytes of a data stream: more is an error (the server
// sent more than dataSize; never buffer or forward it), fewer is io.ErrUnexpectedEOF.
type exactReader struct {
	rc        io.ReadCloser
	remaining int64
}

func NewExactReader(rc io.ReadCloser, n int64) io.ReadCloser {
	return &exactReader{rc: rc, remaining: n}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.remaining <= 0 {
		// Probe for surplus bytes so a server that sends too much is caught.
		var one [1]byte
		n, err := e.rc.Read(one[:])
		if n > 0 {
			return 0, errors.New("dwn: data stream longer than descriptor.dataSize")
		}
		if err == nil {
			return 0, nil
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.remaining {
		p = p[:e.remaining]
	}
	n, err := e.rc.Read(p)
	e.remaining -= int64(n)
	if err == io.EOF && e.remaining > 0 {
		return n, io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil // the final probe reports EOF
	}
	return n, err
}

func (e *exactReader) Close() error { return e.rc.Close() }

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- stall watchdog ----

// What a fired watchdog reports (the StallError's Stage).
const (
	stallReply  = "no reply" // a JSON part (request, reply headers, JSON body) overran CallTimeout
	stallUpload = "server stopped accepting request data"
	stallData   = "no response data"
)

// StallError is the cancellation cause of an exchange whose server stopped making progress.
type StallError struct {
	Stage string
	After time.Duration
}

func (s *StallError) Error() string {
	return fmt.Sprintf("timeout: %s within %s", s.Stage, s.After)
}

// stallOf returns the watchdog's cause when it cancelled ctx, else nil.
func stallOf(ctx context.Context) *StallError {
	var s *StallError
	if errors.As(context.Cause(ctx), &s) {
		return s
	}
	return nil
}

func IsStall(err error) bool {
	var s *StallError
	return errors.As(err, &s)
}

// callWatch cancels one exchange's context when its armed timer fires. Arming replaces the
// previous timer; a generation number makes a timer that fires just as it is replaced harmless.
type callWatch struct {
	clock  clock.Clock
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	timer interface{ Stop() bool }
	gen   uint64
	done  bool
}

// watch returns the exchange's context (cancelled by the watchdog or by finish) and its watch.
func (r *RPC) watch(ctx context.Context) (context.Context, *callWatch) {
	wctx, cancel := context.WithCancelCause(ctx)
	return wctx, &callWatch{clock: r.Clock, cancel: cancel}
}

// arm starts (or restarts) the timer: after d, the exchange fails with stage. d <= 0 disarms.
func (w *callWatch) arm(d time.Duration, stage string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked()
	if w.done || d <= 0 {
		return
	}
	gen, cause := w.gen, &StallError{Stage: stage, After: d}
	fire := func() {
		w.mu.Lock()
		current := gen == w.gen && !w.done
		w.mu.Unlock()
		if current {
			w.cancel(cause)
		}
	}
	if c, ok := w.clock.(clock.WithDelayedExecution); ok {
		w.timer = c.AfterFunc(d, fire)
	} else {
		w.timer = time.AfterFunc(d, fire)
	}
}

func (w *callWatch) disarm() {
	w.mu.Lock()
	w.stopLocked()
	w.mu.Unlock()
}

func (w *callWatch) stopLocked() {
	w.gen++
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// finish ends the exchange: no timer fires any more and its context is released.
func (w *callWatch) finish() {
	w.mu.Lock()
	w.stopLocked()
	w.done = true
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// watchedUpload is request data under the idle watchdog: the timer runs while the transport
// is not reading from us (it is blocked writing to a server that stopped accepting bytes) and
// is off while our own source produces the next chunk (that source has its own watchdog).
type watchedUpload struct {
	r           io.Reader
	w           *callWatch
	idle, reply time.Duration
	mu          sync.Mutex
	over        bool // the reply arrived: the transport may still drain us, the watch is the reply's
}

func (u *watchedUpload) Read(p []byte) (int, error) {
	u.watch(0, "")
	n, err := u.r.Read(p)
	if err == io.EOF {
		u.watch(u.reply, stallReply) // all sent: now the server owes a reply
	} else {
		u.watch(u.idle, stallUpload)
	}
	return n, err
}

func (u *watchedUpload) watch(d time.Duration, stage string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.over {
		u.w.arm(d, stage)
	}
}

func (u *watchedUpload) answered() {
	u.mu.Lock()
	u.over = true
	u.mu.Unlock()
}

// watchedBody is a streamed response under the idle watchdog: a Read that waits longer than
// idle for the server's next bytes fails with a Transient *Error. Close ends the exchange.
type watchedBody struct {
	rc    io.ReadCloser
	ctx   context.Context
	w     *callWatch
	idle  time.Duration
	op    string
	from  string     // the endpoint, redacted
	floor *rateFloor // nil: no minimum rate
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.arm(b.idle, stallData)
	n, err := b.rc.Read(p)
	b.w.disarm()
	if ferr := b.floor.add(n); ferr != nil && err == nil {
		return n, &dwn.Error{Op: b.op, Kind: dwn.Transient, Detail: "data from " + b.from + " too slow", Err: ferr}
	}
	if err != nil && err != io.EOF {
		if s := stallOf(b.ctx); s != nil {
			err = &dwn.Error{Op: b.op, Kind: dwn.Transient, Detail: "reading data", Err: s}
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.w.finish()
	return err
}

// rateFloor fails a data stream whose average rate over a window falls below a minimum: the
// idle watchdog only catches a stream that stops, not one that trickles.
type rateFloor struct {
	clock clock.PassiveClock
	min   int64 // bytes per second
	start time.Time
	bytes int64 // read since start
}

// newRateFloor returns nil (no floor) when min <= 0.
func newRateFloor(c clock.PassiveClock, min int64) *rateFloor {
	if min <= 0 {
		return nil
	}
	return &rateFloor{clock: c, min: min, start: c.Now()}
}

// add counts n bytes just read; once a window has passed it checks the window's average and
// starts the next window.
func (f *rateFloor) add(n int) error {
	if f == nil {
		return nil
	}
	f.bytes += int64(n)
	elapsed := f.clock.Since(f.start)
	if elapsed < transferRateWindow {
		return nil
	}
	if rate := float64(f.bytes) / elapsed.Seconds(); rate < float64(f.min) {
		return fmt.Errorf("%.0f bytes/s over the last %s, below dwnsync's minimum of %d bytes/s", rate, elapsed.Truncate(time.Second), f.min)
	}
	f.start, f.bytes = f.clock.Now(), 0
	return nil
}
