package msg

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormatTimestamp(t *testing.T) {
	ts := time.Date(2026, 11, 24, 14, 12, 25, 957545123, time.FixedZone("X", 3600))
	if got := FormatTimestamp(ts); got != "2026-11-24T13:12:25.957545Z" {
		t.Fatalf("got %s", got)
	}
	if got := FormatTimestamp(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); got != "2025-01-01T00:00:00.000000Z" {
		t.Fatalf("zero fraction: %s", got)
	}
}

// recordsWrite builds a signed RecordsWrite whose recordId is (or is not) its own entry id.
func recordsWrite(t *testing.T, s *Signer, initial bool, extra map[string]any) json.RawMessage {
	t.Helper()
	desc := map[string]any{
		"interface": "Records", "method": "Write", "protocol": "https://example.org/p", "protocolPath": "note/comment",
		"parentId": "bafyreiparent", "dataCid": "bafkreidata", "dataSize": 40000, "dataFormat": "application/json",
		"dateCreated": "2026-11-24T14:12:25.957545Z", "messageTimestamp": "2026-11-24T14:12:25.957545Z",
	}
	for k, v := range extra {
		desc[k] = v
	}
	msg, err := s.SignDescriptor(desc, WithPermissionGrantID("bafyreigrant"))
	if err != nil {
		t.Fatal(err)
	}
	withAuthor := map[string]any{"author": s.DID}
	for k, v := range desc {
		withAuthor[k] = v
	}
	entryID, _ := CIDOf(withAuthor)
	recordID := entryID
	if !initial {
		recordID = "bafyreisomeotherrecord"
	}
	var obj map[string]any
	_ = json.Unmarshal(msg, &obj)
	obj["recordId"] = recordID
	obj["contextId"] = "bafyreiparent/" + recordID
	out, _ := json.Marshal(obj)
	return out
}

func TestInspectRecordsWrite(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	info, err := Inspect(recordsWrite(t, s, true, nil))
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind() != "RecordsWrite" || info.Protocol != "https://example.org/p" || info.ProtocolPath != "note/comment" ||
		info.ParentID != "bafyreiparent" || info.DataSize != 40000 || info.DataCID != "bafkreidata" ||
		info.PermissionGrantID != "bafyreigrant" || info.Author != s.DID || !strings.HasPrefix(info.ContextID, "bafyreiparent/") {
		t.Fatalf("info = %+v", info)
	}
	if !info.IsInitialWrite {
		t.Fatal("initial write not recognised")
	}
	update, _ := Inspect(recordsWrite(t, s, false, nil))
	if update.IsInitialWrite {
		t.Fatal("update taken for an initial write")
	}
}

func TestInspectDeleteAndConfigure(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	del, _ := s.SignDescriptor(map[string]any{"interface": "Records", "method": "Delete", "recordId": "bafyreirec", "prune": false, "messageTimestamp": "2026-01-01T00:00:00.000000Z"})
	info, err := Inspect(del)
	if err != nil || info.RecordID != "bafyreirec" || info.Kind() != "RecordsDelete" {
		t.Fatalf("delete: %+v %v", info, err)
	}
	cfg, _ := s.SignDescriptor(map[string]any{"interface": "Protocols", "method": "Configure", "messageTimestamp": "2026-01-01T00:00:00.000000Z",
		"definition": map[string]any{"protocol": "https://example.org/p", "published": true, "types": map[string]any{}, "structure": map[string]any{}}})
	info, err = Inspect(cfg)
	if err != nil || info.ConfiguredProtocol != "https://example.org/p" || info.ScopeProtocol() != "https://example.org/p" || info.Protocol != "" {
		t.Fatalf("configure: %+v %v", info, err)
	}
	for _, bad := range []string{`[]`, `{}`, `{"descriptor":{"interface":"Records"}}`, `{"descriptor":{"interface":"Records","method":"Write","dataSize":1.5}}`} {
		if _, err := Inspect(json.RawMessage(bad)); err == nil {
			t.Errorf("Inspect(%s) accepted", bad)
		}
	}
}

func TestStripForApply(t *testing.T) {
	in := json.RawMessage(`{"descriptor":{"a":1},"encodedData":"eA","initialWrite":{"descriptor":{}}}`)
	out, err := StripForApply(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "encodedData") || strings.Contains(string(out), "initialWrite") {
		t.Fatalf("not stripped: %s", out)
	}
	clean := json.RawMessage(`{"descriptor":{"a":1}}`)
	same, _ := StripForApply(clean)
	if string(same) != string(clean) {
		t.Fatal("a clean message must be returned unchanged")
	}
}
