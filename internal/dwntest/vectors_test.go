package dwntest

import (
	"bytes"
	"encoding/json"
	"testing"

	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// The worked example of docs/protocol-notes.md#test-vector-key: a MessagesQuery signed with the
// Ed25519 seed 0x00…0x1f. The node must accept exactly these bytes (its JWS check agrees with the
// vector) and refuse them once the signature is altered.
const (
	exampleDID  = "did:jwk:eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IkE2RUh2X1BPRUw0ZGNOMFk1MHZBbVdmazFqQ2JwUTFmSGR5R1pCSlZNYmcifQ"
	exampleSig  = "EVWukSeyCnZIoh-EphGf6D2Ucwq-aJwtp-TF0qBv7NkuyCbRQd4G84FnpXf460TsxglfgkmO7k_ZO32yfQWLCQ"
	exampleDesc = `{"interface":"Messages","method":"Query","messageTimestamp":"2025-01-01T00:00:00.000000Z","filters":[],"limit":100,"cidsOnly":true}`
	exampleCID  = "bafyreie7mwl6iih3d2lgdrqfcbo5hnzbdxz3rvdifqpjatgga43ejygcqa"
)

func exampleMessage(signature string) json.RawMessage {
	payload := b64([]byte(`{"descriptorCid":"bafyreidsb7d4teovyvdjq7swfki4zbcdlk7ffy2bjyug7feb7doxolznom"}`))
	protected := b64([]byte(`{"alg":"EdDSA","kid":"` + exampleDID + `#0"}`))
	return json.RawMessage(`{"descriptor":` + exampleDesc + `,"authorization":{"signature":{"payload":"` + payload +
		`","signatures":[{"protected":"` + protected + `","signature":"` + signature + `"}]}}}`)
}

func TestSpecWorkedExampleIsAcceptedByTheNode(t *testing.T) {
	n := Start(t, Options{})
	msg := exampleMessage(exampleSig)
	if cid := must[string](t)(dwnmsg.MessageCID(msg)); cid != exampleCID {
		t.Fatalf("example message CID %s, want %s", cid, exampleCID)
	}
	rep := process(t, n, exampleDID, msg, nil)
	if code(rep) != 200 || rep["drained"] != true {
		t.Fatalf("the spec's signed MessagesQuery must be accepted: %v", rep)
	}
	bad := []byte(exampleSig)
	bad[0] = 'F'
	rep = process(t, n, exampleDID, exampleMessage(string(bad)), nil)
	if code(rep) != 401 {
		t.Fatalf("altered signature: %v", rep)
	}
	// Another tenant: the example signer is then a stranger without grants.
	rep = process(t, n, MustIdentity(t).DID, msg, nil)
	if code(rep) != 401 || !bytes.Contains([]byte(detail(rep)), []byte("AuthorizationFailed")) {
		t.Fatalf("stranger: %v", rep)
	}
}
