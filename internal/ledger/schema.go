package ledger

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// SchemaVersion is the layout of the values this build writes.
//
// Version 1 is the enbox agent's ReplicationLinkState JSON
// (docs/engine-behaviour.md#schema-versions: tenantDid, pull {receivedToken,
// contiguousAppliedToken}, lastActivityAt, no push checkpoint, no schema field), so a ledger
// exported from an agent can be adopted. Version 2 is Record.
const SchemaVersion = 2

type storedRecord struct {
	Schema int `json:"schema"`
	Record
}

func encodeRecord(r Record) ([]byte, error) {
	return json.Marshal(storedRecord{Schema: SchemaVersion, Record: r})
}

// decodeRecord reads a stored value of any known schema; migrated reports that it was older
// and should be rewritten in the current layout.
func decodeRecord(key string, value []byte) (rec Record, migrated bool, err error) {
	var head struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(value, &head); err != nil {
		return Record{}, false, fmt.Errorf("ledger record %q is not JSON (%v)", key, err)
	}
	switch {
	case head.Schema == nil || *head.Schema == 1:
		rec, err := decodeV1(key, value)
		return rec, true, err
	case *head.Schema == SchemaVersion:
		var s storedRecord
		if err := json.Unmarshal(value, &s); err != nil {
			return Record{}, false, fmt.Errorf("ledger record %q (schema %d) is malformed: %v", key, SchemaVersion, err)
		}
		s.Record.Key = key
		return s.Record, false, nil
	case *head.Schema > SchemaVersion:
		return Record{}, false, fmt.Errorf("ledger record %q has schema %d, newer than this build understands (%d); run a newer dwnsync or point --state-dir at a fresh directory: %w", key, *head.Schema, SchemaVersion, errNewerSchema)
	default:
		return Record{}, false, fmt.Errorf("ledger record %q has unknown schema %d", key, *head.Schema)
	}
}

// v1 is the enbox ReplicationLinkState layout.
type v1Record struct {
	TenantDid      string `json:"tenantDid"`
	RemoteEndpoint string `json:"remoteEndpoint"`
	ScopeID        string `json:"scopeId"`
	Scope          struct {
		Kind                 string   `json:"kind"`
		Protocol             string   `json:"protocol"`
		ProtocolPathPrefixes []string `json:"protocolPathPrefixes"`
	} `json:"scope"`
	Status ls.Phase `json:"status"`
	Pull   struct {
		ReceivedToken          *dwn.Cursor `json:"receivedToken"`
		ContiguousAppliedToken *dwn.Cursor `json:"contiguousAppliedToken"`
	} `json:"pull"`
	NeedsReconcile bool   `json:"needsReconcile"`
	LastActivityAt string `json:"lastActivityAt"`
}

func decodeV1(key string, value []byte) (Record, error) {
	var v v1Record
	if err := json.Unmarshal(value, &v); err != nil {
		return Record{}, fmt.Errorf("ledger record %q (schema 1) is malformed: %v", key, err)
	}
	if v.TenantDid == "" {
		return Record{}, fmt.Errorf("ledger record %q has no schema field and no tenantDid; it was not written by dwnsync or the enbox agent", key)
	}
	rec := Record{
		Key:            key,
		Tenant:         v.TenantDid,
		RemoteEndpoint: v.RemoteEndpoint,
		ScopeID:        v.ScopeID,
		Phase:          v.Status,
		NeedsReconcile: v.NeedsReconcile,
	}
	if v.Scope.Kind == "protocol" {
		rec.Scope = dwn.Scope{Protocol: v.Scope.Protocol, ProtocolPathPrefixes: v.Scope.ProtocolPathPrefixes}
	}
	if rec.ScopeID == "" {
		rec.ScopeID = ScopeID(rec.Scope)
	}
	if rec.Phase == "" {
		rec.Phase = ls.Initializing
	}
	// Upstream discards tokens with an empty field (docs/protocol-notes.md#progress-tokens); so do
	// we.
	if t := v.Pull.ContiguousAppliedToken; t != nil && t.Valid() {
		rec.Pull.Contiguous = cursorPtr(*t)
	}
	if t := v.Pull.ReceivedToken; t != nil && t.Valid() {
		rec.Pull.Received = cursorPtr(*t)
	}
	if at, err := time.Parse(time.RFC3339Nano, v.LastActivityAt); err == nil {
		rec.LastActivity = at
	}
	return rec, nil
}
