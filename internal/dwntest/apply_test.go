package dwntest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
)

func TestApplyReplicatedOutcomes(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	proto := must[Written](t)(alice.ConfigureProtocol(notes))
	note := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte("hello")}))
	comment := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note/comment", Parent: &note, Data: []byte("c")}))
	v2 := must[Written](t)(alice.Update(note, []byte("hello v2")))
	v3 := must[Written](t)(alice.Update(note, []byte("hello v3")))

	kind := func(r map[string]any) string { return r["kind"].(string) }
	missing := func(r map[string]any) map[string]any {
		m := r["missing"].([]any)
		if len(m) != 1 {
			t.Fatalf("want one missing ref: %v", r)
		}
		return m[0].(map[string]any)
	}

	// Dependencies missing on an empty target.
	r := apply(t, n, alice.DID, note)
	if kind(r) != "Incomplete" || missing(r)["type"] != "Protocol" || missing(r)["protocol"] != notes {
		t.Fatalf("write before its protocol: %v", r)
	}
	r = apply(t, n, alice.DID, v2)
	if kind(r) != "Incomplete" || missing(r)["type"] != "InitialWrite" || missing(r)["recordId"] != note.RecordID {
		t.Fatalf("update before its initial write: %v", r)
	}
	if r := apply(t, n, alice.DID, proto); kind(r) != "Applied" {
		t.Fatalf("configure: %v", r)
	}
	r = apply(t, n, alice.DID, comment)
	if kind(r) != "Incomplete" || missing(r)["type"] != "Parent" || missing(r)["recordId"] != note.RecordID {
		t.Fatalf("child before its parent: %v", r)
	}
	// Applied with its position in the target's feed.
	r = apply(t, n, alice.DID, note)
	pos := cursorOf(t, r["position"])
	if kind(r) != "Applied" || pos.Position != "2" || pos.MessageCID != note.CID {
		t.Fatalf("note: %v", r)
	}
	if r := apply(t, n, alice.DID, note); kind(r) != "Duplicate" {
		t.Fatalf("same CID again: %v", r)
	}
	if r := apply(t, n, alice.DID, v3); kind(r) != "Applied" {
		t.Fatalf("v3: %v", r)
	}
	if r := apply(t, n, alice.DID, v2); kind(r) != "Superseded" {
		t.Fatalf("older update after a newer one: %v", r)
	}
	del := must[Written](t)(alice.Delete(note.RecordID))
	if r := apply(t, n, alice.DID, del); kind(r) != "Applied" {
		t.Fatalf("delete: %v", r)
	}
	v4 := must[Written](t)(alice.Update(note, []byte("after delete")))
	if r := apply(t, n, alice.DID, v4); kind(r) != "Superseded" {
		t.Fatalf("write after delete: %v", r)
	}
	// Invalid: tampered signature, wrong data size.
	tampered := bytes.Replace(comment.Message, []byte(`"signature":"`), []byte(`"signature":"AAAA`), 1)
	if r := apply(t, n, alice.DID, Written{Message: tampered, Data: comment.Data}); kind(r) != "Invalid" || !strings.Contains(r["reason"].(string), "GeneralJws") {
		t.Fatalf("bad signature: %v", r)
	}
	if r := apply(t, n, alice.DID, Written{Message: comment.Message, Data: []byte("too long")}); kind(r) != "Invalid" {
		t.Fatalf("data size mismatch: %v", r)
	}
}

func TestApplyInitialWriteWithoutDataIsAncestryThenCompletes(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	w := must[Written](t)(alice.Write(WriteOpts{Data: []byte("payload")}))
	r := apply(t, n, alice.DID, Written{Message: w.Message})
	if r["kind"] != "Applied" || r["ancestryOnly"] != true {
		t.Fatalf("initial write without data: %v", r)
	}
	first := cursorOf(t, r["position"])
	r = apply(t, n, alice.DID, w)
	if r["kind"] != "Applied" || cursorOf(t, r["position"]).Position != first.Position {
		t.Fatalf("data completion must keep the position: %v", r)
	}
	if _, data, _ := n.Message(alice.DID, w.CID); string(data) != "payload" {
		t.Fatalf("data %q", data)
	}
}

