package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// wsFuzzSubID is the subscription id the fuzz seeds address, so mutated frames reach the
// delivery path too.
const wsFuzzSubID = "11111111-2222-4333-8444-555555555555"

func wsFuzzSeeds() []string {
	return []string{
		// web5 subscribe reply, event, close reply
		`{"jsonrpc":"2.0","id":"70b7a0ad-601e-4caa-bc5d-d2516bf00557","result":{"reply":{"status":{"code":200,"detail":"OK"},"subscription":{"id":"bafyreiclpq"}}}}`,
		`{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"event":{"message":{"descriptor":{"interface":"Records","method":"Write","dataSize":81}},"initialWrite":{"descriptor":{}}}}}`,
		`{"jsonrpc":"2.0","id":"718aeb25","result":{"reply":{"status":200,"detail":"Accepted"}}}`,
		// enbox event, eose, terminal error, gap reply
		`{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"subscription":{"type":"event","cursor":{"streamId":"6742201863cf8f21","epoch":"e","position":"17","messageCid":"bafy"},"event":{"message":{"descriptor":{}}},"seq":"17","messageCid":"bafy","isLatestBaseState":true,"protocol":"https://p","encodedData":"aGk"}}}`,
		`{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"subscription":{"type":"eose","cursor":{"streamId":"s","epoch":"e","position":"0"}}}}`,
		`{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"subscription":{"type":"error","error":{"code":"SubscriptionBufferOverflow","detail":"x"}}}}`,
		`{"jsonrpc":"2.0","id":"r1","result":{"reply":{"status":{"code":410,"detail":"Progress token gap"},"error":{"code":"ProgressGap","reason":"token_too_old","requested":{"streamId":"a","epoch":"b","position":"1"}}}}}`,
		// errors and oddities
		`{"jsonrpc":"2.0","id":"w1","error":{"code":-32602,"message":"RecordsWrite is not supported via ws"}}`,
		`{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","error":{"code":-32603,"message":"boom","data":{"code":"X"}}}`,
		`{"jsonrpc":"2.0","id":"p1","result":{"ok":true}}`,
		`{"jsonrpc":"2.0","id":17,"result":{"event":{"message":{}}}}`,
		`{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"subscription":{"type":"event","seq":17,"event":{"message":[]}}}}`,
		`{"id":"a\u0062c","result":{"reply":{"status":{"code":"200"}}}}`,
		`not json`, `{}`, `[]`, `null`, ``, `{"result":null,"error":null}`,
	}
}

// FuzzWSFrame feeds arbitrary bytes to the frame decoder and to the demultiplexer. Nothing may
// panic; a decoded frame must be internally consistent; a delivery never blocks the reader.
func FuzzWSFrame(f *testing.F) {
	for _, s := range wsFuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := decodeWSFrame(data)
		switch {
		case err == nil:
			checkWSInbound(t, data, in)
		case errors.Is(err, ErrMalformedFrame):
			if in.ID == "" || in.Frame != nil || in.Reply != nil {
				t.Fatalf("%q: malformed frame without its id, or with content: %+v", data, in)
			}
		case errors.Is(err, errWSGarbage):
			if in.ID != "" {
				t.Fatalf("%q: garbage with an id %q", data, in.ID)
			}
		default:
			t.Fatalf("%q: error %v is neither garbage nor malformed", data, err)
		}
		if in.Reply != nil {
			_, _, _ = wsReplyStatus(in.Reply)
			_ = gapFromReply(in.Reply)
		}
		// The demultiplexer, with one open subscription (buffer 1, so overflow is reachable).
		m, _ := NewMux("http://127.0.0.1:1", MuxOptions{Buffer: 1})
		c := &wsConn{mux: m, subs: map[string]*Subscription{}, calls: map[string]chan wsInbound{}, done: make(chan struct{})}
		s := newWSSubscription(c, wsFuzzSubID, 1, wsDefaultBufferBytes)
		c.subs[s.id] = s
		c.dead = true // an overflow's background close sees a dead socket and returns at once
		c.dispatch(data)
		c.dispatch(data)
		st := m.Stats()
		if st.GarbageFrames+st.UnknownFrames+st.Overflows > 2 {
			t.Fatalf("two frames counted %d times: %+v", st.GarbageFrames+st.UnknownFrames+st.Overflows, st)
		}
	})
}

