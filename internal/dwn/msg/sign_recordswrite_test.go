package msg

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestSignRecordsWrite(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	desc := map[string]any{"interface": "Records", "method": "Write", "protocol": "https://example.com/protocol/notes",
		"protocolPath": "note/comment", "parentId": "bafyreiparent", "dataCid": "bafkreidata", "dataSize": 5,
		"dateCreated": "2025-01-01T00:00:00.000000Z", "messageTimestamp": "2025-01-01T00:00:00.000000Z",
		"dataFormat": "application/json"}
	msg, err := s.SignRecordsWrite(desc, "bafyreirecord", "bafyreiparent/bafyreirecord", WithPermissionGrantID("bafyreigrant"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMessage(msg); err != nil {
		t.Fatal(err)
	}
	p := payloadOf(t, msg)
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	descCID, _ := CIDOf(desc)
	if !slices.Equal(keys, []string{"contextId", "descriptorCid", "permissionGrantId", "recordId"}) ||
		p["descriptorCid"] != descCID || p["recordId"] != "bafyreirecord" ||
		p["contextId"] != "bafyreiparent/bafyreirecord" || p["permissionGrantId"] != "bafyreigrant" {
		t.Fatalf("payload %v (descriptor CID %s)", p, descCID)
	}
	if strings.Contains(string(descriptorOf(t, msg)), "permissionGrant") {
		t.Fatal("a RecordsWrite grant belongs in the payload only")
	}
	info, err := Inspect(msg)
	if err != nil || info.Kind() != "RecordsWrite" || info.RecordID != "bafyreirecord" ||
		info.ContextID != "bafyreiparent/bafyreirecord" || info.ParentID != "bafyreiparent" {
		t.Fatalf("inspect: %+v %v", info, err)
	}
	// Ed25519 is deterministic: the same inputs sign to the same message (and CID).
	again, _ := s.SignRecordsWrite(desc, "bafyreirecord", "bafyreiparent/bafyreirecord", WithPermissionGrantID("bafyreigrant"))
	c1, _ := MessageCID(msg)
	c2, _ := MessageCID(again)
	if c1 != c2 {
		t.Fatalf("signing is not deterministic: %s vs %s", c1, c2)
	}

	// A record outside a protocol has no contextId anywhere.
	plain, err := s.SignRecordsWrite(desc, "bafyreirecord", "")
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	_ = json.Unmarshal(plain, &top)
	if _, ok := top["contextId"]; ok || payloadOf(t, plain)["contextId"] != nil || payloadOf(t, plain)["permissionGrantId"] != nil {
		t.Fatalf("contextId or grant without being asked: %s", plain)
	}

	for name, call := range map[string]func() error{
		"plural grants": func() error {
			_, err := s.SignRecordsWrite(desc, "bafyreirecord", "", WithPermissionGrantIDs("a"))
			return err
		},
		"no recordId": func() error { _, err := s.SignRecordsWrite(desc, "", ""); return err },
		"not a RecordsWrite": func() error {
			_, err := s.SignRecordsWrite(map[string]any{"interface": "Records", "method": "Delete"}, "bafyreirecord", "")
			return err
		},
	} {
		if call() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