func TestApplyCarriesEncodedDataAndBodyV1(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	w1 := must[Written](t)(alice.Write(WriteOpts{Data: []byte("via encodedData")}))
	env, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "dwn.applyReplicatedMessage",
		"params": map[string]any{"target": alice.DID, "message": w1.Message, "encodedData": b64(w1.Data)}})
	c := dialWS(t, n)
	c.send(json.RawMessage(env))
	f := c.nextJSON()
	if f["result"].(map[string]any)["result"].(map[string]any)["kind"] != "Applied" {
		t.Fatalf("apply over ws with encodedData: %v", f)
	}
	w2 := must[Written](t)(alice.Write(WriteOpts{Data: []byte("via body-v1")}))
	resp := callBodyV1(t, n.URL(), "dwn.applyReplicatedMessage", alice.DID, w2.Message, w2.Data)
	if resp.Apply(t)["kind"] != "Applied" {
		t.Fatalf("body-v1: %v", resp.Envelope)
	}
	if _, data, _ := n.Message(alice.DID, w2.CID); string(data) != "via body-v1" {
		t.Fatalf("body-v1 data %q", data)
	}
}

func TestProcessMessageReplyCodes(t *testing.T) {
	n := Start(t, Options{Mode: ModeEnboxSMT})
	alice := MustIdentity(t)
	note := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte("x")}))
	if rep := process(t, n, alice.DID, note.Message, note.Data); code(rep) != 400 || !strings.HasPrefix(detail(rep), "ProtocolAuthorizationProtocolNotFound:") {
		t.Fatalf("missing protocol: %v", rep)
	}
	proto := must[Written](t)(alice.ConfigureProtocol(notes))
	if rep := process(t, n, alice.DID, proto.Message, nil); code(rep) != 202 {
		t.Fatalf("configure: %v", rep)
	}
	if rep := process(t, n, alice.DID, note.Message, nil); code(rep) != 204 {
		t.Fatalf("initial write without data: %v", rep)
	}
	if rep := process(t, n, alice.DID, note.Message, note.Data); code(rep) != 202 {
		t.Fatalf("data completion: %v", rep)
	}
	if rep := process(t, n, alice.DID, note.Message, note.Data); code(rep) != 409 {
		t.Fatalf("duplicate: %v", rep)
	}
	del := must[Written](t)(alice.Delete("bafyreinotthere"))
	if rep := process(t, n, alice.DID, del.Message, nil); code(rep) != 404 {
		t.Fatalf("delete of a missing record: %v", rep)
	}
	// The seed-era server has neither the durable feed nor the apply method.
	if rep := query(t, n, alice, alice.DID, map[string]any{"limit": 1}); code(rep) != 501 ||
		!strings.HasPrefix(detail(rep), "MessagesQueryReplicationFeedUnimplemented") {
		t.Fatalf("MessagesQuery on enbox-smt: %v", rep)
	}
	resp := call(t, n.URL(), "dwn.applyReplicatedMessage", alice.DID, note.Message, nil)
	if resp.ErrorCode() != -32601 || resp.HTTPStatus != 500 {
		t.Fatalf("apply on enbox-smt: http %d %v", resp.HTTPStatus, resp.Envelope)
	}
}

