package dialect

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// Dependency lookups (docs/protocol-notes.md#dependency-lookups): when a target answers Incomplete,
// the copier asks the SOURCE for what is missing. Records and Protocols queries are signed by the
// signer directly (no grant invocation): they work with the tenant's own key. A Messages-only
// delegate is refused those, and falls back to scanning the feed with MessagesRead. Entries come
// back in the order they must be applied: a record's initial write before its latest state.

func (t *tenantBase) dependency(ctx context.Context, ref dwn.DependencyRef, list lister) ([]dwn.Entry, error) {
	entries, err := t.lookupDependency(ctx, ref)
	refused := dwn.IsUnauthorized(err) || (err == nil && len(entries) == 0)
	if refused && t.delegate() && ref.MessageCID == "" {
		// A Messages-only delegate may not run Records/Protocols queries (refused, or answered
		// with only what it may see: nothing); find the dependency with what it may do: list
		// the feed and read messages until they match.
		return t.scanDependency(ctx, ref, list)
	}
	return entries, err
}

// lister lists a scope's CIDs in feed order, packed (dwn.ListCIDList over the dialect's
// tenant): a scan of a large tenant never holds its listing as a slice of strings.
type lister func(ctx context.Context, scope dwn.Scope) (*msg.CIDList, error)

// listerOf is t's lister.
func listerOf(t dwn.Tenant) lister {
	return func(ctx context.Context, scope dwn.Scope) (*msg.CIDList, error) {
		return dwn.ListCIDList(ctx, t, scope)
	}
}

func (t *tenantBase) lookupDependency(ctx context.Context, ref dwn.DependencyRef) ([]dwn.Entry, error) {
	switch {
	case ref.MessageCID != "":
		res, err := t.Read(ctx, ref.MessageCID)
		if err != nil {
			return nil, err
		}
		if res.Data != nil {
			res.Data.Close() // the copier streams data with its own Read
		}
		return []dwn.Entry{{CID: res.CID, Message: res.Message}}, nil
	case ref.Type == "Protocol" && ref.Protocol != "":
		return t.protocolsQuery(ctx, ref.Protocol)
	case ref.Type == "Grant" && ref.PermissionGrant != "":
		return t.recordByID(ctx, ref.PermissionGrant)
	case ref.RecordID != "":
		return t.recordByID(ctx, ref.RecordID)
	}
	return nil, &dwn.Error{Op: "dependency", Kind: dwn.Unsupported, Detail: fmt.Sprintf("cannot look up a %s reference without messageCid, protocol or recordId", ref.Type)}
}

// scanDependency is the delegate's fallback: one MessagesRead per listed CID (of ref's
// protocol when known) until the messages that satisfy ref are found. It costs a read per
// message, so it only runs when the direct queries are refused.
func (t *tenantBase) scanDependency(ctx context.Context, ref dwn.DependencyRef, list lister) ([]dwn.Entry, error) {
	recordID := ref.RecordID
	if ref.Type == "Grant" {
		recordID = ref.PermissionGrant
	}
	scope := dwn.Scope{Protocol: ref.Protocol}
	if ref.Type == "Grant" {
		scope = dwn.Scope{} // grants live in the permissions protocol, tagged with theirs
	}
	cids, err := list(ctx, scope)
	if err != nil {
		return nil, err
	}
	var initial, rest []dwn.Entry
	for i := range cids.Len() {
		cid := cids.At(i)
		res, err := t.Read(ctx, cid)
		if dwn.IsNotFound(err) {
			continue // pruned since the listing
		}
		if err != nil {
			return nil, err
		}
		if res.Data != nil {
			res.Data.Close()
		}
		info, err := msg.Inspect(res.Message)
		if err != nil {
			continue
		}
		switch {
		case ref.Type == "Protocol" && info.Kind() == "ProtocolsConfigure" && info.ConfiguredProtocol == ref.Protocol:
			rest = append(rest, dwn.Entry{CID: cid, Message: res.Message})
		case recordID != "" && info.RecordID == recordID && info.IsInitialWrite:
			initial = append(initial, dwn.Entry{CID: cid, Message: res.Message})
		case recordID != "" && info.RecordID == recordID:
			rest = append(rest, dwn.Entry{CID: cid, Message: res.Message})
		}
	}
	return append(initial, rest...), nil
}

