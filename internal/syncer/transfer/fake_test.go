package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// --- messages -------------------------------------------------------------------------------

// factory signs realistic DWN messages (real CIDs, real recordIds, real signatures) so that
// msg.Inspect and msg.MessageCID see what a server would send.
type factory struct {
	t      testing.TB
	signer *dwnmsg.Signer
	clock  time.Time
}

func newFactory(t testing.TB) *factory {
	s, _, err := dwnmsg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return &factory{t: t, signer: s, clock: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
}

func (f *factory) now() string {
	f.clock = f.clock.Add(time.Millisecond)
	return dwnmsg.FormatTimestamp(f.clock)
}

func (f *factory) sign(desc map[string]any, top map[string]any, opts ...dwnmsg.SignOption) (json.RawMessage, string) {
	f.t.Helper()
	msg, err := f.signer.SignDescriptor(desc, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(top) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(msg, &obj); err != nil {
			f.t.Fatal(err)
		}
		for k, v := range top {
			obj[k] = v
		}
		if msg, err = json.Marshal(obj); err != nil {
			f.t.Fatal(err)
		}
	}
	cid, err := dwnmsg.MessageCID(msg)
	if err != nil {
		f.t.Fatal(err)
	}
	return msg, cid
}

type fmsg struct {
	CID      string
	Message  json.RawMessage
	Data     []byte
	RecordID string
}

func (m fmsg) entry() dwn.Entry { return dwn.Entry{CID: m.CID, Message: m.Message} }

func (f *factory) configure(protocol string) fmsg {
	ts := f.now()
	msg, cid := f.sign(map[string]any{"interface": "Protocols", "method": "Configure", "messageTimestamp": ts,
		"definition": map[string]any{"protocol": protocol, "published": true, "types": map[string]any{}, "structure": map[string]any{}}}, nil)
	return fmsg{CID: cid, Message: msg}
}

// write is an initial RecordsWrite (parent optional).
func (f *factory) write(protocol, path, parent string, data []byte) fmsg {
	ts := f.now()
	desc := map[string]any{"interface": "Records", "method": "Write", "protocol": protocol, "protocolPath": path,
		"dataCid": fakeDataCID(data), "dataSize": len(data), "dateCreated": ts, "messageTimestamp": ts, "dataFormat": "application/octet-stream"}
	if parent != "" {
		desc["parentId"] = parent
	}
	withAuthor := map[string]any{"author": f.signer.DID}
	for k, v := range desc {
		withAuthor[k] = v
	}
	recordID, err := dwnmsg.CIDOf(withAuthor)
	if err != nil {
		f.t.Fatal(err)
	}
	msg, cid := f.sign(desc, map[string]any{"recordId": recordID, "contextId": recordID})
	return fmsg{CID: cid, Message: msg, Data: data, RecordID: recordID}
}

// update is a non-initial RecordsWrite of the record initial belongs to.
func (f *factory) update(initial fmsg, data []byte) fmsg {
	var m struct {
		Descriptor map[string]any `json:"descriptor"`
	}
	_ = json.Unmarshal(initial.Message, &m)
	desc := map[string]any{}
	for k, v := range m.Descriptor {
		desc[k] = v
	}
	desc["messageTimestamp"] = f.now()
	desc["dataCid"], desc["dataSize"] = fakeDataCID(data), len(data)
	msg, cid := f.sign(desc, map[string]any{"recordId": initial.RecordID, "contextId": initial.RecordID})
	return fmsg{CID: cid, Message: msg, Data: data, RecordID: initial.RecordID}
}

func (f *factory) delete(initial fmsg) fmsg {
	msg, cid := f.sign(map[string]any{"interface": "Records", "method": "Delete", "recordId": initial.RecordID,
		"messageTimestamp": f.now(), "prune": false}, nil)
	return fmsg{CID: cid, Message: msg, RecordID: initial.RecordID}
}

// fakeDataCID stands in for the UnixFS data CID: the fake server checks sizes, not data CIDs.
func fakeDataCID(data []byte) string {
	sum := sha256.Sum256(data)
	return "fake-" + hex.EncodeToString(sum[:8])
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// --- fake tenant ----------------------------------------------------------------------------

type stored struct {
	message json.RawMessage
	info    dwnmsg.MessageInfo
	data    []byte // nil = stored without data
}

// fakeTenant is an in-memory DWN tenant with the dependency rules that matter for ordering:
// a protocol's records need its configure, updates and deletes need the initial write, a child
// needs its parent, a grant invocation needs the grant. Re-applying anything is Duplicate; an
// older write of a record is Superseded. It records what it saw so tests can check streaming.
type fakeTenant struct {
	name string
	mu   sync.Mutex
	msgs map[string]*stored
	log  []string // CIDs in arrival order

	// faults and observations
	corrupt       map[string]bool // Read answers a tampered message for these CIDs
	failReads     int             // the next n Reads fail with a transient error
	failApplies   int             // the next n Applies fail with a transient error
	deferApplies  int             // the next n Applies answer Deferred
	terminal      map[string]bool // Apply of these CIDs answers Incomplete with a terminal ref
	reads         map[string]int  // Read calls per CID
	applies       map[string]int  // Apply calls per CID
	streamedTypes map[string]string
	noDependency  bool // Dependency finds nothing
}

func newFakeTenant(name string) *fakeTenant {
	return &fakeTenant{name: name, msgs: map[string]*stored{}, corrupt: map[string]bool{}, terminal: map[string]bool{},
		reads: map[string]int{}, applies: map[string]int{}, streamedTypes: map[string]string{}}
}

// seed stores messages directly (as if written by clients).
func (t *fakeTenant) seed(tb testing.TB, ms ...fmsg) {
	tb.Helper()
	for _, m := range ms {
		info, err := dwnmsg.Inspect(m.Message)
		if err != nil {
			tb.Fatal(err)
		}
		t.mu.Lock()
		t.store(m.CID, m.Message, info, m.Data)
		t.mu.Unlock()
	}
}

func (t *fakeTenant) store(cid string, msg json.RawMessage, info dwnmsg.MessageInfo, data []byte) {
	if _, ok := t.msgs[cid]; !ok {
		t.log = append(t.log, cid)
	}
	t.msgs[cid] = &stored{message: msg, info: info, data: data}
}

func (t *fakeTenant) Endpoint() string     { return "fake://" + t.name }
func (t *fakeTenant) Dialect() dwn.Dialect { return dwn.DialectEnbox }
func (t *fakeTenant) DID() string          { return "did:fake" }

func (t *fakeTenant) FeedPage(context.Context, dwn.Scope, *dwn.Cursor, int, bool) (dwn.Page, error) {
	return dwn.Page{}, &dwn.Error{Op: "FeedPage", Kind: dwn.Unsupported, Detail: "fake"}
}
func (t *fakeTenant) Subscribe(context.Context, dwn.Scope, *dwn.Cursor) (dwn.Subscription, error) {
	return nil, &dwn.Error{Op: "Subscribe", Kind: dwn.Unsupported, Detail: "fake"}
}

func (t *fakeTenant) ListCIDs(context.Context, dwn.Scope) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, c := range t.log {
		if _, ok := t.msgs[c]; ok {
			out = append(out, c)
		}
	}
	return out, nil
}

func (t *fakeTenant) Digest(ctx context.Context, s dwn.Scope) (dwn.Digest, error) {
	cids, _ := t.ListCIDs(ctx, s)
	return dwn.Digest{Kind: dwn.DigestListing, Value: dwnmsg.ListingDigest(cids)}, nil
}

// sourceReader is what Read hands out; Apply on another fake records whether it got one
// (streamed) or something else (a buffer).
type sourceReader struct{ io.Reader }

func (sourceReader) Close() error { return nil }

func (t *fakeTenant) Read(_ context.Context, cid string) (dwn.ReadResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reads[cid]++
	if t.failReads > 0 {
		t.failReads--
		return dwn.ReadResult{}, &dwn.Error{Op: "MessagesRead", Kind: dwn.Transient, HTTPStatus: 503, Detail: "injected"}
	}
	s, ok := t.msgs[cid]
	if !ok {
		return dwn.ReadResult{}, &dwn.Error{Op: "MessagesRead", Kind: dwn.Permanent, DWNCode: 404, Detail: "Not Found"}
	}
	msg := s.message
	if t.corrupt[cid] {
		msg = bytes.Replace(append(json.RawMessage(nil), msg...), []byte(`"messageTimestamp":"`), []byte(`"messageTimestamp":"1`), 1)
	}
	rr := dwn.ReadResult{CID: cid, Message: msg}
	if s.data != nil {
		rr.Data = sourceReader{bytes.NewReader(s.data)}
	}
	return rr, nil
}

func (t *fakeTenant) Apply(_ context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	cid, err := dwnmsg.MessageCID(message)
	if err != nil {
		return dwn.ApplyResult{Kind: dwn.Invalid, Reason: err.Error()}, nil
	}
	info, err := dwnmsg.Inspect(message)
	if err != nil {
		return dwn.ApplyResult{Kind: dwn.Invalid, Reason: err.Error()}, nil
	}
	var body []byte
	if data != nil {
		t.mu.Lock()
		t.streamedTypes[cid] = fmt.Sprintf("%T", data)
		t.mu.Unlock()
		if body, err = io.ReadAll(data); err != nil {
			return dwn.ApplyResult{}, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.applies[cid]++
	if t.failApplies > 0 {
		t.failApplies--
		return dwn.ApplyResult{}, &dwn.Error{Op: "apply", Kind: dwn.Transient, HTTPStatus: 503, Detail: "injected"}
	}
	if t.deferApplies > 0 {
		t.deferApplies--
		return dwn.ApplyResult{Kind: dwn.Deferred, Reason: "storage"}, nil
	}
	if t.terminal[cid] {
		return dwn.ApplyResult{Kind: dwn.Incomplete, Missing: []dwn.DependencyRef{{Type: "CrossProtocolRef", RecordID: "x", Terminal: true}}}, nil
	}
	if _, ok := t.msgs[cid]; ok {
		return dwn.ApplyResult{Kind: dwn.Duplicate}, nil
	}
	var missing []dwn.DependencyRef
	if info.Interface == "Records" && info.Protocol != "" && t.latestConfigure(info.Protocol) == "" {
		missing = append(missing, dwn.DependencyRef{Type: "Protocol", Protocol: info.Protocol})
	}
	if info.ParentID != "" && t.initialWrite(info.ParentID) == "" {
		missing = append(missing, dwn.DependencyRef{Type: "Parent", RecordID: info.ParentID, Protocol: info.Protocol})
	}
	needsInitial := info.Kind() == "RecordsDelete" || (info.Kind() == "RecordsWrite" && !info.IsInitialWrite)
	if needsInitial && t.initialWrite(info.RecordID) == "" {
		missing = append(missing, dwn.DependencyRef{Type: "InitialWrite", RecordID: info.RecordID})
	}
	if len(missing) > 0 {
		return dwn.ApplyResult{Kind: dwn.Incomplete, Missing: missing}, nil
	}
	if info.Interface == "Records" {
		for _, s := range t.msgs {
			if s.info.RecordID != info.RecordID || s.info.Interface != "Records" {
				continue
			}
			if s.info.Kind() == "RecordsDelete" || s.info.MessageTimestamp > info.MessageTimestamp {
				return dwn.ApplyResult{Kind: dwn.Superseded}, nil
			}
		}
	}
	if info.Kind() == "RecordsWrite" && info.DataSize > 0 {
		if data == nil {
			t.store(cid, message, info, nil)
			return dwn.ApplyResult{Kind: dwn.Applied, AncestryOnly: true}, nil
		}
		if int64(len(body)) != info.DataSize || fakeDataCID(body) != info.DataCID {
			return dwn.ApplyResult{Kind: dwn.Invalid, Reason: fmt.Sprintf("RecordsWriteDataCidMismatch: got %d bytes", len(body))}, nil
		}
	}
	t.store(cid, message, info, body)
	return dwn.ApplyResult{Kind: dwn.Applied}, nil
}

func (t *fakeTenant) latestConfigure(protocol string) string {
	for cid, s := range t.msgs {
		if s.info.Kind() == "ProtocolsConfigure" && s.info.ConfiguredProtocol == protocol {
			return cid
		}
	}
	return ""
}

func (t *fakeTenant) initialWrite(recordID string) string {
	for cid, s := range t.msgs {
		if s.info.Kind() == "RecordsWrite" && s.info.IsInitialWrite && s.info.RecordID == recordID {
			return cid
		}
	}
	return ""
}

func (t *fakeTenant) Dependency(_ context.Context, ref dwn.DependencyRef) ([]dwn.Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.noDependency {
		return nil, nil
	}
	var cid string
	switch ref.Type {
	case "Protocol":
		cid = t.latestConfigure(ref.Protocol)
	case "InitialWrite", "Parent":
		cid = t.initialWrite(ref.RecordID)
	}
	if cid == "" {
		return nil, nil
	}
	return []dwn.Entry{{CID: cid, Message: t.msgs[cid].message}}, nil
}

// dataHashes maps every CID to the SHA-256 of its stored data ("" = none).
func (t *fakeTenant) dataHashes() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]string{}
	for cid, s := range t.msgs {
		if s.data != nil {
			sum := sha256.Sum256(s.data)
			out[cid] = hex.EncodeToString(sum[:])
		} else {
			out[cid] = ""
		}
	}
	return out
}

func (t *fakeTenant) sortedCIDs() []string {
	cids, _ := t.ListCIDs(context.Background(), dwn.Scope{})
	sort.Strings(cids)
	return cids
}
