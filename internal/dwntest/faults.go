package dwntest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// servedVia says on which path a stored message leaves the node (for corruption faults).
type servedVia int

const (
	servedRead servedVia = iota // MessagesRead, RecordsRead
	servedQuery
	servedEvent
	servedDiff
)

// faultState is the set of injected faults (guarded by Node.mu).
type faultState struct {
	failNext       int
	failStatus     int
	failRetryAfter time.Duration
	latency        time.Duration
	stalled        bool
	corruptReads   int // next MessagesRead/RecordsRead answers
	corruptAny     int // next messages served on any path
	corrupted      int // how many corrupted messages were served
	corruptData    int // next record data served (reads and inline data)

	rpcFailNext  int
	rpcFailCode  int
	rpcFailData  string
	rpcFailRetry time.Duration
	deferNext    int
	deferReason  string
	inactive     map[string]bool
	replayFirst  bool
}

// DropWebSockets closes every open WebSocket at the TCP level, without a close frame (as a
// crashed proxy would). Their subscriptions end.
func (n *Node) DropWebSockets() {
	for _, c := range n.openConns() {
		c.drop()
	}
}

// openConns is a snapshot of the open WebSockets, so faults act on them without holding n.mu.
func (n *Node) openConns() []*wsConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	conns := make([]*wsConn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	return conns
}

// RefuseConnections makes the node unreachable for d (measured on the node's clock): open
// connections and WebSockets are cut and new ones are reset as soon as they are accepted.
func (n *Node) RefuseConnections(d time.Duration) {
	n.listener.shut(d)
	n.DropWebSockets()
}

// SetRefusing makes the node unreachable until SetRefusing(false).
func (n *Node) SetRefusing(refusing bool) {
	if !refusing {
		n.listener.reopen()
		return
	}
	n.listener.shut(0)
	n.DropWebSockets()
}

// Refused is how many connections the node reset while refusing.
func (n *Node) Refused() int { return n.listener.refusedCount() }

// FailNext answers the next count JSON-RPC HTTP requests with status instead of handling them.
// 429 comes with the limiter's plain JSON body; 500 with a JSON-RPC InternalError; other codes
// with a text body. retryAfter > 0 adds a Retry-After header (whole seconds, rounded up).
func (n *Node) FailNext(count int, status int, retryAfter time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.failNext, n.faults.failStatus, n.faults.failRetryAfter = count, status, retryAfter
}

// SetLatency delays every HTTP request and every WebSocket frame the node sends by d (on the
// node's clock). 0 removes it.
func (n *Node) SetLatency(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.latency = d
}

// RotateEpoch replaces the store-wide epoch, as a store reset or restore does: every token
// issued before is answered with 410 epoch_mismatch. Positions and contents are kept.
func (n *Node) RotateEpoch() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.epoch = newEpoch()
}

// CompactFeed forgets the replay history of every tenant up to its current head: a cursor
// older than the head is answered with 410 token_too_old. Stored messages stay, so a scan from
// no cursor still lists them.
func (n *Node) CompactFeed() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.tenants {
		t.floor = t.head
	}
}

// StallSubscriptions stops (true) or resumes (false) frame delivery on every subscription;
// requests are still answered.
func (n *Node) StallSubscriptions(stalled bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.stalled = stalled
	n.wakeLocked()
}

// CorruptNextRead makes the next MessagesRead (or RecordsRead) serve a message whose bytes do
// not match the CID it is served under.
func (n *Node) CorruptNextRead() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.corruptReads++
}

// CorruptNextMessages makes the next count messages served on any path (reads, query entries,
// events, diff entries) carry bytes that do not match their CIDs.
func (n *Node) CorruptNextMessages(count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.corruptAny += count
}

// Corrupted is how many corrupted messages the node has served.
func (n *Node) Corrupted() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faults.corrupted
}

// SendGarbageFrames sends, on every open WebSocket, a text frame that is not JSON, a binary
// frame, a JSON-RPC frame for an id nobody asked for, and on each open subscription an event
// frame with no cursor and no message. A client must survive the first three and end the
// subscription (or treat it as a gap) on the last.
func (n *Node) SendGarbageFrames() {
	for _, c := range n.openConns() {
		c.sendGarbage()
	}
}

// CorruptNextData makes the next count record data payloads served (MessagesRead and
// RecordsRead bodies, inline encodedData of entries, events and diffs) differ from the data
// their descriptors name: same length, first byte flipped.
func (n *Node) CorruptNextData(count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.corruptData += count
}

// serveDataLocked returns the data to serve for m, corrupting it when a fault asks so.
func (n *Node) serveDataLocked(m *stored) []byte {
	if len(m.data) == 0 {
		return nil // an empty payload is no data: no body, no dwn-response framing
	}
	if n.faults.corruptData <= 0 {
		return m.data
	}
	n.faults.corruptData--
	n.faults.corrupted++
	bad := append([]byte(nil), m.data...)
	bad[0] ^= 0xff
	return bad
}

