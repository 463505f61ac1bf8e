package dwntest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// Identity authors signed DWN messages for tests: protocol configurations, record writes,
// updates, deletes and permission grants, as a did:jwk Ed25519 identity.
//
// Every message is signed by the msg.Signer it wraps (SignRecordsWrite for records,
// SignDescriptor for everything else); this type only shapes descriptors and record ids.
type Identity struct {
	DID        string
	PrivateJWK []byte
	Signer     *msg.Signer

	mu   sync.Mutex
	last time.Time // timestamps are strictly increasing per identity
	now  func() time.Time
}

// NewIdentity makes a fresh did:jwk identity.
func NewIdentity() (*Identity, error) {
	signer, jwk, err := msg.GenerateSigner()
	if err != nil {
		return nil, err
	}
	return &Identity{DID: signer.DID, PrivateJWK: jwk, Signer: signer, now: time.Now}, nil
}

// MustIdentity is NewIdentity for tests.
func MustIdentity(t interface{ Fatalf(string, ...any) }) *Identity {
	id, err := NewIdentity()
	if err != nil {
		t.Fatalf("dwntest: new identity: %v", err)
	}
	return id
}

// UseClock makes the identity take message timestamps and grant expiry from c (e.g. the
// fake clock a node runs on), so grants expire when the test steps that clock.
func (id *Identity) UseClock(c clock.PassiveClock) {
	id.mu.Lock()
	defer id.mu.Unlock()
	id.now = c.Now
}

// Timestamp returns the next message timestamp of this identity (microseconds, strictly
// increasing so later messages are always newer).
func (id *Identity) Timestamp() string {
	id.mu.Lock()
	defer id.mu.Unlock()
	t := id.now().UTC().Truncate(time.Microsecond)
	if !t.After(id.last) {
		t = id.last.Add(time.Microsecond)
	}
	id.last = t
	return msg.FormatTimestamp(t)
}

// Written is one authored message with its data.
type Written struct {
	Message  json.RawMessage
	Data     []byte // nil when the message carries none
	CID      string
	RecordID string
	// ContextID of a protocol record (children extend their parent's).
	ContextID string
	info      msg.MessageInfo
}

// ConfigureProtocol authors a ProtocolsConfigure for protocol (a minimal published
// definition with one "note" type at the root and "note/comment" under it).
func (id *Identity) ConfigureProtocol(protocol string) (Written, error) {
	definition := map[string]any{
		"protocol":  protocol,
		"published": true,
		"types":     map[string]any{"note": map[string]any{}, "comment": map[string]any{}},
		"structure": map[string]any{"note": map[string]any{"comment": map[string]any{}}},
	}
	return id.sign(map[string]any{
		"interface": "Protocols", "method": "Configure", "messageTimestamp": id.Timestamp(),
		"definition": definition,
	}, nil)
}

// WriteOpts describes a new record.
type WriteOpts struct {
	Protocol, ProtocolPath string
	Parent                 *Written // parent record (protocol records only)
	Recipient              string
	Tags                   map[string]any
	Data                   []byte
	DataFormat             string // default application/octet-stream
	// PermissionGrantID is the grant a delegate author invokes (signature payload).
	PermissionGrantID string
}

// Write authors the initial RecordsWrite of a new record.
func (id *Identity) Write(o WriteOpts) (Written, error) {
	ts := id.Timestamp()
	desc, err := recordDescriptor(o.Data, o.DataFormat, ts, ts)
	if err != nil {
		return Written{}, err
	}
	if o.Protocol != "" {
		desc["protocol"], desc["protocolPath"] = o.Protocol, o.ProtocolPath
	}
	if o.Parent != nil {
		desc["parentId"] = o.Parent.RecordID
	}
	if o.Recipient != "" {
		desc["recipient"] = o.Recipient
	}
	if o.Tags != nil {
		desc["tags"] = o.Tags
	}
	withAuthor := map[string]any{"author": id.DID}
	for k, v := range desc {
		withAuthor[k] = v
	}
	recordID, err := msg.CIDOf(withAuthor)
	if err != nil {
		return Written{}, err
	}
	contextID := ""
	if o.Protocol != "" {
		contextID = recordID
		if o.Parent != nil {
			contextID = o.Parent.ContextID + "/" + recordID
		}
	}
	return id.signRecordsWrite(desc, recordID, contextID, o.Data, o.PermissionGrantID)
}

