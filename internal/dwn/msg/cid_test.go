package msg

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// docs/protocol-notes.md#cid-vectors: upstream dag-cbor CID vectors (JSON values).
func TestCIDVectors(t *testing.T) {
	cases := []struct{ name, json, cid string }{
		{"empty object", `{}`, "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"},
		{"hello world", `{"hello":"world"}`, "bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae"},
		{"hello active count", `{"hello":"world","active":true,"count":3}`, "bafyreibuluooswxjk33enbkvcjgibvt4jifh4pri3hys2fafksucymuzn4"},
		{"numbers with float 1.5", `{"zero":0,"negative":-7,"safeInteger":9007199254740991,"float":1.5}`, "bafyreihnvbzd4ujkew7yi27mpdxy2rcsam54p43jjygxdwfvdprqi7jj6m"},
		{"mixed array", `{"items":["alpha",2,false,null,{"child":"value"}]}`, "bafyreihr64xja4qxuewv7etjhy7c47ysbaanby3ergdjqo2n55tonohzda"},
		{"nested key order", `{"z":"last","a":"first","middle":{"b":2,"a":1}}`, "bafyreia4ngukmpmirhovxtknsykvo4kqi7zh2ehygy7tgjohdkhhnpwzde"},
		{"length-first z aa", `{"z":1,"aa":2}`, "bafyreifn4ilfoehustlx752pkq6la7pmeqr6z2kkxsxiuk5etnxbiagjxq"},
		{"length-first b aa z", `{"b":1,"aa":2,"z":3}`, "bafyreidypezyoikih27ej2zdefadk3hln3ifglc4zy4v6s5guzz26qc4cy"},
		{"RecordsWrite descriptor", `{"interface":"Records","method":"Write","messageTimestamp":"2025-01-01T00:00:06.000000Z","dateCreated":"2025-01-01T00:00:06.000000Z","dataCid":"bafyreietui4xdkiu4xvmx4fi2jivjtndbhb4drzpxomrjvd4mdz4w2avra","dataSize":11,"dataFormat":"text/plain"}`, "bafyreidgpqe6zujtci3k7gze4dh7e7prapj3tqer6cvpzhuyzil7ju6wo4"},
		// docs/protocol-notes.md#test-vector-key descriptor CIDs.
		{"MessagesQuery cidsOnly descriptor", `{"interface":"Messages","method":"Query","messageTimestamp":"2025-01-01T00:00:00.000000Z","filters":[],"limit":100,"cidsOnly":true}`, "bafyreidsb7d4teovyvdjq7swfki4zbcdlk7ffy2bjyug7feb7doxolznom"},
		{"MessagesQuery protocol+cursor descriptor", `{"interface":"Messages","method":"Query","messageTimestamp":"2025-01-01T00:00:00.000000Z","filters":[{"protocol":"https://example.com/protocol/notes"}],"cursor":{"streamId":"a1b2c3d4e5f60708","epoch":"01J0000000000000000000000","position":"42"},"limit":100}`, "bafyreigxlyyhkimbxs7douyglzeg2sehsew36ka5i3bmo7jphcsop4swla"},
		{"MessagesRead descriptor", `{"interface":"Messages","method":"Read","messageTimestamp":"2025-01-01T00:00:00.000000Z","messageCid":"bafyreid4sryquow54mk2izkkibglbnxsld67kpopa4xqd6dnfm5yn4c64m"}`, "bafyreihugpj4r6s6jhuopqyf3zex5bfcybib25ounjuieyxqqndvnjv76q"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CIDOf(json.RawMessage(c.json))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.cid {
				t.Fatalf("CIDOf(%s) = %s, want %s", c.json, got, c.cid)
			}
		})
	}
}

// The two vectors that pin the CBOR bytes themselves (length-first key order).
func TestDagCBORBytesVectors(t *testing.T) {
	cases := []struct{ name, json, hex string }{
		{"hello world", `{"hello":"world"}`, "a16568656c6c6f65776f726c64"},
		{"z aa", `{"z":1,"aa":2}`, "a2617a0162616102"},
		{"b aa z", `{"b":1,"aa":2,"z":3}`, "a3616201617a0362616102"},
		{"float 1.5 is 64-bit", `{"float":1.5}`, "a165666c6f6174fb3ff8000000000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := decodeJSON([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			b, err := dagCBOR.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != c.hex {
				t.Fatalf("cbor = %s, want %s", got, c.hex)
			}
		})
	}
}

