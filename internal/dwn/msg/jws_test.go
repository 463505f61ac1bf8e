package msg

import (
	"encoding/json"
	"strings"
	"testing"
)

// vectorSeed is the key of docs/protocol-notes.md#test-vector-key: Ed25519 seed bytes 0x00…0x1f.
func vectorSeed() []byte {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

const vectorDID = "did:jwk:eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IkE2RUh2X1BPRUw0ZGNOMFk1MHZBbVdmazFqQ2JwUTFmSGR5R1pCSlZNYmcifQ"

// The worked example of docs/protocol-notes.md#test-vector-key: key → DID → signed MessagesQuery →
// signature and CID.
func TestSigningVectorMessagesQuery(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	if s.DID != vectorDID {
		t.Fatalf("DID = %s, want %s", s.DID, vectorDID)
	}
	if x := b64url(s.PublicKey()); x != "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg" {
		t.Fatalf("public x = %s", x)
	}
	msg, err := s.SignDescriptor(map[string]any{
		"interface": "Messages", "method": "Query", "messageTimestamp": "2025-01-01T00:00:00.000000Z",
		"filters": []any{}, "limit": 100, "cidsOnly": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Authorization struct{ Signature generalJWS } `json:"authorization"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	jws := m.Authorization.Signature
	payload, _ := b64urlDecode(jws.Payload)
	if string(payload) != `{"descriptorCid":"bafyreidsb7d4teovyvdjq7swfki4zbcdlk7ffy2bjyug7feb7doxolznom"}` {
		t.Fatalf("payload = %s", payload)
	}
	header, _ := b64urlDecode(jws.Signatures[0].Protected)
	if string(header) != `{"alg":"EdDSA","kid":"`+vectorDID+`#0"}` {
		t.Fatalf("header = %s", header)
	}
	const wantSig = "EVWukSeyCnZIoh-EphGf6D2Ucwq-aJwtp-TF0qBv7NkuyCbRQd4G84FnpXf460TsxglfgkmO7k_ZO32yfQWLCQ"
	if jws.Signatures[0].Signature != wantSig {
		t.Fatalf("signature = %s, want %s", jws.Signatures[0].Signature, wantSig)
	}
	cid, err := MessageCID(msg)
	if err != nil {
		t.Fatal(err)
	}
	if cid != "bafyreie7mwl6iih3d2lgdrqfcbo5hnzbdxz3rvdifqpjatgga43ejygcqa" {
		t.Fatalf("message CID = %s", cid)
	}
	if err := VerifyMessage(msg); err != nil {
		t.Fatalf("VerifyMessage(own message): %v", err)
	}
}

// The upstream JWS fixture of docs/protocol-notes.md#test-vector-key: same seed, kid
// did:example:alice#key1, kid first.
func TestSigningVectorUpstreamJWSFixture(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	const protected = "eyJraWQiOiJkaWQ6ZXhhbXBsZTphbGljZSNrZXkxIiwiYWxnIjoiRWREU0EifQ"
	const payload = "YW55UGF5bG9hZFZhbHVl"
	if got := b64url([]byte("anyPayloadValue")); got != payload {
		t.Fatalf("payload b64 = %s", got)
	}
	got := b64url(s.sign([]byte(protected + "." + payload)))
	const want = "8mmMgru8Ysv9eqNydfkY_64pCzzOdWutDsDHpNMJxqNUANnLmwYvDX7B6AXGa5xojr893qxF5_L7OXDrlq60AA"
	if got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestSignDescriptorGrantForms(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	desc := map[string]any{"interface": "Messages", "method": "Query", "messageTimestamp": "2025-01-01T00:00:00.000000Z", "filters": []any{}}

	single, err := s.SignDescriptor(desc, WithPermissionGrantID("bafyreigrant"))
	if err != nil {
		t.Fatal(err)
	}
	if p := payloadOf(t, single); p["permissionGrantId"] != "bafyreigrant" || p["permissionGrantIds"] != nil {
		t.Fatalf("web5 form payload = %v", p)
	}
	if strings.Contains(string(descriptorOf(t, single)), "permissionGrant") {
		t.Fatal("web5 form must not touch the descriptor")
	}

	plural, err := s.SignDescriptor(desc, WithPermissionGrantIDs("b", "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	p := payloadOf(t, plural)
	ids, _ := json.Marshal(p["permissionGrantIds"])
	if string(ids) != `["a","b"]` {
		t.Fatalf("payload ids = %s, want sorted, deduped", ids)
	}
	if !strings.Contains(string(descriptorOf(t, plural)), `"permissionGrantIds":["a","b"]`) {
		t.Fatalf("descriptor lacks ids: %s", descriptorOf(t, plural))
	}
	if _, present := desc["permissionGrantIds"]; present {
		t.Fatal("caller's descriptor was modified")
	}
	if err := VerifyMessage(plural); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignDescriptor(desc, WithPermissionGrantID("x"), WithPermissionGrantIDs("y")); err == nil {
		t.Fatal("both grant forms accepted")
	}
}

func TestVerifyMessageRejectsTampering(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	msg, _ := s.SignDescriptor(map[string]any{"interface": "Messages", "method": "Query", "messageTimestamp": "2025-01-01T00:00:00.000000Z", "filters": []any{}})
	tampered := []byte(strings.Replace(string(msg), `"filters":[]`, `"filters":[{"protocol":"x"}]`, 1))
	if err := VerifyMessage(tampered); err == nil || !strings.Contains(err.Error(), "descriptorCid") {
		t.Fatalf("descriptor change not caught: %v", err)
	}
	other, _, _ := GenerateSigner()
	forged, _ := other.SignDescriptor(map[string]any{"interface": "Messages", "method": "Query", "messageTimestamp": "2025-01-01T00:00:00.000000Z", "filters": []any{}})
	// Swap in the vector signer's kid with the other key's signature: must fail verification.
	var fm map[string]any
	_ = json.Unmarshal(forged, &fm)
	sig := fm["authorization"].(map[string]any)["signature"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
	sig["protected"] = b64url([]byte(`{"alg":"EdDSA","kid":"` + s.KeyID + `"}`))
	forgedBytes, _ := json.Marshal(fm)
	if err := VerifyMessage(forgedBytes); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("wrong key not caught: %v", err)
	}
	if err := VerifyMessage(json.RawMessage(`{"descriptor":{}}`)); err == nil {
		t.Fatal("unsigned message accepted")
	}
}

func payloadOf(t *testing.T, msg json.RawMessage) map[string]any {
	t.Helper()
	var m struct {
		Authorization struct{ Signature generalJWS } `json:"authorization"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	raw, _ := b64urlDecode(m.Authorization.Signature.Payload)
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func descriptorOf(t *testing.T, msg json.RawMessage) json.RawMessage {
	t.Helper()
	var m struct{ Descriptor json.RawMessage }
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	return m.Descriptor
}
