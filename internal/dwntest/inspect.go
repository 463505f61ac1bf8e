package dwntest

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// requestCounter counts requests by name: JSON-RPC methods ("dwn.processMessage",
// "rpc.ack"…), DWN message kinds ("MessagesQuery", "RecordsWrite"…), applied kinds
// ("apply:RecordsWrite"), "GET /info", "websocket" upgrades and "invalid" requests.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *requestCounter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[name]++
}

// Count is how many requests named name the node has seen (see requestCounter for names).
func (n *Node) Count(name string) int {
	n.counter.mu.Lock()
	defer n.counter.mu.Unlock()
	return n.counter.counts[name]
}

// Counts is a copy of every request count.
func (n *Node) Counts() map[string]int {
	n.counter.mu.Lock()
	defer n.counter.mu.Unlock()
	out := make(map[string]int, len(n.counter.counts))
	for k, v := range n.counter.counts {
		out[k] = v
	}
	return out
}

// CIDs lists the CIDs of every message the tenant stores (its feed), sorted.
func (n *Node) CIDs(tenant string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tenants[tenant]
	if t == nil {
		return []string{}
	}
	out := make([]string, 0, len(t.feed))
	for _, m := range t.feed {
		out = append(out, m.cid)
	}
	sort.Strings(out)
	return out
}

// Fingerprint is the tenant's fingerprint over the given protocols (none = the whole tenant),
// as MessagesQuery would report it.
func (n *Node) Fingerprint(tenant string, protocols ...string) string {
	filters := make([]messagesFilter, 0, len(protocols))
	for _, p := range protocols {
		filters = append(filters, messagesFilter{Protocol: p})
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return fingerprintLocked(n.tenantLocked(tenant), filters)
}

// Message returns a stored message and its data (nil when the node holds none).
func (n *Node) Message(tenant, cid string) (json.RawMessage, []byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tenants[tenant]
	if t == nil || t.byCID[cid] == nil {
		return nil, nil, false
	}
	m := t.byCID[cid]
	return m.raw, m.data, true
}

// Head is the highest feed position the tenant has allocated.
func (n *Node) Head(tenant string) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tenantLocked(tenant).head
}

// Token is the ProgressToken the node would issue for position pos of tenant.
func (n *Node) Token(tenant string, pos uint64) dwn.Cursor {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tenantLocked(tenant)
	cid := ""
	if m := t.at(pos); m != nil {
		cid = m.cid
	}
	return n.tokenLocked(t, pos, cid)
}

// Write stores a signed message directly (no HTTP, no faults), exactly as
// dwn.applyReplicatedMessage would, and returns the outcome. data is the record data or nil.
func (n *Node) Write(tenant string, message json.RawMessage, data []byte) dwn.ApplyResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.admitLocked(n.tenantLocked(tenant), message, data)
	return dwn.ApplyResult{Kind: o.kind, AncestryOnly: o.ancestryOnly, Missing: o.missing, Reason: o.reason}
}

// Seed stores messages this package's Identity authored, in order, for benchmarks that need
// large tenants: what Write does, without deriving again what authoring computed (the CID and
// the parsed message) and without verifying the signature this package just made. The outcome
// rules (dependencies, newest state wins) are Write's. It stops at the first message that is not
// applied.
func (n *Node) Seed(tenant string, ws ...Written) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tenantLocked(tenant)
	for i, w := range ws {
		if w.CID == "" || w.info.Kind() == "" {
			return fmt.Errorf("dwntest: Seed message %d was not authored by an Identity", i)
		}
		if o := n.admitStoredLocked(t, newStored(w.CID, w.Message, w.info), w.Data); o.kind != dwn.Applied {
			return fmt.Errorf("dwntest: Seed message %d (%s): %s %s", i, w, o.kind, o.reason)
		}
	}
	return nil
}

// Subscriptions is how many subscriptions are open on the node.
func (n *Node) Subscriptions() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	count := 0
	for c := range n.conns {
		count += len(c.subs)
	}
	return count
}

// WebSockets is how many WebSocket connections are open.
func (n *Node) WebSockets() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}
