package dwntest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// permissionsProtocol is the core protocol of permission grants, requests and revocations. It
// needs no ProtocolsConfigure on the tenant.
const permissionsProtocol = "https://identity.foundation/dwn/permissions"

// outcome is what admitting one message produced, in both vocabularies: the DWN reply of
// dwn.processMessage (code, detail) and the dwn.applyReplicatedMessage result.
type outcome struct {
	code   int
	detail string

	kind         dwn.ApplyKind
	reason       string
	missing      []dwn.DependencyRef
	ancestryOnly bool
	position     *dwn.Cursor
}

func applied(code int, m *stored) outcome {
	o := outcome{code: code, detail: "Accepted", kind: dwn.Applied, ancestryOnly: code == 204}
	if code == 204 {
		o.detail = "No Content"
	}
	return o
}

func invalid(code int, dwnCode, msg string) outcome {
	return outcome{code: code, detail: dwnCode + ": " + msg, kind: dwn.Invalid, reason: dwnCode + ": " + msg}
}

func superseded(dwnCode, msg string) outcome {
	return outcome{code: 409, detail: dwnCode + ": " + msg, kind: dwn.Superseded}
}

func incomplete(code int, dwnCode, msg string, refs ...dwn.DependencyRef) outcome {
	return outcome{code: code, detail: dwnCode + ": " + msg, kind: dwn.Incomplete, missing: refs}
}

// admitLocked stores one signed message (raw may still carry encodedData; data is the record
// data or nil when none was sent). It is the whole write path of the node: processMessage,
// applyReplicatedMessage and the direct Write all land here.
func (n *Node) admitLocked(t *tenant, raw json.RawMessage, data []byte) outcome {
	raw, err := dwnmsg.StripForApply(raw)
	if err != nil {
		return invalid(400, "MessageInvalid", err.Error())
	}
	raw = compactJSON(raw)
	cid, err := dwnmsg.MessageCID(raw)
	if err != nil {
		return invalid(400, "MessageInvalid", err.Error())
	}
	info, err := dwnmsg.Inspect(raw)
	if err != nil {
		return invalid(400, "MessageInvalid", err.Error())
	}
	if info.MessageTimestamp == "" {
		return invalid(400, "SchemaValidatorFailure", "descriptor.messageTimestamp is required")
	}
	if err := dwnmsg.VerifyMessage(raw); err != nil {
		return invalid(401, "GeneralJwsVerifierInvalidSignature", err.Error())
	}
	return n.admitStoredLocked(t, newStored(cid, raw, info), data)
}

func newStored(cid string, raw json.RawMessage, info dwnmsg.MessageInfo) *stored {
	return &stored{cid: cid, raw: raw, info: info, author: info.Author, protocol: info.ScopeProtocol(),
		protocolPath: info.ProtocolPath, contextID: info.ContextID}
}

// admitStoredLocked admits a message whose CID and fields are known and whose signature holds.
func (n *Node) admitStoredLocked(t *tenant, m *stored, data []byte) outcome {
	if existing := t.byCID[m.cid]; existing != nil {
		return n.admitKnownLocked(t, existing, data)
	}
	var o outcome
	switch info := m.info; info.Kind() {
	case "ProtocolsConfigure":
		o = n.admitConfigureLocked(t, m)
	case "RecordsWrite":
		o = n.admitWriteLocked(t, m, data)
	case "RecordsDelete":
		o = n.admitDeleteLocked(t, m)
	default:
		return invalid(400, "MessageInterfaceMethodNotStorable", fmt.Sprintf("%s is not a stored message kind", info.Kind()))
	}
	if o.kind == dwn.Applied {
		pos := n.tokenLocked(t, m.pos, m.cid)
		o.position = &pos
		n.wakeLocked()
	}
	return o
}