// queryEntries sends <iface>Query (Protocols or Records) with filter and returns the reply's
// entries.
func (t *tenantBase) queryEntries(ctx context.Context, iface string, filter map[string]any) ([]json.RawMessage, error) {
	op := iface + "Query"
	signed, err := t.signOther(iface, "Query", map[string]any{"filter": filter})
	if err != nil {
		return nil, err
	}
	reply, _, err := t.process(ctx, op, signed, 200)
	if err != nil {
		return nil, err
	}
	var r struct {
		Entries []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(reply.Raw, &r); err != nil {
		return nil, &dwn.Error{Op: op, Kind: dwn.Transient, Detail: "malformed reply: " + err.Error()}
	}
	return r.Entries, nil
}

func (t *tenantBase) protocolsQuery(ctx context.Context, protocol string) ([]dwn.Entry, error) {
	entries, err := t.queryEntries(ctx, "Protocols", map[string]any{"protocol": protocol})
	if err != nil {
		return nil, err
	}
	out := make([]dwn.Entry, 0, len(entries))
	for _, m := range entries {
		e, err := entryFromMessage(m, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// recordByID returns a record's initial write (when it differs from the latest state) and its
// latest state: RecordsQuery by recordId, or — for a deleted record, which RecordsQuery no
// longer lists — RecordsRead, whose 404 carries the delete and the initial write.
func (t *tenantBase) recordByID(ctx context.Context, recordID string) ([]dwn.Entry, error) {
	entries, err := t.queryEntries(ctx, "Records", map[string]any{"recordId": recordID})
	if err != nil {
		return nil, err
	}
	var out []dwn.Entry
	for _, raw := range entries {
		var extra struct {
			InitialWrite json.RawMessage `json:"initialWrite"`
		}
		_ = json.Unmarshal(raw, &extra)
		if len(extra.InitialWrite) > 0 && string(extra.InitialWrite) != "null" {
			iw, err := entryFromMessage(extra.InitialWrite, nil)
			if err != nil {
				return nil, err
			}
			out = append(out, iw)
		}
		e, err := entryFromMessage(raw, extra.InitialWrite)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		return out, nil
	}
	return t.deletedRecord(ctx, recordID)
}

func (t *tenantBase) deletedRecord(ctx context.Context, recordID string) ([]dwn.Entry, error) {
	signed, err := t.signOther("Records", "Read", map[string]any{"filter": map[string]any{"recordId": recordID}})
	if err != nil {
		return nil, err
	}
	reply, body, err := t.process(ctx, "RecordsRead", signed, 200, 404)
	if err != nil {
		return nil, err
	}
	if body != nil {
		body.Close() // a live record: RecordsQuery raced with a write; let the copier retry
	}
	var r struct {
		Entry *struct {
			RecordsDelete json.RawMessage `json:"recordsDelete"`
			InitialWrite  json.RawMessage `json:"initialWrite"`
		} `json:"entry"`
	}
	_ = json.Unmarshal(reply.Raw, &r)
	if r.Entry == nil || len(r.Entry.InitialWrite) == 0 {
		return nil, nil // the source does not have it either
	}
	var out []dwn.Entry
	for _, m := range []json.RawMessage{r.Entry.InitialWrite, r.Entry.RecordsDelete} {
		if len(m) == 0 || string(m) == "null" {
			continue
		}
		e, err := entryFromMessage(m, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// entryFromMessage turns a message as a reply carried it (maybe with encodedData and
// initialWrite attached) into an Entry with the exact stored message and its CID.
func entryFromMessage(raw, initialWrite json.RawMessage) (dwn.Entry, error) {
	message, inline, err := splitEncodedData(raw)
	if err != nil {
		return dwn.Entry{}, &dwn.Error{Op: "dependency", Kind: dwn.Permanent, Detail: err.Error()}
	}
	message, err = msg.StripForApply(message)
	if err != nil {
		return dwn.Entry{}, &dwn.Error{Op: "dependency", Kind: dwn.Permanent, Detail: err.Error()}
	}
	cid, err := msg.MessageCID(message)
	if err != nil {
		return dwn.Entry{}, &dwn.Error{Op: "dependency", Kind: dwn.Permanent, Detail: err.Error()}
	}
	e := dwn.Entry{CID: cid, Message: message, InlineData: inline}
	if len(initialWrite) > 0 && string(initialWrite) != "null" {
		e.InitialWrite = initialWrite
	}
	return e, nil
}
