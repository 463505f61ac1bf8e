package faulttest

import (
	"encoding/json"
	"net/http"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// WrittenCID reads the JSON-RPC envelope of a request (the dwn-request header: the framing web5
// servers take) and returns the CID of the message when it is a write (a dwn.processMessage of
// a RecordsWrite, RecordsDelete or ProtocolsConfigure).
func WrittenCID(r *http.Request) (string, bool) {
	h := r.Header.Get("dwn-request")
	if h == "" {
		return "", false
	}
	var env struct {
		Method string `json:"method"`
		Params struct {
			Message json.RawMessage `json:"message"`
		} `json:"params"`
	}
	if json.Unmarshal([]byte(h), &env) != nil || env.Method != "dwn.processMessage" || env.Params.Message == nil {
		return "", false
	}
	info, err := dwn.Inspect(env.Params.Message)
	if err != nil {
		return "", false
	}
	switch info.Interface + info.Method {
	case "RecordsWrite", "RecordsDelete", "ProtocolsConfigure":
	default:
		return "", false
	}
	cid, err := dwn.MessageCID(env.Params.Message)
	return cid, err == nil
}