// Update authors a newer RecordsWrite of prev's record with new data.
func (id *Identity) Update(prev Written, data []byte) (Written, error) {
	var old struct {
		Descriptor map[string]any `json:"descriptor"`
	}
	if err := json.Unmarshal(prev.Message, &old); err != nil {
		return Written{}, err
	}
	format, _ := old.Descriptor["dataFormat"].(string)
	created, _ := old.Descriptor["dateCreated"].(string)
	desc, err := recordDescriptor(data, format, created, id.Timestamp())
	if err != nil {
		return Written{}, err
	}
	for _, k := range []string{"protocol", "protocolPath", "parentId", "recipient", "tags", "schema"} {
		if v, ok := old.Descriptor[k]; ok {
			desc[k] = v
		}
	}
	return id.signRecordsWrite(desc, prev.RecordID, prev.ContextID, data, "")
}

// Delete authors a RecordsDelete of recordID.
func (id *Identity) Delete(recordID string) (Written, error) {
	return id.sign(map[string]any{
		"interface": "Records", "method": "Delete", "messageTimestamp": id.Timestamp(),
		"recordId": recordID, "prune": false,
	}, nil)
}

// Grant authors a permission grant from this identity (the tenant) to grantee with scope
// (e.g. {"interface":"Messages","method":"Read"} or with "protocol"), valid for validFor.
func (id *Identity) Grant(grantee string, scope map[string]any, validFor time.Duration) (Written, error) {
	id.mu.Lock()
	now := id.now()
	id.mu.Unlock()
	data, err := json.Marshal(map[string]any{
		"dateExpires": msg.FormatTimestamp(now.Add(validFor)),
		"scope":       scope,
	})
	if err != nil {
		return Written{}, err
	}
	o := WriteOpts{Protocol: permissionsProtocol, ProtocolPath: "grant", Recipient: grantee,
		Data: data, DataFormat: "application/json"}
	if p, ok := scope["protocol"].(string); ok {
		o.Tags = map[string]any{"protocol": p}
	}
	return id.Write(o)
}

// Revoke authors the revocation of a grant.
func (id *Identity) Revoke(grant Written) (Written, error) {
	return id.Write(WriteOpts{Protocol: permissionsProtocol, ProtocolPath: "grant/revocation", Parent: &grant,
		Data: []byte(`{}`), DataFormat: "application/json"})
}

// Sign signs any other descriptor (queries, reads, subscribes) with this identity, invoking
// grantIDs (sorted and deduplicated) when given.
func (id *Identity) Sign(descriptor map[string]any, grantIDs ...string) (json.RawMessage, error) {
	if _, ok := descriptor["messageTimestamp"]; !ok {
		descriptor["messageTimestamp"] = id.Timestamp()
	}
	if len(grantIDs) > 0 {
		return id.Signer.SignDescriptor(descriptor, msg.WithPermissionGrantIDs(grantIDs...))
	}
	return id.Signer.SignDescriptor(descriptor)
}

func recordDescriptor(data []byte, format, created, ts string) (map[string]any, error) {
	if format == "" {
		format = "application/octet-stream"
	}
	dataCID, _, err := msg.DataCID(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"interface": "Records", "method": "Write", "dataCid": dataCID, "dataSize": len(data),
		"dateCreated": created, "messageTimestamp": ts, "dataFormat": format,
	}, nil
}

func (id *Identity) sign(desc map[string]any, data []byte) (Written, error) {
	raw, err := id.Signer.SignDescriptor(desc)
	if err != nil {
		return Written{}, err
	}
	return finish(raw, data, "")
}

// signRecordsWrite signs a RecordsWrite with msg.Signer.SignRecordsWrite.
func (id *Identity) signRecordsWrite(desc map[string]any, recordID, contextID string, data []byte, grantID string) (Written, error) {
	raw, err := id.Signer.SignRecordsWrite(desc, recordID, contextID, msg.WithPermissionGrantID(grantID))
	if err != nil {
		return Written{}, err
	}
	return finish(raw, data, contextID)
}

func finish(raw json.RawMessage, data []byte, contextID string) (Written, error) {
	cid, err := msg.MessageCID(raw)
	if err != nil {
		return Written{}, err
	}
	info, err := msg.Inspect(raw)
	if err != nil {
		return Written{}, err
	}
	if len(data) == 0 {
		data = nil
	}
	return Written{Message: raw, Data: data, CID: cid, RecordID: info.RecordID, ContextID: contextID, info: info}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// String names the message for test failure output.
func (w Written) String() string {
	return fmt.Sprintf("%s%s %s", w.info.Interface, w.info.Method, w.CID)
}