// admitKnownLocked handles a CID the tenant already stores: a duplicate, or the data of an
// initial write that was stored without it (an in-place transition that keeps its position).
func (n *Node) admitKnownLocked(t *tenant, m *stored, data []byte) outcome {
	if m.info.Kind() == "RecordsWrite" && m.data == nil && data != nil && m.info.DataSize > 0 {
		r := t.records[m.info.RecordID]
		if r != nil && r.latest == m {
			if o, ok := checkData(m, data); !ok {
				return o
			}
			m.data = data
			m.latest = true
			n.wakeLocked()
			o := applied(202, m)
			pos := n.tokenLocked(t, m.pos, m.cid)
			o.position = &pos
			return o
		}
	}
	return outcome{code: 409, detail: "Conflict: message already stored", kind: dwn.Duplicate}
}

func (n *Node) admitConfigureLocked(t *tenant, m *stored) outcome {
	if m.author != t.did {
		return invalid(401, "ProtocolsConfigureAuthorizationFailed", "only the tenant may configure protocols")
	}
	if m.protocol == "" {
		return invalid(400, "SchemaValidatorFailure", "definition.protocol is required")
	}
	if prev := t.protocols[m.protocol]; prev != nil {
		if isNewer(prev, m) {
			return superseded("ProtocolsConfigureNewerExists", "a newer configuration of this protocol is stored")
		}
		t.remove(prev)
	}
	m.latest = true
	t.protocols[m.protocol] = m
	t.add(m)
	return applied(202, m)
}

func (n *Node) admitWriteLocked(t *tenant, m *stored, data []byte) outcome {
	info := m.info
	if info.RecordID == "" {
		return invalid(400, "SchemaValidatorFailure", "recordId is required")
	}
	r := t.records[info.RecordID]
	if !info.IsInitialWrite && (r == nil || r.initial == nil) {
		// Checked first, as the DWN does: an update is matched to its record before its protocol.
		return incomplete(400, "RecordsWriteGetInitialWriteNotFound", "initial write is not found",
			dwn.DependencyRef{Type: "InitialWrite", RecordID: info.RecordID, Protocol: info.Protocol})
	}
	if id := info.PermissionGrantID; id != "" && (t.records[id] == nil || t.records[id].initial == nil) {
		return incomplete(401, "GrantAuthorizationGrantMissing", "permission grant "+id+" is not stored",
			dwn.DependencyRef{Type: "Grant", PermissionGrant: id})
	}
	if info.Protocol != "" && info.Protocol != permissionsProtocol && t.protocols[info.Protocol] == nil {
		return incomplete(400, "ProtocolAuthorizationProtocolNotFound", "unable to find protocol definition for "+info.Protocol,
			dwn.DependencyRef{Type: "Protocol", Protocol: info.Protocol})
	}
	m.tagProtocol = tagProtocolOf(m.raw)
	if info.IsInitialWrite {
		if r != nil && r.initial != nil {
			// Same recordId, different initial write: the record already exists.
			return superseded("RecordsWriteInitialWriteExists", "the record already has an initial write")
		}
		if refs := t.missingAncestors(info); len(refs) > 0 {
			return incomplete(400, "ProtocolAuthorizationParentNotFound", "no parent found with ID "+info.ParentID, refs...)
		}
		if o, ok := checkData(m, data); !ok {
			return o
		}
		r = &record{initial: m, latest: m}
		t.records[info.RecordID] = r
		m.data = data
		m.latest = data != nil || info.DataSize == 0
		t.add(m)
		if !m.latest {
			return applied(204, m) // stored as ancestry; the data is still owed
		}
		return applied(202, m)
	}
	if r.deleted() {
		return superseded("RecordsWriteNotAllowedAfterDelete", "record "+info.RecordID+" was deleted")
	}
	if isNewer(r.latest, m) {
		return superseded("RecordsWriteNewerExists", "a newer write of this record is stored")
	}
	if data == nil && info.DataSize > 0 {
		// dwn-sdk-js reuses the data of the state being replaced when the dataCid is unchanged.
		if prev := r.latest; prev.data != nil && prev.info.DataCID == info.DataCID {
			data = prev.data
		} else {
			return incomplete(400, "RecordsWriteMissingData", "data of "+info.DataCID+" is not available",
				dwn.DependencyRef{Type: "RecordData", RecordID: info.RecordID, Protocol: info.Protocol, MessageCID: m.cid})
		}
	}
	if o, ok := checkData(m, data); !ok {
		return o
	}
	m.contextID = r.initial.contextID
	n.replaceLatestLocked(t, r, m)
	m.data = data
	m.latest = true
	t.add(m)
	return applied(202, m)
}

