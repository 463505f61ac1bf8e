package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire/wiretest"
)

// A listing streams: decoding N more entries costs O(1) allocations each (the CID string the
// callback receives), whatever the reply's size.
func TestListingDecodeAllocsPerEntry(t *testing.T) {
	body := func(n int) []byte {
		var b bytes.Buffer
		if _, err := wiretest.WriteListing(&b, n); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	const n = 20000
	small, large := body(n), body(2*n)
	allocs := func(b []byte) float64 {
		var set msg.CIDSet
		return testing.AllocsPerRun(3, func() {
			set = msg.CIDSet{}
			reduced, err := readJSONReply(&replyBody{r: bytes.NewReader(b), limit: maxListingReply}, func(raw json.RawMessage) error {
				// A web5 listing entry is the CID as a JSON string; taking it costs the one string.
				if n := len(raw); n < 2 || raw[0] != '"' || raw[n-1] != '"' {
					return errors.New("entry is not a JSON string")
				}
				set.Add(string(raw[1 : len(raw)-1]))
				return nil
			})
			if err != nil || bytes.Contains(reduced, []byte(wiretest.CID(1))) {
				t.Fatalf("decode: %v (reduced reply %d bytes must not hold entries)", err, len(reduced))
			}
		})
	}
	perEntry := (allocs(large) - allocs(small)) / n
	t.Logf("%.2f allocations per extra entry", perEntry)
	// One is the CID string handed to the callback; the rest are json.Decoder's fixed cost per
	// value (it builds an error value at the end of each one). What matters: a constant.
	if perEntry > 6 {
		t.Fatalf("%.2f allocations per entry beyond the first %d: a listing must decode as a stream", perEntry, n)
	}
}

// Going over a bound ends the read with a clear error, not the process.
func TestReplyBoundEndsTheRead(t *testing.T) {
	var b bytes.Buffer
	if _, err := wiretest.WriteListing(&b, 1000); err != nil {
		t.Fatal(err)
	}
	_, err := readJSONReply(&replyBody{r: bytes.NewReader(b.Bytes()), limit: 10000}, func(json.RawMessage) error { return nil })
	if !errors.Is(err, errReplyTooLarge) {
		t.Fatalf("over the size cap: %v", err)
	}
}