func TestMessagesReadStreamsDataInTheBody(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	big := bytes.Repeat([]byte("x"), 40000) // above the inline limit
	w := must[Written](t)(alice.Write(WriteOpts{Data: big}))
	seed(t, n, alice.DID, w)

	read := func(cid string) rpcResp {
		msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Read", "messageCid": cid}))
		return call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil)
	}
	resp := read(w.CID)
	if resp.Header.Get("dwn-response") == "" || !bytes.Equal(resp.Data, big) {
		t.Fatalf("want dwn-response header and %d data bytes, got %d", len(big), len(resp.Data))
	}
	entry := resp.Reply(t)["entry"].(map[string]any)
	raw, _ := json.Marshal(entry["message"])
	if got := must[string](t)(dwnmsg.MessageCID(raw)); got != w.CID || entry["messageCid"] != w.CID {
		t.Fatalf("served message CID %s, want %s", got, w.CID)
	}
	// Not inline in the feed: too large.
	rep := query(t, n, alice, alice.DID, map[string]any{})
	if e := entries(rep)[0]; e["encodedData"] != nil {
		t.Fatal("data above 30,000 bytes must not be inline")
	}
	if rep := read("bafyreiabsent").Reply(t); code(rep) != 404 {
		t.Fatalf("unknown CID: %v", rep)
	}
	// Fault: the next read serves bytes that do not match the CID.
	n.CorruptNextRead()
	entry = read(w.CID).Reply(t)["entry"].(map[string]any)
	raw, _ = json.Marshal(entry["message"])
	if got := must[string](t)(dwnmsg.MessageCID(raw)); got == w.CID || entry["messageCid"] != w.CID {
		t.Fatalf("corrupted read must keep the CID label but change the bytes (got %s)", got)
	}
	if n.Corrupted() != 1 {
		t.Fatalf("Corrupted() = %d", n.Corrupted())
	}
	entry = read(w.CID).Reply(t)["entry"].(map[string]any)
	raw, _ = json.Marshal(entry["message"])
	if got := must[string](t)(dwnmsg.MessageCID(raw)); got != w.CID {
		t.Fatal("only the next read is corrupted")
	}
}

func TestDependencyLookups(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 2)
	note := ws[1]
	v2 := must[Written](t)(alice.Update(note, []byte("v2")))
	seed(t, n, alice.DID, v2)

	msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Records", "method": "Query",
		"filter": map[string]any{"recordId": note.RecordID}}))
	rep := process(t, n, alice.DID, msg, nil)
	es := entries(rep)
	if code(rep) != 200 || len(es) != 1 {
		t.Fatalf("RecordsQuery: %v", rep)
	}
	if es[0]["encodedData"] != b64([]byte("v2")) || es[0]["initialWrite"] == nil || es[0]["recordId"] != note.RecordID {
		t.Fatalf("entry: %v", es[0])
	}
	iw, _ := json.Marshal(es[0]["initialWrite"])
	if must[string](t)(dwnmsg.MessageCID(iw)) != note.CID {
		t.Fatal("initialWrite is not the record's initial write")
	}
	msg = must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Protocols", "method": "Query",
		"filter": map[string]any{"protocol": notes}}))
	rep = process(t, n, alice.DID, msg, nil)
	if es := entries(rep); len(es) != 1 {
		t.Fatalf("ProtocolsQuery: %v", rep)
	}
	msg = must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Records", "method": "Read",
		"filter": map[string]any{"recordId": note.RecordID}}))
	resp := call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil)
	if string(resp.Data) != "v2" || resp.Reply(t)["entry"].(map[string]any)["initialWrite"] == nil {
		t.Fatalf("RecordsRead: %v data %q", resp.Envelope, resp.Data)
	}
	// A deleted record reads as 404 carrying the delete and the initial write (dwn-sdk-js).
	del := must[Written](t)(alice.Delete(note.RecordID))
	seed(t, n, alice.DID, del)
	msg = must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Records", "method": "Read",
		"filter": map[string]any{"recordId": note.RecordID}}))
	rep = call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil).Reply(t)
	entry, _ := rep["entry"].(map[string]any)
	rd, _ := json.Marshal(entry["recordsDelete"])
	iw, _ = json.Marshal(entry["initialWrite"])
	if code(rep) != 404 || must[string](t)(dwnmsg.MessageCID(rd)) != del.CID || must[string](t)(dwnmsg.MessageCID(iw)) != note.CID {
		t.Fatalf("RecordsRead of a deleted record: %v", rep)
	}
	// A stranger may not look records up.
	bob := MustIdentity(t)
	msg = must[json.RawMessage](t)(bob.Sign(map[string]any{"interface": "Records", "method": "Query",
		"filter": map[string]any{"recordId": note.RecordID}}))
	if rep := process(t, n, alice.DID, msg, nil); code(rep) != 401 {
		t.Fatalf("stranger RecordsQuery: %v", rep)
	}
}