func (n *Node) admitDeleteLocked(t *tenant, m *stored) outcome {
	r := t.records[m.info.RecordID]
	if r == nil || r.initial == nil {
		return incomplete(404, "RecordsDeleteGetInitialWriteNotFound", "record "+m.info.RecordID+" not found",
			dwn.DependencyRef{Type: "InitialWrite", RecordID: m.info.RecordID})
	}
	if isNewer(r.latest, m) {
		return superseded("RecordsDeleteNewerExists", "a newer state of this record is stored")
	}
	if id := m.info.PermissionGrantID; id != "" && (t.records[id] == nil || t.records[id].initial == nil) {
		return incomplete(401, "GrantAuthorizationGrantMissing", "permission grant "+id+" is not stored",
			dwn.DependencyRef{Type: "Grant", PermissionGrant: id})
	}
	// Deletes carry the indexes of the record they delete.
	m.protocol, m.protocolPath, m.contextID = r.initial.protocol, r.initial.protocolPath, r.initial.contextID
	m.tagProtocol = r.initial.tagProtocol
	n.replaceLatestLocked(t, r, m)
	m.latest = true
	t.add(m)
	return applied(202, m)
}

// missingAncestors lists, root first, the ancestors of a new child record the tenant lacks:
// the contextId names the whole chain (root/…/parent/self). Empty when the parent is stored.
func (t *tenant) missingAncestors(info dwnmsg.MessageInfo) []dwn.DependencyRef {
	if info.ParentID == "" {
		return nil
	}
	if p := t.records[info.ParentID]; p != nil && p.initial != nil {
		return nil
	}
	chain := strings.Split(info.ContextID, "/")
	if len(chain) < 2 || chain[len(chain)-2] != info.ParentID {
		chain = []string{info.ParentID, info.RecordID} // no usable contextId: the parent alone
	}
	var refs []dwn.DependencyRef
	for _, id := range chain[:len(chain)-1] {
		if r := t.records[id]; r != nil && r.initial != nil {
			continue
		}
		kind := "Ancestor"
		if id == info.ParentID {
			kind = "Parent"
		}
		refs = append(refs, dwn.DependencyRef{Type: kind, RecordID: id, Protocol: info.Protocol})
	}
	return refs
}

// replaceLatestLocked makes m the record's newest state. The previous newest state leaves the
// store (its feed row disappears) unless it is the initial write, which stays as history
// without data and with isLatestBaseState false.
func (n *Node) replaceLatestLocked(t *tenant, r *record, m *stored) {
	prev := r.latest
	if prev == r.initial {
		prev.latest = false
		prev.data = nil
	} else {
		t.remove(prev)
	}
	r.latest = m
}

// checkData validates record data against the descriptor: size and UnixFS data CID.
func checkData(m *stored, data []byte) (outcome, bool) {
	if data == nil {
		return outcome{}, true
	}
	if int64(len(data)) != m.info.DataSize {
		return invalid(400, "RecordsWriteDataSizeMismatch",
			fmt.Sprintf("data is %d bytes, descriptor.dataSize is %d", len(data), m.info.DataSize)), false
	}
	if m.info.DataCID != "" {
		if cid, _, err := dwnmsg.DataCID(bytes.NewReader(data)); err != nil || cid != m.info.DataCID {
			return invalid(400, "RecordsWriteDataCidMismatch", "data does not match descriptor.dataCid"), false
		}
	}
	return outcome{}, true
}

func tagProtocolOf(raw json.RawMessage) string {
	var m struct {
		Descriptor struct {
			Tags struct {
				Protocol string `json:"protocol"`
			} `json:"tags"`
		} `json:"descriptor"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Descriptor.Tags.Protocol
}

// compactJSON drops insignificant whitespace so stored messages are served compactly; the CID
// does not depend on it.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