// docs/protocol-notes.md#message-cid: encodedData at the top level does not change a message CID.
func TestMessageCIDDropsEncodedData(t *testing.T) {
	with, err := MessageCID(json.RawMessage(`{"descriptor":{"interface":"Records","method":"Write"},"encodedData":"aGVsbG8"}`))
	if err != nil {
		t.Fatal(err)
	}
	without, err := MessageCID(json.RawMessage(`{"descriptor":{"interface":"Records","method":"Write"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if with != without {
		t.Fatalf("encodedData changed the CID: %s vs %s", with, without)
	}
	// Only the top level: a nested encodedData is part of the message.
	nested, _ := MessageCID(json.RawMessage(`{"descriptor":{"interface":"Records","method":"Write","encodedData":"x"}}`))
	if nested == without {
		t.Fatal("nested encodedData must not be dropped")
	}
}

// docs/protocol-notes.md#data-cids: raw data CIDs (single chunk).
func TestRawDataCIDVectors(t *testing.T) {
	seq := make([]byte, 16)
	for i := range seq {
		seq[i] = byte(i)
	}
	cases := []struct {
		name string
		data []byte
		cid  string
	}{
		{"hello world", []byte("hello world"), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"},
		{"empty", nil, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"bytes 00..0f", seq, "bafkreif6ixfsmbn7g27l3zueqqncr4h5ipdjqufd3ts75w5gteuo4oujse"},
		{"300,000 x 0x61 (two chunks under dag-pb)", bytes.Repeat([]byte{0x61}, 300_000), "bafybeicnrogxohr6rp6rlbv6s4q5gkpx5cmlm3oxqr3a7sfghbnz6sdyvq"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, n, err := DataCID(bytes.NewReader(c.data))
			if err != nil || got != c.cid || n != int64(len(c.data)) {
				t.Fatalf("DataCID = %s (%d bytes, %v), want %s", got, n, err, c.cid)
			}
			if len(c.data) <= unixfsChunkSize && RawDataCID(c.data) != c.cid {
				t.Fatalf("RawDataCID = %s, want %s", RawDataCID(c.data), c.cid)
			}
		})
	}
}

// More than 174 chunks need a second level; check the shape rather than a foreign vector:
// the root must differ from a flat node and be stable.
func TestDataCIDMultiLevel(t *testing.T) {
	data := bytes.Repeat([]byte{7}, unixfsChunkSize*175+1)
	a, n, err := DataCID(bytes.NewReader(data))
	if err != nil || n != int64(len(data)) || !strings.HasPrefix(a, "bafybei") {
		t.Fatalf("DataCID = %s, %d, %v", a, n, err)
	}
	b, _, _ := DataCID(bytes.NewReader(data))
	if a != b {
		t.Fatal("not deterministic")
	}
}

func TestJSNumberRules(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"1", int64(1)}, {"1.0", int64(1)}, {"1e3", int64(1000)}, {"-0", int64(0)},
		{"9007199254740991", int64(9007199254740991)},
		{"9007199254740993", float64(9007199254740992)}, // beyond safe integers JS holds a double
		{"1.5", 1.5}, {"-2.25", -2.25},
	}
	for _, c := range cases {
		got, err := jsNumber(json.Number(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got != c.want {
			t.Errorf("jsNumber(%s) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestCIDOfGoValuesMatchesJSON(t *testing.T) {
	fromMap, err := CIDOf(map[string]any{"hello": "world", "active": true, "count": 3})
	if err != nil {
		t.Fatal(err)
	}
	if fromMap != "bafyreibuluooswxjk33enbkvcjgibvt4jifh4pri3hys2fafksucymuzn4" {
		t.Fatalf("Go map CID %s differs from the JSON vector", fromMap)
	}
}

func TestCIDRejectsBadJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{} {}`, `{"a":1e400}`} {
		if _, err := CIDOf(json.RawMessage(in)); err == nil {
			t.Errorf("CIDOf(%q) accepted invalid input", in)
		}
	}
	if _, err := MessageCID(json.RawMessage(`[1,2]`)); err == nil {
		t.Error("MessageCID accepted an array")
	}
}

func TestListingDigest(t *testing.T) {
	if got := ListingDigest(nil); got != strings.Repeat("0", 64) {
		t.Fatalf("empty digest = %s", got)
	}
	a := ListingDigest([]string{"bafyreiA", "bafyreiB", "bafyreiC"})
	b := ListingDigest([]string{"bafyreiC", "bafyreiA", "bafyreiB", "bafyreiA"})
	if a != b {
		t.Fatal("digest must not depend on order or duplicates")
	}
	if a == ListingDigest([]string{"bafyreiA", "bafyreiB"}) {
		t.Fatal("digest must change with the set")
	}
	if len(a) != 64 || !bytes.Equal([]byte(strings.ToLower(a)), []byte(a)) {
		t.Fatalf("want 64 lowercase hex, got %q", a)
	}
}

// sampleMessage is a realistic RecordsWrite (~1.6 KB) for benchmarks.
func sampleMessage(b testing.TB) json.RawMessage {
	s := signerFromSeed(make([]byte, 32))
	desc := map[string]any{
		"interface": "Records", "method": "Write", "protocol": "https://example.org/protocols/replication-test",
		"protocolPath": "note", "schema": "https://example.org/schemas/note",
		"dataCid": "bafkreif4o5uvaahcc7qv2cadygwaqnouytk7dwd2antnpcks36wxg22jte", "dataSize": 81,
		"dateCreated": "2026-11-24T14:12:25.957545Z", "messageTimestamp": "2026-11-24T14:12:25.957545Z", "dataFormat": "application/json",
	}
	m, err := s.SignDescriptor(desc)
	if err != nil {
		b.Fatal(err)
	}
	var obj map[string]any
	_ = json.Unmarshal(m, &obj)
	obj["recordId"] = "bafyreigqjhuv26q5uarxu6mha7o37k5aoes7fvk4tlv4q73wqkzuufrevi"
	obj["contextId"] = "bafyreigqjhuv26q5uarxu6mha7o37k5aoes7fvk4tlv4q73wqkzuufrevi"
	out, _ := json.Marshal(obj)
	return out
}

func BenchmarkMessageCID(b *testing.B) {
	msg := sampleMessage(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MessageCID(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListingDigest10k(b *testing.B) {
	cids := make([]string, 10000)
	for i := range cids {
		cids[i] = "bafyrei" + strings.Repeat("a", 52) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
	}
	b.ReportAllocs()
	for b.Loop() {
		ListingDigest(cids)
	}
}