func TestLargeRecordsAreCheckedAndStreamed(t *testing.T) {
	n := Start(t, Options{})
	alice := MustIdentity(t)
	big := bytes.Repeat([]byte("a"), 300000) // two UnixFS chunks: a dag-pb dataCid
	w := must[Written](t)(alice.Write(WriteOpts{Data: big}))
	if r := apply(t, n, alice.DID, w); r["kind"] != "Applied" {
		t.Fatalf("large record: %v", r)
	}
	wrong := append([]byte(nil), big...)
	wrong[299999] = 'b'
	other := must[Written](t)(alice.Write(WriteOpts{Data: big}))
	if r := apply(t, n, alice.DID, Written{Message: other.Message, Data: wrong}); r["kind"] != "Invalid" ||
		!strings.Contains(r["reason"].(string), "DataCidMismatch") {
		t.Fatalf("data that does not match the dag-pb dataCid: %v", r)
	}
	msg := must[json.RawMessage](t)(alice.Sign(map[string]any{"interface": "Messages", "method": "Read", "messageCid": w.CID}))
	if resp := call(t, n.URL(), "dwn.processMessage", alice.DID, msg, nil); !bytes.Equal(resp.Data, big) {
		t.Fatalf("read back %d bytes", len(resp.Data))
	}
}

func TestIncompleteListsMissingAncestorsAndGrants(t *testing.T) {
	src, dst := Start(t, Options{}), Start(t, Options{})
	alice, bob := MustIdentity(t), MustIdentity(t)
	proto := must[Written](t)(alice.ConfigureProtocol(notes))
	note := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte("n")}))
	comment := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note/comment", Parent: &note, Data: []byte("c")}))
	reply := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note/comment/reply", Parent: &comment, Data: []byte("r")}))
	seed(t, src, alice.DID, proto, note, comment, reply)
	seed(t, dst, alice.DID, proto)

	r := apply(t, dst, alice.DID, reply)
	missing, _ := r["missing"].([]any)
	if r["kind"] != "Incomplete" || len(missing) != 2 {
		t.Fatalf("reply without its ancestors: %v", r)
	}
	first, second := missing[0].(map[string]any), missing[1].(map[string]any)
	if first["type"] != "Ancestor" || first["recordId"] != note.RecordID || second["type"] != "Parent" || second["recordId"] != comment.RecordID {
		t.Fatalf("want root-first [Ancestor note, Parent comment], got %v", missing)
	}

	grant := must[Written](t)(alice.Grant(bob.DID, map[string]any{"interface": "Records", "method": "Write", "protocol": notes}, time.Hour))
	byBob := must[Written](t)(bob.Write(WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte("b"), PermissionGrantID: grant.RecordID}))
	r = apply(t, dst, alice.DID, byBob)
	if m := r["missing"].([]any); r["kind"] != "Incomplete" || m[0].(map[string]any)["type"] != "Grant" ||
		m[0].(map[string]any)["permissionGrantId"] != grant.RecordID {
		t.Fatalf("delegate write without its grant: %v", r)
	}
	seed(t, dst, alice.DID, grant)
	if r := apply(t, dst, alice.DID, byBob); r["kind"] != "Applied" {
		t.Fatalf("after the grant: %v", r)
	}
}