func checkWSInbound(t *testing.T, data []byte, in wsInbound) {
	t.Helper()
	if in.RPCError == nil && !in.HasResult {
		t.Fatalf("%q: decoded without result or error", data)
	}
	if in.Frame != nil && in.SubError != nil {
		t.Fatalf("%q: both a frame and a terminal error", data)
	}
	if in.Reply != nil && !json.Valid(in.Reply) {
		t.Fatalf("%q: reply is not valid JSON", data)
	}
	if f := in.Frame; f != nil {
		switch f.Kind {
		case wsFrameEvent:
			if !isJSONPresent(f.Message) || !json.Valid(f.Message) {
				t.Fatalf("%q: event without a valid message", data)
			}
		case FrameEOSE:
			if f.Message != nil {
				t.Fatalf("%q: eose with a message", data)
			}
		default:
			t.Fatalf("%q: frame kind %v", data, f.Kind)
		}
		if f.Cursor != nil && !json.Valid(f.Cursor) {
			t.Fatalf("%q: cursor is not valid JSON", data)
		}
	}
	if in.ID != "" && !strings.Contains(string(data), "id") {
		t.Fatalf("%q: id %q from nowhere", data, in.ID)
	}
}

// The seeds decode as intended (a fuzz target only proves the absence of crashes).
func TestWSFrameSeeds(t *testing.T) {
	seeds := wsFuzzSeeds()
	kinds := []string{"reply", "event", "reply", "event", "eose", "suberr", "reply", "rpcerr", "rpcerr", "result", "event", "event", "reply",
		"garbage", "garbage", "garbage", "garbage", "garbage", "garbage"}
	if len(kinds) != len(seeds) {
		t.Fatalf("%d kinds for %d seeds", len(kinds), len(seeds))
	}
	for i, s := range seeds {
		in, err := decodeWSFrame([]byte(s))
		got := "result"
		switch {
		case err != nil:
			got = "garbage"
		case in.RPCError != nil:
			got = "rpcerr"
		case in.SubError != nil:
			got = "suberr"
		case in.Frame != nil && in.Frame.Kind == FrameEOSE:
			got = "eose"
		case in.Frame != nil:
			got = "event"
		case in.Reply != nil:
			got = "reply"
		}
		if got != kinds[i] {
			t.Errorf("seed %d %.60s: decoded as %s (%v), want %s", i, s, got, err, kinds[i])
		}
	}
	// Numeric seq is tolerated; numeric ids are not ours; escaped ids are unescaped.
	if in, _ := decodeWSFrame([]byte(seeds[11])); in.ID != wsFuzzSubID {
		t.Errorf("seed 11 id %q", in.ID)
	}
	if in, _ := decodeWSFrame([]byte(seeds[10])); in.ID != "" {
		t.Errorf("numeric id decoded as %q", in.ID)
	}
	if in, _ := decodeWSFrame([]byte(seeds[12])); in.ID != "abc" {
		t.Errorf("escaped id decoded as %q", in.ID)
	}
}

func TestWSReplyStatus(t *testing.T) {
	for reply, want := range map[string]int{
		`{"status":{"code":200,"detail":"OK"}}`: 200,
		`{"status":200,"detail":"Accepted"}`:    200,
		`{"status":{"code":410}}`:               410,
	} {
		code, _, err := wsReplyStatus(json.RawMessage(reply))
		if err != nil || code != want {
			t.Errorf("wsReplyStatus(%s) = %d, %v; want %d", reply, code, err, want)
		}
	}
	for _, bad := range []string{`{}`, `{"status":"200"}`, `{"status":{"detail":"x"}}`, `[]`, `{"status":{"code":"x"}}`} {
		if code, _, err := wsReplyStatus(json.RawMessage(bad)); err == nil {
			t.Errorf("wsReplyStatus(%s) = %d, want an error", bad, code)
		}
	}
}
