package msg

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// SignOption adds a permission-grant invocation to a signature.
type SignOption func(*signConfig)

type signConfig struct {
	grantID  string
	grantIDs []string
}

// WithPermissionGrantID invokes one grant the web5 way (dwn-sdk-js 0.5.x, and Records/Protocols
// messages everywhere): `permissionGrantId` in the signature payload only. Empty = no-op.
func WithPermissionGrantID(id string) SignOption {
	return func(c *signConfig) { c.grantID = id }
}

// WithPermissionGrantIDs invokes grants the enbox Messages* way: `permissionGrantIds` in both
// the descriptor and the payload, deduplicated and sorted (the server rejects any other form).
// Empty = no-op.
func WithPermissionGrantIDs(ids ...string) SignOption {
	return func(c *signConfig) { c.grantIDs = append(c.grantIDs, ids...) }
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// signaturePayload is the generic (non-RecordsWrite) payload. The two grant forms are
// mutually exclusive; the schema forbids sending both.
type signaturePayload struct {
	DescriptorCID      string   `json:"descriptorCid"`
	PermissionGrantID  string   `json:"permissionGrantId,omitempty"`
	PermissionGrantIDs []string `json:"permissionGrantIds,omitempty"`
}

type generalJWS struct {
	Payload    string         `json:"payload"`
	Signatures []jwsSignature `json:"signatures"`
}

type jwsSignature struct {
	Protected string `json:"protected"`
	Signature string `json:"signature"`
}

// SignDescriptor builds a signed message {descriptor, authorization} for a descriptor the
// replicator authors (Messages*, RecordsQuery, ProtocolsQuery …). The descriptor must hold only
// present keys (absent optionals omitted, never null) and integers as Go ints; it is not
// modified (grant ids are added to a copy).
func (s *Signer) SignDescriptor(descriptor map[string]any, opts ...SignOption) (json.RawMessage, error) {
	var cfg signConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.grantID != "" && len(cfg.grantIDs) > 0 {
		return nil, errors.New("sign: permissionGrantId and permissionGrantIds are mutually exclusive")
	}
	desc := make(map[string]any, len(descriptor)+1)
	for k, v := range descriptor {
		desc[k] = v
	}
	payload := signaturePayload{PermissionGrantID: cfg.grantID}
	if len(cfg.grantIDs) > 0 {
		payload.PermissionGrantIDs = canonicalGrantIDs(cfg.grantIDs)
		desc["permissionGrantIds"] = payload.PermissionGrantIDs
	}
	descJSON, descCID, err := descriptorAndCID(desc)
	if err != nil {
		return nil, err
	}
	payload.DescriptorCID = descCID
	sig, err := s.signJWS(payload)
	if err != nil {
		return nil, err
	}
	msg := map[string]any{
		"descriptor":    json.RawMessage(descJSON),
		"authorization": map[string]any{"signature": sig},
	}
	out, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("sign: marshal message: %w", err)
	}
	return out, nil
}

// signJWS produces a general JWS with exactly one EdDSA signature over payload.
func (s *Signer) signJWS(payload any) (generalJWS, error) {
	if s == nil || s.key == nil {
		return generalJWS{}, errors.New("sign: signer has no private key (load it with NewSigner)")
	}
	headerJSON, err := json.Marshal(jwsHeader{Alg: "EdDSA", Kid: s.KeyID})
	if err != nil {
		return generalJWS{}, err
	}
	payloadJSON, err := json.Marshal(payload)
	if err != nil {
		return generalJWS{}, err
	}
	protected, body := b64url(headerJSON), b64url(payloadJSON)
	signature := s.sign([]byte(protected + "." + body))
	return generalJWS{Payload: body, Signatures: []jwsSignature{{Protected: protected, Signature: b64url(signature)}}}, nil
}

func canonicalGrantIDs(ids []string) []string {
	set := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, dup := set[id]; dup || id == "" {
			continue
		}
		set[id] = struct{}{}
		out = append(out, id)
	}
	sort.Strings(out) // byte order = JS string order for CIDs
	return out
}

// VerifyMessage checks a message's authorization JWS: exactly one EdDSA signature by a did:jwk
// key that verifies, and a payload whose descriptorCid is the CID of the message's descriptor.
// Authors with other DID methods are reported as unsupported (we resolve did:jwk offline only).
func VerifyMessage(message json.RawMessage) error {
	var m struct {
		Descriptor    json.RawMessage `json:"descriptor"`
		Authorization *struct {
			Signature *generalJWS `json:"signature"`
		} `json:"authorization"`
	}
	if err := json.Unmarshal(message, &m); err != nil {
		return fmt.Errorf("verify: message is not a JSON object: %w", err)
	}
	if len(m.Descriptor) == 0 {
		return errors.New("verify: message has no descriptor")
	}
	if m.Authorization == nil || m.Authorization.Signature == nil {
		return errors.New("verify: message has no authorization.signature")
	}
	jws := m.Authorization.Signature
	if len(jws.Signatures) != 1 {
		return fmt.Errorf("verify: want exactly one signature, have %d", len(jws.Signatures))
	}
	headerJSON, err := b64urlDecode(jws.Signatures[0].Protected)
	if err != nil {
		return fmt.Errorf("verify: protected header is not base64url: %w", err)
	}
	var header jwsHeader
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return fmt.Errorf("verify: protected header is not JSON: %w", err)
	}
	if header.Alg != "EdDSA" {
		return fmt.Errorf("verify: alg %q not supported (want EdDSA)", header.Alg)
	}
	pub, err := DIDPublicKey(header.Kid)
	if err != nil {
		return fmt.Errorf("verify: signer %w", err)
	}
	sig, err := b64urlDecode(jws.Signatures[0].Signature)
	if err != nil {
		return fmt.Errorf("verify: signature is not base64url: %w", err)
	}
	input := jws.Signatures[0].Protected + "." + jws.Payload
	if !ed25519.Verify(pub, []byte(input), sig) {
		return fmt.Errorf("verify: signature by %s does not verify", truncate(header.Kid, 48))
	}
	payloadJSON, err := b64urlDecode(jws.Payload)
	if err != nil {
		return fmt.Errorf("verify: payload is not base64url: %w", err)
	}
	var payload struct {
		DescriptorCID string `json:"descriptorCid"`
	}
	if err := json.Unmarshal(payloadJSON, &payload); err != nil {
		return fmt.Errorf("verify: payload is not JSON: %w", err)
	}
	descCID, err := CIDOf(m.Descriptor)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if payload.DescriptorCID != descCID {
		return fmt.Errorf("verify: payload descriptorCid %s != descriptor CID %s", payload.DescriptorCID, descCID)
	}
	return nil
}

// signerDID returns the DID in the kid of a general JWS (the part before '#').
func signerDID(jws *generalJWS) (string, error) {
	if jws == nil || len(jws.Signatures) == 0 {
		return "", errors.New("no signature")
	}
	headerJSON, err := b64urlDecode(jws.Signatures[0].Protected)
	if err != nil {
		return "", err
	}
	var header jwsHeader
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return "", err
	}
	return strings.SplitN(header.Kid, "#", 2)[0], nil
}