// serveMessageLocked returns the bytes to serve for m, corrupting them when a fault asks so.
func (n *Node) serveMessageLocked(m *stored, via servedVia) json.RawMessage {
	corrupt := false
	if via == servedRead && n.faults.corruptReads > 0 {
		n.faults.corruptReads--
		corrupt = true
	} else if n.faults.corruptAny > 0 {
		n.faults.corruptAny--
		corrupt = true
	}
	if !corrupt {
		return m.raw
	}
	n.faults.corrupted++
	var obj map[string]any
	if err := json.Unmarshal(m.raw, &obj); err != nil {
		return m.raw
	}
	if d, ok := obj["descriptor"].(map[string]any); ok {
		d["messageTimestamp"] = "1999-01-01T00:00:00.000000Z" // still schema-valid, different CID
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return m.raw
	}
	return out
}

// FailNextRPC answers the next count JSON-RPC HTTP requests with JSON-RPC error code, with
// the server's HTTP mapping: -50429 → 429 with Retry-After and data.retryAfterSec (retryAfter,
// default 1 s), anything else → 500. dataCode, when set, goes in error.data.code (e.g.
// -32600 + "TenantMessageQuotaExceeded", -32602 + "RecordDataSizeLimitExceeded").
func (n *Node) FailNextRPC(count, code int, dataCode string, retryAfter time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.rpcFailNext, n.faults.rpcFailCode, n.faults.rpcFailData, n.faults.rpcFailRetry = count, code, dataCode, retryAfter
}

// DeferNextApplies answers the next count dwn.applyReplicatedMessage calls with
// Deferred{reason} ("storage", "resolver-unavailable") without storing anything.
func (n *Node) DeferNextApplies(count int, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.deferNext, n.faults.deferReason = count, reason
}

// SetTenantActive toggles the tenant gate: an inactive tenant gets Deferred tenant-inactive
// from dwn.applyReplicatedMessage and 401 from dwn.processMessage writes. Tenants are active
// by default.
func (n *Node) SetTenantActive(did string, active bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.faults.inactive == nil {
		n.faults.inactive = map[string]bool{}
	}
	n.faults.inactive[did] = !active
}

// ReplayBeforeReply makes subscriptions send their first replay frames before the subscribe
// reply, as a real server may (it drains stored events while installing the listener).
func (n *Node) ReplayBeforeReply(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.replayFirst = on
}

// ceilSeconds is d in whole seconds, rounded up (Retry-After carries integer seconds).
func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// injectedRPCFailure answers with the configured JSON-RPC error, if one is pending.
func (n *Node) injectedRPCFailure(w http.ResponseWriter, id json.RawMessage) bool {
	n.mu.Lock()
	if n.faults.rpcFailNext <= 0 {
		n.mu.Unlock()
		return false
	}
	n.faults.rpcFailNext--
	code, dataCode, retry := n.faults.rpcFailCode, n.faults.rpcFailData, n.faults.rpcFailRetry
	n.mu.Unlock()
	data := map[string]any{}
	if dataCode != "" {
		data["code"] = dataCode
	}
	status := http.StatusInternalServerError
	if code == codeRateLimited {
		secs := max(ceilSeconds(retry), 1)
		data["retryAfterSec"] = secs
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		status = http.StatusTooManyRequests
	}
	var payload any // no "data" member when there is nothing to say
	if len(data) > 0 {
		payload = data
	}
	writeJSON(w, status, rpcErrorResponse(id, code, "injected JSON-RPC error", payload))
	return true
}

// injectedFailure answers an HTTP request with the configured failure, if one is pending.
func (n *Node) injectedFailure(w http.ResponseWriter, id json.RawMessage) bool {
	n.mu.Lock()
	if n.faults.failNext <= 0 {
		n.mu.Unlock()
		return false
	}
	n.faults.failNext--
	status, retry := n.faults.failStatus, n.faults.failRetryAfter
	n.mu.Unlock()
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(retry)))
	}
	switch status {
	case http.StatusTooManyRequests:
		writeJSON(w, status, map[string]string{"error": "Rate limit exceeded"})
	case http.StatusInternalServerError:
		writeJSON(w, status, rpcErrorResponse(id, codeInternal, "injected internal error", nil))
	default:
		http.Error(w, http.StatusText(status), status)
	}
	return true
}

// delay waits the configured latency on the node's clock.
func (n *Node) delay() {
	n.mu.Lock()
	d := n.faults.latency
	n.mu.Unlock()
	if d > 0 {
		select {
		case <-n.clock.After(d):
		case <-n.closed:
		}
	}
}
