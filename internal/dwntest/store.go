package dwntest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// inlineDataLimit is the largest record data a server attaches inline (encodedData) to query
// entries, events and diff entries (DwnConstant.maxDataSizeAllowedToBeEncoded).
const inlineDataLimit = 30000

// stored is one message in a tenant's message store.
type stored struct {
	cid    string
	raw    json.RawMessage // exactly as admitted, without encodedData
	info   msg.MessageInfo
	author string

	// Indexes. A RecordsDelete carries the protocol/path/context of the record it deletes;
	// a ProtocolsConfigure carries the protocol it configures.
	protocol     string
	protocolPath string
	contextID    string
	tagProtocol  string // permission records: tags.protocol (shadow-matched by protocol filters)

	pos    uint64 // feed position (never reused)
	latest bool   // isLatestBaseState
	data   []byte // nil when the node holds no data for this message
}

// record is the state of one recordId.
type record struct {
	initial *stored // the initial RecordsWrite (kept while the record exists)
	latest  *stored // newest write or delete (may be initial)
}

func (r *record) deleted() bool { return r.latest != nil && r.latest.info.Method == "Delete" }

// tenant is one DID's message store, durable feed and (enbox-smt) state index.
type tenant struct {
	did      string
	streamID string

	byCID     map[string]*stored
	feed      []*stored // ascending pos; removed messages are cut out (holes)
	head      uint64    // highest position ever allocated
	floor     uint64    // CompactFeed: cursors below it are token_too_old
	records   map[string]*record
	protocols map[string]*stored // newest ProtocolsConfigure per protocol

	index *stateIndex // nil unless the node runs in enbox-smt mode

	// digests are running fingerprints (XOR of SHA-256(cid)) of the global scope ("") and of
	// each protocol scope, so fingerprints cost nothing per page.
	digests map[string]*[sha256.Size]byte
}

// StreamID is the enbox stream id of a tenant: the first 8 bytes of SHA-256(did), as hex.
func StreamID(did string) string {
	sum := sha256.Sum256([]byte(did))
	return hex.EncodeToString(sum[:8])
}

func (n *Node) tenantLocked(did string) *tenant {
	t, ok := n.tenants[did]
	if !ok {
		t = &tenant{
			did:       did,
			streamID:  StreamID(did),
			byCID:     map[string]*stored{},
			records:   map[string]*record{},
			protocols: map[string]*stored{},
			digests:   map[string]*[sha256.Size]byte{},
		}
		if n.opts.Mode == ModeEnboxSMT {
			t.index = newStateIndex()
		}
		n.tenants[did] = t
	}
	return t
}

// add admits m: it gets the next feed position.
func (t *tenant) add(m *stored) {
	t.head++
	m.pos = t.head
	t.byCID[m.cid] = m
	t.feed = append(t.feed, m)
	t.toggleDigests(m)
	if t.index != nil {
		t.index.insert(m.cid, m.protocol)
	}
}

// remove deletes m from the store; its feed position becomes a hole.
func (t *tenant) remove(m *stored) {
	if _, ok := t.byCID[m.cid]; !ok {
		return
	}
	delete(t.byCID, m.cid)
	i := sort.Search(len(t.feed), func(i int) bool { return t.feed[i].pos >= m.pos })
	if i < len(t.feed) && t.feed[i] == m {
		t.feed = append(t.feed[:i], t.feed[i+1:]...)
	}
	t.toggleDigests(m)
	if t.index != nil {
		t.index.remove(m.cid, m.protocol)
	}
}

// after returns the index in feed of the first message with a position > pos.
func (t *tenant) after(pos uint64) int {
	return sort.Search(len(t.feed), func(i int) bool { return t.feed[i].pos > pos })
}

// at returns the message at position pos, if it is still stored.
func (t *tenant) at(pos uint64) *stored {
	i := sort.Search(len(t.feed), func(i int) bool { return t.feed[i].pos >= pos })
	if i < len(t.feed) && t.feed[i].pos == pos {
		return t.feed[i]
	}
	return nil
}

// token is the ProgressToken of position pos (with the CID of the entry there when cid != "").
func (n *Node) tokenLocked(t *tenant, pos uint64, cid string) dwn.Cursor {
	return dwn.Cursor{StreamID: t.streamID, Epoch: n.epoch, Position: strconv.FormatUint(pos, 10), MessageCID: cid}
}

// initialWriteOf is the initial write to attach to an event or query entry of m (updates and
// deletes), or nil.
func (t *tenant) initialWriteOf(m *stored) *stored {
	if m.info.Interface != "Records" || m.info.IsInitialWrite {
		return nil
	}
	if r := t.records[m.info.RecordID]; r != nil && r.initial != nil && r.initial != m {
		return r.initial
	}
	return nil
}

// isNewer reports whether a is a newer state than b (timestamp, then CID as the tie-break, as
// dwn-sdk-js does).
func isNewer(a, b *stored) bool {
	if a.info.MessageTimestamp != b.info.MessageTimestamp {
		return a.info.MessageTimestamp > b.info.MessageTimestamp
	}
	return a.cid > b.cid
}

// toggleDigests adds m to (or, applied again, removes it from) the running fingerprints of
// every scope it belongs to: XOR is its own inverse.
func (t *tenant) toggleDigests(m *stored) {
	h := sha256.Sum256([]byte(m.cid))
	scopes := []string{""}
	if m.protocol != "" {
		scopes = append(scopes, "protocol:"+m.protocol)
	}
	if m.protocol == permissionsProtocol && m.tagProtocol != "" {
		scopes = append(scopes, "protocol:"+m.tagProtocol)
	}
	for _, s := range scopes {
		d := t.digests[s]
		if d == nil {
			d = new([sha256.Size]byte)
			t.digests[s] = d
		}
		for i := range d {
			d[i] ^= h[i]
		}
	}
}

// digest is the running fingerprint of one scope, as hex.
func (t *tenant) digest(scope string) string {
	if d := t.digests[scope]; d != nil {
		return hex.EncodeToString(d[:])
	}
	return hex.EncodeToString(make([]byte, sha256.Size))
}
