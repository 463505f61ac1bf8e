package faulttest

import (
	"encoding/json"
	"net/http"

	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// RequestMessage is the DWN message of a dwn.processMessage request (the dwn-request header:
// the JSON-RPC framing web5 servers take), nil for anything else.
func RequestMessage(r *http.Request) json.RawMessage {
	h := r.Header.Get("dwn-request")
	if h == "" {
		return nil
	}
	var env struct {
		Method string `json:"method"`
		Params struct {
			Message json.RawMessage `json:"message"`
		} `json:"params"`
	}
	if json.Unmarshal([]byte(h), &env) != nil || env.Method != "dwn.processMessage" {
		return nil
	}
	return env.Params.Message
}

// RequestKind is the DWN message kind a request carries ("RecordsWrite", "MessagesQuery", …;
// "other" for probes and anything that is not a dwn.processMessage).
func RequestKind(r *http.Request) string {
	info, err := dwnmsg.Inspect(RequestMessage(r))
	if err != nil {
		return "other"
	}
	return info.Interface + info.Method
}

// WrittenCID returns the CID of a request's message when it is a write (a dwn.processMessage
// of a RecordsWrite, RecordsDelete or ProtocolsConfigure).
func WrittenCID(r *http.Request) (string, bool) {
	msg := RequestMessage(r)
	if msg == nil {
		return "", false
	}
	info, err := dwnmsg.Inspect(msg)
	if err != nil {
		return "", false
	}
	switch info.Interface + info.Method {
	case "RecordsWrite", "RecordsDelete", "ProtocolsConfigure":
	default:
		return "", false
	}
	cid, err := dwnmsg.MessageCID(msg)
	return cid, err == nil
}
