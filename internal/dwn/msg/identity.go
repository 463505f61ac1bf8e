package msg

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/dwnsync/dwnsync/internal/baseurl"
)

const didJWKPrefix = "did:jwk:"

// Grants maps a Messages method ("Query", "Read", "Subscribe") to the permission grant id a
// delegate signer invokes for it. web5 servers want one grant per method; enbox servers accept
// a Messages "Read" grant for all three (put the same id under each key).
type Grants map[string]string

// EndpointGrants is the `grants` entry of a signer Secret: grants per endpoint URL, with "*"
// for endpoints not listed.
type EndpointGrants map[string]Grants

// For returns the grants to use against endpoint (exact match, then "*", else nil).
func (e EndpointGrants) For(endpoint string) Grants {
	if g, ok := e[baseurl.Normalize(endpoint)]; ok {
		return g
	}
	if g, ok := e[endpoint]; ok {
		return g
	}
	return e["*"]
}

// ParseEndpointGrants reads the Secret's `grants` JSON. Empty input means no grants.
func ParseEndpointGrants(data []byte) (EndpointGrants, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var g EndpointGrants
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf(`grants: want JSON {"<endpoint>|*": {"Query":"<grant id>",...}}: %w`, err)
	}
	for ep, byMethod := range g {
		for method, id := range byMethod {
			switch method {
			case "Query", "Read", "Subscribe":
			default:
				return nil, fmt.Errorf("grants[%q]: unknown Messages method %q (want Query, Read or Subscribe)", ep, method)
			}
			if id == "" {
				return nil, fmt.Errorf("grants[%q][%q]: empty grant id", ep, method)
			}
		}
	}
	return g, nil
}

// Signer signs DWN messages as one did:jwk Ed25519 identity: the tenant itself, or a delegate
// holding Messages permission grants. The private key is unexported and every printing path
// (fmt verbs, %#v, JSON) shows only the DID, so a Signer can safely reach a log line.
type Signer struct {
	DID    string
	KeyID  string // DID + "#0", the JWS kid
	Grants Grants

	key ed25519.PrivateKey
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	D   string `json:"d,omitempty"`
}

// NewSigner loads a signer from its DID and private JWK (`{"kty":"OKP","crv":"Ed25519","x","d"}`).
// The DID must be a did:jwk whose key equals the JWK's public key, so a mixed-up Secret is
// refused here rather than as a 401 from a server.
func NewSigner(did string, privateJWK []byte) (*Signer, error) {
	pub, err := DIDPublicKey(did)
	if err != nil {
		return nil, fmt.Errorf("signer did: %w", err)
	}
	var k jwk
	if err := json.Unmarshal(privateJWK, &k); err != nil {
		return nil, errors.New("signer privateJwk: not JSON; want {\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":…,\"d\":…}")
	}
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, fmt.Errorf("signer privateJwk: kty %q crv %q, want OKP / Ed25519", k.Kty, k.Crv)
	}
	seed, err := b64urlDecode(k.D)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("signer privateJwk: field d must be the base64url 32-byte Ed25519 seed")
	}
	key := ed25519.NewKeyFromSeed(seed)
	derived := key.Public().(ed25519.PublicKey)
	if k.X != "" {
		x, err := b64urlDecode(k.X)
		if err != nil || !derived.Equal(ed25519.PublicKey(x)) {
			return nil, errors.New("signer privateJwk: x does not match d (corrupt key)")
		}
	}
	if !derived.Equal(pub) {
		return nil, errors.New("signer: privateJwk belongs to a different DID than `did` (fix the Secret: did and privateJwk must be one identity)")
	}
	did = strings.SplitN(did, "#", 2)[0]
	return &Signer{DID: did, KeyID: did + "#0", key: key}, nil
}

// GenerateSigner makes a fresh did:jwk identity and returns it with its private JWK JSON (the
// form a Secret stores).
func GenerateSigner() (*Signer, []byte, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return SignerFromSeed(seed)
}

