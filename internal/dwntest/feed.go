package dwntest

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// messagesFilter is one MessagesFilter; filters of a request are OR-ed.
type messagesFilter struct {
	Interface          string `json:"interface,omitempty"`
	Method             string `json:"method,omitempty"`
	Protocol           string `json:"protocol,omitempty"`
	ProtocolPathPrefix string `json:"protocolPathPrefix,omitempty"`
	ContextIDPrefix    string `json:"contextIdPrefix,omitempty"`
	MessageTimestamp   *struct {
		From string `json:"from,omitempty"`
		To   string `json:"to,omitempty"`
	} `json:"messageTimestamp,omitempty"`
}

func (f messagesFilter) matches(m *stored) bool {
	if f.Interface != "" && f.Interface != m.info.Interface {
		return false
	}
	if f.Method != "" && f.Method != m.info.Method {
		return false
	}
	if f.Protocol != "" && !protocolMatches(f.Protocol, m) {
		return false
	}
	if f.ProtocolPathPrefix != "" && !pathPrefixMatches(f.ProtocolPathPrefix, m.protocolPath) {
		return false
	}
	if f.ContextIDPrefix != "" && !pathPrefixMatches(f.ContextIDPrefix, m.contextID) {
		return false
	}
	if ts := f.MessageTimestamp; ts != nil {
		if ts.From != "" && m.info.MessageTimestamp < ts.From {
			return false
		}
		if ts.To != "" && m.info.MessageTimestamp >= ts.To {
			return false
		}
	}
	return true
}

// onlyProtocol reports whether the filter is exactly {"protocol": X} (fingerprintable).
func (f messagesFilter) onlyProtocol() bool {
	return f.Protocol != "" && f.Interface == "" && f.Method == "" && f.ProtocolPathPrefix == "" &&
		f.ContextIDPrefix == "" && f.MessageTimestamp == nil
}

// protocolMatches includes the "shadow" matches of a protocol filter: permission records
// tagged with that protocol belong to its scope.
func protocolMatches(protocol string, m *stored) bool {
	if m.protocol == protocol {
		return true
	}
	return m.protocol == permissionsProtocol && m.tagProtocol == protocol
}

func pathPrefixMatches(prefix, value string) bool {
	return value == prefix || strings.HasPrefix(value, prefix+"/")
}

func matchesAny(filters []messagesFilter, m *stored) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if f.matches(m) {
			return true
		}
	}
	return false
}

// fingerprintable reports whether the server reports a fingerprint for these filters.
func fingerprintable(filters []messagesFilter) bool {
	for _, f := range filters {
		if !f.onlyProtocol() {
			return false
		}
	}
	return true
}

// fingerprintLocked is the XOR of SHA-256(cid) over every stored message matching filters.
func fingerprintLocked(t *tenant, filters []messagesFilter) string {
	switch {
	case len(filters) == 0:
		return t.digest("")
	case len(filters) == 1 && filters[0].Protocol != permissionsProtocol:
		return t.digest("protocol:" + filters[0].Protocol)
	}
	// Several protocols: a message may be in more than one of them, so count it once.
	cids := make([]string, 0, len(t.feed))
	for _, m := range t.feed {
		if matchesAny(filters, m) {
			cids = append(cids, m.cid)
		}
	}
	return msg.ListingDigest(cids)
}

// gap is a ProgressGap (reply 410) with the bounds the node can offer.
type gap struct {
	Code            string      `json:"code"`
	Reason          string      `json:"reason"`
	Requested       dwn.Cursor  `json:"requested"`
	OldestAvailable *dwn.Cursor `json:"oldestAvailable,omitempty"`
	LatestAvailable *dwn.Cursor `json:"latestAvailable,omitempty"`
}

// errInvalidToken marks a token whose position is not canonical.
type errInvalidToken struct{ position string }

func (e errInvalidToken) Error() string {
	return "ProgressTokenInvalid: position " + strconv.Quote(e.position) + " is not a canonical unsigned decimal"
}

