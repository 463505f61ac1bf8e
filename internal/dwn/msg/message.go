package msg

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TimestampLayout is the DWN messageTimestamp format: UTC, exactly six fractional digits, Z.
const TimestampLayout = "2006-01-02T15:04:05.000000Z"

// FormatTimestamp renders t as a DWN timestamp (converted to UTC first).
func FormatTimestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// MessageInfo is what the replicator needs to know about a message to order it and to find
// its dependencies. Absent fields are empty.
type MessageInfo struct {
	Interface, Method  string
	Protocol           string // descriptor.protocol (RecordsWrite / queries)
	ProtocolPath       string
	RecordID           string // RecordsWrite: top-level recordId; RecordsDelete: descriptor.recordId
	ParentID           string
	ContextID          string
	DateCreated        string
	MessageTimestamp   string
	DataCID            string
	DataSize           int64
	PermissionGrantID  string // payload permissionGrantId (singular form)
	IsInitialWrite     bool   // RecordsWrite whose recordId is its own entry id
	ConfiguredProtocol string // ProtocolsConfigure: definition.protocol
	Author             string // signer DID, or the grantor for author-delegated messages
}

// Kind is "Interface+Method", e.g. "RecordsWrite".
func (m MessageInfo) Kind() string { return m.Interface + m.Method }

// ScopeProtocol is the protocol a message belongs to for scoping: descriptor.protocol, or the
// configured protocol of a ProtocolsConfigure.
func (m MessageInfo) ScopeProtocol() string {
	if m.Protocol != "" {
		return m.Protocol
	}
	return m.ConfiguredProtocol
}

type rawMessage struct {
	RecordID      string          `json:"recordId"`
	ContextID     string          `json:"contextId"`
	Descriptor    json.RawMessage `json:"descriptor"`
	Authorization *struct {
		Signature            *generalJWS `json:"signature"`
		AuthorDelegatedGrant *struct {
			Authorization *struct {
				Signature *generalJWS `json:"signature"`
			} `json:"authorization"`
		} `json:"authorDelegatedGrant"`
	} `json:"authorization"`
}

type rawDescriptor struct {
	Interface        string      `json:"interface"`
	Method           string      `json:"method"`
	Protocol         string      `json:"protocol"`
	ProtocolPath     string      `json:"protocolPath"`
	RecordID         string      `json:"recordId"`
	ParentID         string      `json:"parentId"`
	DateCreated      string      `json:"dateCreated"`
	MessageTimestamp string      `json:"messageTimestamp"`
	DataCID          string      `json:"dataCid"`
	DataSize         json.Number `json:"dataSize"`
	Definition       *struct {
		Protocol string `json:"protocol"`
	} `json:"definition"`
}

// Inspect extracts MessageInfo from a signed message. It fails only when the message is not a
// JSON object with a descriptor naming its interface and method.
func Inspect(message json.RawMessage) (MessageInfo, error) {
	var m rawMessage
	if err := json.Unmarshal(message, &m); err != nil {
		return MessageInfo{}, fmt.Errorf("inspect: %w", err)
	}
	if len(m.Descriptor) == 0 {
		return MessageInfo{}, errors.New("inspect: message has no descriptor")
	}
	var d rawDescriptor
	if err := json.Unmarshal(m.Descriptor, &d); err != nil {
		return MessageInfo{}, fmt.Errorf("inspect descriptor: %w", err)
	}
	if d.Interface == "" || d.Method == "" {
		return MessageInfo{}, errors.New("inspect: descriptor lacks interface or method")
	}
	info := MessageInfo{
		Interface: d.Interface, Method: d.Method, Protocol: d.Protocol, ProtocolPath: d.ProtocolPath,
		RecordID: m.RecordID, ParentID: d.ParentID, ContextID: m.ContextID, DateCreated: d.DateCreated,
		MessageTimestamp: d.MessageTimestamp, DataCID: d.DataCID,
	}
	if info.RecordID == "" {
		info.RecordID = d.RecordID
	}
	if d.DataSize != "" {
		n, err := d.DataSize.Int64()
		if err != nil {
			return MessageInfo{}, fmt.Errorf("inspect: dataSize %q is not an integer", d.DataSize)
		}
		info.DataSize = n
	}
	if d.Definition != nil {
		info.ConfiguredProtocol = d.Definition.Protocol
	}
	if m.Authorization != nil {
		info.Author, info.PermissionGrantID = authorAndGrant(m.Authorization.Signature)
		if g := m.Authorization.AuthorDelegatedGrant; g != nil && g.Authorization != nil {
			if grantor, err := signerDID(g.Authorization.Signature); err == nil {
				info.Author = grantor
			}
		}
	}
	if info.Kind() == "RecordsWrite" && info.Author != "" && info.RecordID != "" {
		info.IsInitialWrite = isInitialWrite(m.Descriptor, info.Author, info.RecordID)
	}
	return info, nil
}

func authorAndGrant(jws *generalJWS) (author, grantID string) {
	if jws == nil {
		return "", ""
	}
	author, _ = signerDID(jws)
	if raw, err := b64urlDecode(jws.Payload); err == nil {
		var p struct {
			PermissionGrantID string `json:"permissionGrantId"`
		}
		if json.Unmarshal(raw, &p) == nil {
			grantID = p.PermissionGrantID
		}
	}
	return author, grantID
}

// isInitialWrite: a record's id is the CID of its initial write's descriptor plus an "author"
// property, so a write is initial exactly when that CID equals its recordId.
func isInitialWrite(descriptor json.RawMessage, author, recordID string) bool {
	v, err := decodeJSON(descriptor)
	if err != nil {
		return false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	obj["author"] = author
	id, err := cidOfNormalized(obj)
	return err == nil && id == recordID
}

// StripForApply removes what a reply attaches around a stored message (top-level encodedData,
// initialWrite) so that the message can be re-sent exactly as signed. It returns the message
// unchanged (same bytes) when there is nothing to strip.
func StripForApply(message json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(message, &obj); err != nil {
		return nil, fmt.Errorf("strip: message is not a JSON object: %w", err)
	}
	_, hasData := obj["encodedData"]
	_, hasInitial := obj["initialWrite"]
	if !hasData && !hasInitial {
		return message, nil
	}
	delete(obj, "encodedData")
	delete(obj, "initialWrite")
	return json.Marshal(obj)
}
