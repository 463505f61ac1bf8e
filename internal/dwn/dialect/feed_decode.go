package dialect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// queryReply is a MessagesQuery reply of any dialect: web5 lists CID strings and a
// {messageCid, value} cursor; enbox lists entry objects with a ProgressToken cursor, drained
// and fingerprint.
type queryReply struct {
	Entries     []queryEntry    `json:"entries"`
	Cursor      json.RawMessage `json:"cursor"`
	Drained     *bool           `json:"drained"`
	Fingerprint string          `json:"fingerprint"`
}

type queryEntry struct {
	MessageCID        string          `json:"messageCid"`
	Seq               string          `json:"seq"`
	IsLatestBaseState *bool           `json:"isLatestBaseState"`
	Protocol          string          `json:"protocol"`
	Message           json.RawMessage `json:"message"`
	EncodedData       string          `json:"encodedData"`
}

// UnmarshalJSON accepts a bare CID string (web5) or an entry object (enbox).
func (e *queryEntry) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.MessageCID)
	}
	type plain queryEntry
	return json.Unmarshal(b, (*plain)(e))
}

// decodeQueryReply reads a MessagesQuery reply; every entry must name its CID.
func decodeQueryReply(reply json.RawMessage) (queryReply, error) {
	var q queryReply
	if err := json.Unmarshal(reply, &q); err != nil {
		return queryReply{}, fmt.Errorf("malformed MessagesQuery reply: %w", err)
	}
	for i, e := range q.Entries {
		if e.MessageCID == "" {
			return queryReply{}, fmt.Errorf("MessagesQuery entry %d has no messageCid", i)
		}
	}
	return q, nil
}

// decodeProgressToken reads an enbox ProgressToken and checks its required fields.
func decodeProgressToken(raw json.RawMessage) (*dwn.Cursor, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c dwn.Cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("cursor is not a ProgressToken: %w", err)
	}
	if !c.Valid() {
		return nil, errors.New("cursor lacks streamId, epoch or position")
	}
	return &c, nil
}

// listingEntryCID is the CID of one streamed MessagesQuery entry: a bare CID string (web5) or
// an entry object. The plain string, by far the common case, costs one allocation.
func listingEntryCID(raw json.RawMessage) (string, error) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 && bytes.IndexByte(raw[1:n-1], '"') < 0 {
		if n == 2 {
			return "", errors.New("empty messageCid")
		}
		return string(raw[1 : n-1]), nil
	}
	var e queryEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return "", fmt.Errorf("malformed entry: %w", err)
	}
	if e.MessageCID == "" {
		return "", errors.New("entry has no messageCid")
	}
	return e.MessageCID, nil
}
