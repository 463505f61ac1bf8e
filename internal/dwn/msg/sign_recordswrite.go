package msg

import (
	"encoding/json"
	"errors"
	"fmt"
)

// recordsWritePayload is the signature payload of a RecordsWrite
// (docs/protocol-notes.md#recordswrite-payload): the generic descriptorCid plus the record's
// identity, so a signature cannot be moved to another record. A delegate invokes its grant with the
// singular permissionGrantId (payload only).
type recordsWritePayload struct {
	DescriptorCID     string `json:"descriptorCid"`
	RecordID          string `json:"recordId"`
	ContextID         string `json:"contextId,omitempty"`
	PermissionGrantID string `json:"permissionGrantId,omitempty"`
}

// SignRecordsWrite builds a signed RecordsWrite {recordId, contextId?, descriptor,
// authorization} authored by s. recordID is the record's entry id (the initial write's
// CID of descriptor + author; updates reuse it); contextID is set for protocol records only.
// The descriptor follows SignDescriptor's rules and is not modified. Only
// WithPermissionGrantID applies: Records messages never use the plural Messages form.
//
// dwnsync replicates messages as their authors signed them and never re-signs; this exists
// so tests (internal/dwntest) author records with the one JWS implementation.
func (s *Signer) SignRecordsWrite(descriptor map[string]any, recordID, contextID string, opts ...SignOption) (json.RawMessage, error) {
	var cfg signConfig
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.grantIDs) > 0 {
		return nil, errors.New("sign RecordsWrite: permissionGrantIds is the Messages form; use WithPermissionGrantID")
	}
	if recordID == "" {
		return nil, errors.New("sign RecordsWrite: recordId is empty (the initial write's entry id)")
	}
	if descriptor["interface"] != "Records" || descriptor["method"] != "Write" {
		return nil, fmt.Errorf("sign RecordsWrite: descriptor is %v%v, want RecordsWrite", descriptor["interface"], descriptor["method"])
	}
	descJSON, descCID, err := descriptorAndCID(descriptor)
	if err != nil {
		return nil, err
	}
	sig, err := s.signJWS(recordsWritePayload{DescriptorCID: descCID, RecordID: recordID,
		ContextID: contextID, PermissionGrantID: cfg.grantID})
	if err != nil {
		return nil, err
	}
	msg := map[string]any{
		"recordId":      recordID,
		"descriptor":    descJSON,
		"authorization": map[string]any{"signature": sig},
	}
	if contextID != "" {
		msg["contextId"] = contextID
	}
	out, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("sign: marshal message: %w", err)
	}
	return out, nil
}

// descriptorAndCID encodes a descriptor once and returns its JSON and dag-cbor CID.
func descriptorAndCID(descriptor map[string]any) (json.RawMessage, string, error) {
	descJSON, err := json.Marshal(descriptor)
	if err != nil {
		return nil, "", fmt.Errorf("sign: marshal descriptor: %w", err)
	}
	cid, err := CIDOf(json.RawMessage(descJSON))
	if err != nil {
		return nil, "", fmt.Errorf("sign: descriptor cid: %w", err)
	}
	return descJSON, cid, nil
}