// checkCursorLocked validates a resume token in the order of the feed contract
// (docs/protocol-notes.md#cursor-validation-order) and returns its position.
func (n *Node) checkCursorLocked(t *tenant, c dwn.Cursor) (uint64, *gap, error) {
	g := func(reason string) *gap {
		oldest := n.tokenLocked(t, t.floor, "")
		if t.floor == 0 {
			oldest = n.tokenLocked(t, 0, "")
		}
		latest := n.tokenLocked(t, t.head, "")
		if m := t.at(t.head); m != nil {
			latest.MessageCID = m.cid
		}
		return &gap{Code: "ProgressGap", Reason: reason, Requested: c, OldestAvailable: &oldest, LatestAvailable: &latest}
	}
	if c.StreamID != t.streamID {
		return 0, g("stream_mismatch"), nil
	}
	if c.Epoch != n.epoch {
		return 0, g("epoch_mismatch"), nil
	}
	pos, err := strconv.ParseUint(c.Position, 10, 64)
	if err != nil || strconv.FormatUint(pos, 10) != c.Position {
		return 0, nil, errInvalidToken{c.Position}
	}
	if pos > t.head {
		return 0, g("token_too_new"), nil
	}
	if pos < t.floor {
		return 0, g("token_too_old"), nil
	}
	if c.MessageCID != "" {
		if m := t.at(pos); m != nil && m.cid != c.MessageCID {
			return 0, g("message_mismatch"), nil
		}
	}
	return pos, nil, nil
}

// feedEntry is one MessagesQuery entry.
type feedEntry struct {
	Seq               string          `json:"seq"`
	MessageCID        string          `json:"messageCid"`
	IsLatestBaseState bool            `json:"isLatestBaseState"`
	Protocol          string          `json:"protocol,omitempty"`
	Message           json.RawMessage `json:"message,omitempty"`
	EncodedData       string          `json:"encodedData,omitempty"`
}

// feedPage is the body of a MessagesQuery 200 reply (status added by the caller).
type feedPage struct {
	Entries     []feedEntry `json:"entries"`
	Cursor      dwn.Cursor  `json:"cursor"`
	Drained     bool        `json:"drained"`
	Fingerprint string      `json:"fingerprint,omitempty"`
}

// queryFeedLocked scans the feed after `from` (exclusive) and returns up to limit matching
// entries. The page cursor is the scan's high-water mark.
func (n *Node) queryFeedLocked(t *tenant, filters []messagesFilter, from uint64, limit int, cidsOnly bool) feedPage {
	headAtStart := t.head
	page := feedPage{Entries: []feedEntry{}}
	scanned := from
	lastCID := ""
	if limit > 0 {
		for i := t.after(from); i < len(t.feed); i++ {
			m := t.feed[i]
			scanned, lastCID = m.pos, ""
			if !matchesAny(filters, m) {
				continue
			}
			page.Entries = append(page.Entries, n.entryLocked(m, cidsOnly))
			lastCID = m.cid
			if len(page.Entries) == limit {
				break
			}
		}
		if len(page.Entries) < limit {
			scanned, lastCID = headAtStart, ""
		}
	}
	if scanned == headAtStart && lastCID == "" {
		if m := t.at(scanned); m != nil && matchesAny(filters, m) {
			lastCID = m.cid
		}
	}
	page.Cursor = n.tokenLocked(t, scanned, lastCID)
	page.Drained = scanned >= headAtStart
	if fingerprintable(filters) {
		page.Fingerprint = fingerprintLocked(t, filters)
	}
	return page
}

func (n *Node) entryLocked(m *stored, cidsOnly bool) feedEntry {
	e := feedEntry{Seq: strconv.FormatUint(m.pos, 10), MessageCID: m.cid, IsLatestBaseState: m.latest, Protocol: m.protocol}
	if !cidsOnly {
		e.Message = n.serveMessageLocked(m, servedQuery)
		e.EncodedData = n.inlineDataLocked(m)
	}
	return e
}

// inlineDataLocked is the base64url data a server attaches to entries, events and diff
// entries (≤ 30,000 bytes), or "".
func (n *Node) inlineDataLocked(m *stored) string {
	if len(m.data) == 0 || len(m.data) > inlineDataLimit {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(n.serveDataLocked(m))
}