// SignerFromSeed is the did:jwk identity of an Ed25519 seed, with its private JWK JSON: the
// same identity in every run (tests that need stable DIDs, and vectors).
func SignerFromSeed(seed []byte) (*Signer, []byte, error) {
	s := signerFromSeed(seed)
	priv, err := json.Marshal(jwk{Kty: "OKP", Crv: "Ed25519", X: b64url(s.PublicKey()), D: b64url(s.key.Seed())})
	if err != nil {
		return nil, nil, err
	}
	return s, priv, nil
}

// signerFromSeed builds a signer from a raw seed (tests and vectors).
func signerFromSeed(seed []byte) *Signer {
	key := ed25519.NewKeyFromSeed(seed)
	did := DIDForPublicKey(key.Public().(ed25519.PublicKey))
	return &Signer{DID: did, KeyID: did + "#0", key: key}
}

// WithGrants returns a copy of s that invokes grants (nil = sign as the owner).
func (s *Signer) WithGrants(g Grants) *Signer {
	c := *s
	c.Grants = make(Grants, len(g))
	for k, v := range g {
		c.Grants[k] = v
	}
	return &c
}

// PublicKey is the signer's Ed25519 public key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Equal reports whether two signers sign identically: the same DID, key id, grants and private
// key (a rotated key under the same DID and key id is a different signer). Nil equals only nil.
func (s *Signer) Equal(o *Signer) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.DID == o.DID && s.KeyID == o.KeyID && maps.Equal(s.Grants, o.Grants) && s.key.Equal(o.key)
}

func (s *Signer) sign(input []byte) []byte { return ed25519.Sign(s.key, input) }

// String, GoString, Format and MarshalJSON keep the private key out of logs and dumps.
func (s Signer) String() string {
	return fmt.Sprintf("Signer{DID:%s grants:%d}", s.DID, len(s.Grants))
}

func (s Signer) GoString() string { return s.String() }

func (s Signer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

func (s Signer) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		DID    string `json:"did"`
		KeyID  string `json:"keyId"`
		Grants Grants `json:"grants,omitempty"`
	}{s.DID, s.KeyID, s.Grants})
}

// DIDForPublicKey is the did:jwk of an Ed25519 public key, with the JWK members in the order
// kty, crv, x (the DID is the base64url of that exact JSON).
func DIDForPublicKey(pub ed25519.PublicKey) string {
	b, _ := json.Marshal(jwk{Kty: "OKP", Crv: "Ed25519", X: b64url(pub)})
	return didJWKPrefix + b64url(b)
}

// DIDPublicKey resolves a did:jwk (or a DID URL of one, e.g. "did:jwk:…#0") to its Ed25519
// public key. did:jwk needs no network: the key is the DID.
func DIDPublicKey(did string) (ed25519.PublicKey, error) {
	did = strings.SplitN(did, "#", 2)[0]
	if !strings.HasPrefix(did, didJWKPrefix) {
		return nil, fmt.Errorf("%q is not a did:jwk (only did:jwk Ed25519 identities are supported)", truncate(did, 40))
	}
	raw, err := b64urlDecode(strings.TrimPrefix(did, didJWKPrefix))
	if err != nil {
		return nil, fmt.Errorf("did:jwk: method-specific id is not base64url: %w", err)
	}
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("did:jwk: embedded JWK is not JSON: %w", err)
	}
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, fmt.Errorf("did:jwk: key kty %q crv %q, want OKP / Ed25519", k.Kty, k.Crv)
	}
	if k.D != "" {
		return nil, errors.New("did:jwk: the DID embeds a private key (d); refusing it")
	}
	x, err := b64urlDecode(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, errors.New("did:jwk: x must be a base64url 32-byte Ed25519 public key")
	}
	return ed25519.PublicKey(x), nil
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// b64urlDecode accepts base64url with or without padding (JS encoders differ).
func b64urlDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
