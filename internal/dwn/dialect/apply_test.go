package dialect

import (
	"encoding/json"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

func TestDecodeApplyResult(t *testing.T) {
	r, err := decodeApplyResult(json.RawMessage(`{"result":{"kind":"Incomplete","missing":[{"type":"InitialWrite","recordId":"bafyr"},{"type":"EncryptionProtocol","protocol":"p"}]}}`))
	if err != nil || r.Kind != dwn.Incomplete || len(r.Missing) != 2 || r.Missing[0].RecordID != "bafyr" || r.Missing[1].Type != "EncryptionControl" {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = decodeApplyResult(json.RawMessage(`{"result":{"kind":"Applied","ancestryOnly":true,"position":{"streamId":"s","epoch":"e","position":"3"}}}`))
	if err != nil || r.Kind != dwn.Applied || !r.AncestryOnly {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := decodeApplyResult(json.RawMessage(`{"result":{"kind":"Maybe"}}`)); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
