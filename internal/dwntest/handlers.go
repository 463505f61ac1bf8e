package dwntest

import (
	"encoding/json"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// requestDescriptor holds the descriptor fields of the messages the node answers (queries,
// reads, subscribe, sync). Unknown fields are ignored.
type requestDescriptor struct {
	Interface          string            `json:"interface"`
	Method             string            `json:"method"`
	MessageTimestamp   string            `json:"messageTimestamp"`
	Filters            []messagesFilter  `json:"filters"`
	Filter             recordsFilter     `json:"filter"`
	Cursor             *dwn.Cursor       `json:"cursor"`
	Limit              *int              `json:"limit"`
	CIDsOnly           bool              `json:"cidsOnly"`
	MessageCID         string            `json:"messageCid"`
	PermissionGrantIDs []string          `json:"permissionGrantIds"`
	PermissionGrantID  string            `json:"permissionGrantId"`
	Action             string            `json:"action"`
	Prefix             *string           `json:"prefix"`
	Protocol           string            `json:"protocol"`
	Hashes             map[string]string `json:"hashes"`
	Depth              *int              `json:"depth"`
}

// recordsFilter is the filter of RecordsQuery / RecordsRead / ProtocolsQuery.
type recordsFilter struct {
	RecordID     string `json:"recordId"`
	Protocol     string `json:"protocol"`
	ProtocolPath string `json:"protocolPath"`
	ParentID     string `json:"parentId"`
	ContextID    string `json:"contextId"`
	Recipient    string `json:"recipient"`
}

// request is a parsed, signature-checked request message.
type request struct {
	desc   requestDescriptor
	author string
	grant  string // payload permissionGrantId (Records/Protocols invocations)
}

func parseRequest(raw json.RawMessage) (request, reply, bool) {
	var m struct {
		Descriptor requestDescriptor `json:"descriptor"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return request{}, statusReply(400, "SchemaValidatorFailure: "+err.Error()), false
	}
	info, err := msg.Inspect(raw)
	if err != nil {
		return request{}, statusReply(400, "SchemaValidatorFailure: "+err.Error()), false
	}
	if m.Descriptor.MessageTimestamp == "" {
		return request{}, statusReply(400, "SchemaValidatorFailure: descriptor.messageTimestamp is required"), false
	}
	if err := msg.VerifyMessage(raw); err != nil {
		return request{}, statusReply(401, "GeneralJwsVerifierInvalidSignature: "+err.Error()), false
	}
	return request{desc: m.Descriptor, author: info.Author, grant: info.PermissionGrantID}, reply{}, true
}

func messageKind(raw json.RawMessage) string {
	var m struct {
		Descriptor struct {
			Interface string `json:"interface"`
			Method    string `json:"method"`
		} `json:"descriptor"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Descriptor.Interface + m.Descriptor.Method
}

// processMessage is dwn.processMessage: a write, or one of the queries/reads the node serves.
func (n *Node) processMessage(p rpcParams, data []byte, via transport) (reply, *rpcError) {
	kind := messageKind(p.Message)
	n.counter.add(kind)
	switch kind {
	case "RecordsWrite", "RecordsDelete", "ProtocolsConfigure":
		if kind == "RecordsWrite" && via == transportWS {
			return reply{}, &rpcError{Code: codeInvalidParams, Message: "RecordsWrite is not supported via ws"}
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.faults.inactive[p.Target] {
			return statusReply(401, "TenantGateTenantInactive: tenant "+p.Target+" is not active on this DWN"), nil
		}
		o := n.admitLocked(n.tenantLocked(p.Target), p.Message, data)
		return statusReply(o.code, o.detail), nil
	case "MessagesSubscribe":
		return reply{}, &rpcError{Code: codeInvalidRequest, Message: "subscribe methods must contain a subscriptionRequest context"}
	}
	req, rep, ok := parseRequest(p.Message)
	if !ok {
		return rep, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tenantLocked(p.Target)
	switch kind {
	case "MessagesQuery":
		return n.messagesQueryLocked(t, req), nil
	case "MessagesRead":
		return n.messagesReadLocked(t, req), nil
	case "MessagesSync":
		if n.opts.Mode != ModeEnboxSMT {
			return statusReply(400, "SchemaValidatorFailure: no schema for Messages Sync"), nil
		}
		return n.messagesSyncLocked(t, req), nil
	case "RecordsQuery":
		return n.recordsQueryLocked(t, req), nil
	case "RecordsRead":
		return n.recordsReadLocked(t, req), nil
	case "ProtocolsQuery":
		return n.protocolsQueryLocked(t, req), nil
	default:
		return statusReply(400, "DwnInterfaceMethodNotSupported: "+kind+" is not served by this node"), nil
	}
}

// applyReplicated is dwn.applyReplicatedMessage (enbox mode only).
func (n *Node) applyReplicated(p rpcParams, data []byte, via transport) (reply, *rpcError) {
	n.counter.add("apply:" + messageKind(p.Message))
	if p.EncodedData != nil {
		b, err := decodeEncodedData(*p.EncodedData)
		if err != nil {
			return reply{}, err
		}
		data = b
	}
	if via == transportWS && messageKind(p.Message) == "RecordsWrite" && data == nil {
		if info, err := msg.Inspect(p.Message); err == nil && info.DataSize > 0 {
			return reply{}, &rpcError{Code: codeInvalidParams, Message: "RecordsWrite with data needs params.encodedData over ws"}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var o outcome
	switch {
	case n.faults.inactive[p.Target]:
		o = outcome{kind: dwn.Deferred, reason: "tenant-inactive"}
	case n.faults.deferNext > 0:
		n.faults.deferNext--
		o = outcome{kind: dwn.Deferred, reason: n.faults.deferReason}
	default:
		o = n.admitLocked(n.tenantLocked(p.Target), p.Message, data)
	}
	return reply{body: map[string]any{"result": applyResultJSON(o)}}, nil
}

func applyResultJSON(o outcome) map[string]any {
	r := map[string]any{"kind": string(o.kind)}
	switch o.kind {
	case dwn.Applied:
		if o.ancestryOnly {
			r["ancestryOnly"] = true
		}
		if o.position != nil {
			r["position"] = o.position
		}
	case dwn.Incomplete:
		r["missing"] = o.missing
	case dwn.Invalid, dwn.Deferred:
		r["reason"] = o.reason
	}
	return r
}

// messagesQueryLocked serves the durable feed (enbox) or says there is none (enbox-smt).
func (n *Node) messagesQueryLocked(t *tenant, req request) reply {
	if n.opts.Mode != ModeEnbox {
		return statusReply(501, "MessagesQueryReplicationFeedUnimplemented: this store has no replication feed reader")
	}
	if req.desc.Filters == nil {
		return statusReply(400, "SchemaValidatorFailure: descriptor.filters is required")
	}
	if code, detail := n.authorizeMessagesLocked(t, req, "MessagesQuery", nil); code != 0 {
		return statusReply(code, detail)
	}
	limit := 100
	if req.desc.Limit != nil {
		limit = *req.desc.Limit
		if limit < 0 || limit > 1000 {
			return statusReply(400, "SchemaValidatorFailure: limit must be between 0 and 1000")
		}
	}
	var from uint64
	if c := req.desc.Cursor; c != nil {
		pos, g, err := n.checkCursorLocked(t, *c)
		if err != nil {
			return statusReply(400, err.Error())
		}
		if g != nil {
			return gapReply(g)
		}
		from = pos
	}
	page := n.queryFeedLocked(t, req.desc.Filters, from, limit, req.desc.CIDsOnly)
	body := status(200, "OK")
	body["entries"] = page.Entries
	body["cursor"] = page.Cursor
	body["drained"] = page.Drained
	if page.Fingerprint != "" {
		body["fingerprint"] = page.Fingerprint
	}
	return reply{body: body}
}

func gapReply(g *gap) reply {
	body := status(410, "Progress token gap")
	body["error"] = g
	return reply{body: body}
}

// messagesReadLocked serves one message; RecordsWrite data travels as the HTTP body.
func (n *Node) messagesReadLocked(t *tenant, req request) reply {
	m := t.byCID[req.desc.MessageCID]
	if req.desc.MessageCID == "" {
		return statusReply(400, "SchemaValidatorFailure: descriptor.messageCid is required")
	}
	if code, detail := n.authorizeMessagesLocked(t, req, "MessagesRead", m); code != 0 {
		return statusReply(code, detail)
	}
	if m == nil {
		return statusReply(404, "Not Found")
	}
	body := status(200, "OK")
	body["entry"] = map[string]any{"messageCid": m.cid, "message": n.serveMessageLocked(m, servedRead)}
	return reply{body: body, data: n.serveDataLocked(m)}
}

// recordsQueryLocked answers the dependency lookups of docs/protocol-notes.md#dependency-lookups:
// the newest write of each matching record, with its initial write and inline data.
func (n *Node) recordsQueryLocked(t *tenant, req request) reply {
	f := req.desc.Filter
	if code, detail := n.authorizeRecordsLocked(t, req, f.Protocol); code != 0 {
		return statusReply(code, detail)
	}
	entries := []json.RawMessage{}
	for _, m := range t.feed { // feed order = admission order
		r := t.records[m.info.RecordID]
		if m.info.Kind() != "RecordsWrite" || r == nil || r.latest != m || !recordMatches(f, m) {
			continue
		}
		entries = append(entries, n.recordEntryLocked(t, m))
	}
	body := status(200, "OK")
	body["entries"] = entries
	return reply{body: body}
}

func recordMatches(f recordsFilter, m *stored) bool {
	return (f.RecordID == "" || f.RecordID == m.info.RecordID) &&
		(f.Protocol == "" || f.Protocol == m.info.Protocol) &&
		(f.ProtocolPath == "" || f.ProtocolPath == m.info.ProtocolPath) &&
		(f.ParentID == "" || f.ParentID == m.info.ParentID) &&
		(f.ContextID == "" || pathPrefixMatches(f.ContextID, m.contextID)) &&
		(f.Recipient == "" || f.Recipient == recipientOf(m.raw))
}

// recordEntryLocked is a RecordsQuery entry: the message plus initialWrite and encodedData.
func (n *Node) recordEntryLocked(t *tenant, m *stored) json.RawMessage {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(n.serveMessageLocked(m, servedQuery), &obj)
	if iw := t.initialWriteOf(m); iw != nil {
		obj["initialWrite"] = iw.raw
	}
	if s := n.inlineDataLocked(m); s != "" {
		obj["encodedData"], _ = json.Marshal(s)
	}
	b, _ := json.Marshal(obj)
	return b
}

// recordsReadLocked serves the newest write of one record with its data. A deleted record is a
// 404 that still carries the delete and the initial write, as dwn-sdk-js answers: that is how
// a replicator fetches what a target needs before it can accept the delete.
func (n *Node) recordsReadLocked(t *tenant, req request) reply {
	f := req.desc.Filter
	if code, detail := n.authorizeRecordsLocked(t, req, f.Protocol); code != 0 {
		return statusReply(code, detail)
	}
	r := t.records[f.RecordID]
	if r != nil && r.initial != nil && r.deleted() {
		body := status(404, "Not Found")
		body["entry"] = map[string]any{"recordsDelete": n.serveMessageLocked(r.latest, servedRead), "initialWrite": r.initial.raw}
		return reply{body: body}
	}
	if r == nil || r.latest == nil {
		return statusReply(404, "Not Found")
	}
	entry := map[string]any{"recordsWrite": n.serveMessageLocked(r.latest, servedRead)}
	if iw := t.initialWriteOf(r.latest); iw != nil {
		entry["initialWrite"] = iw.raw
	}
	body := status(200, "OK")
	body["entry"] = entry
	return reply{body: body, data: n.serveDataLocked(r.latest)}
}

// protocolsQueryLocked lists the newest configuration of each (or one) protocol. Protocols
// are treated as published: anyone may query them.
func (n *Node) protocolsQueryLocked(t *tenant, req request) reply {
	entries := []json.RawMessage{}
	for _, m := range t.feed {
		if m.info.Kind() != "ProtocolsConfigure" || t.protocols[m.protocol] != m {
			continue
		}
		if req.desc.Filter.Protocol != "" && req.desc.Filter.Protocol != m.protocol {
			continue
		}
		entries = append(entries, n.serveMessageLocked(m, servedQuery))
	}
	body := status(200, "OK")
	body["entries"] = entries
	return reply{body: body}
}

func recipientOf(raw json.RawMessage) string {
	var m struct {
		Descriptor struct {
			Recipient string `json:"recipient"`
		} `json:"descriptor"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Descriptor.Recipient
}
