package dialect

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeReplies feeds arbitrary JSON to the dialect's decoders of what the transport hands
// over (a MessagesQuery reply, an applyReplicatedMessage result). They must never panic.
func FuzzDecodeReplies(f *testing.F) {
	for _, s := range []string{
		`{"status":{"code":200},"entries":["bafy1","bafy2"],"cursor":{"messageCid":"bafy2","value":31}}`,
		`{"status":{"code":200},"entries":[{"messageCid":"bafy","message":{},"encodedData":"eA"}],"progressToken":{"streamId":"s","epoch":"e","position":"1"}}`,
		`{"result":{"kind":"Incomplete","missing":[{"type":"Protocol","protocol":"p"}]}}`,
		`{"result":{"kind":"Maybe"}}`,
		`{"result":null}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = decodeQueryReply(json.RawMessage(raw))
		_, _ = decodeApplyResult(json.RawMessage(raw))
	})
}
