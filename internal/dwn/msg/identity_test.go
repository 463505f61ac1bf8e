package msg

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestNewSignerRoundTrip(t *testing.T) {
	gen, priv, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := NewSigner(gen.DID, priv)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.DID != gen.DID || loaded.KeyID != gen.DID+"#0" {
		t.Fatalf("loaded %s / %s", loaded.DID, loaded.KeyID)
	}
	if !loaded.PublicKey().Equal(gen.PublicKey()) {
		t.Fatal("public keys differ")
	}
	pub, err := DIDPublicKey(gen.DID + "#0")
	if err != nil || !pub.Equal(gen.PublicKey()) {
		t.Fatalf("DIDPublicKey: %v", err)
	}
}

// web5's @web5/dids writes the JWK as {"crv","kty","x"}: the DID differs in bytes but must load.
func TestNewSignerAcceptsWeb5MemberOrder(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	jwkJSON := `{"crv":"Ed25519","kty":"OKP","x":"` + b64url(s.PublicKey()) + `"}`
	did := "did:jwk:" + b64url([]byte(jwkJSON))
	priv := `{"crv":"Ed25519","d":"` + b64url(vectorSeed()) + `","kty":"OKP","x":"` + b64url(s.PublicKey()) + `"}`
	loaded, err := NewSigner(did, []byte(priv))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.DID != did {
		t.Fatalf("the DID must be kept verbatim: %s", loaded.DID)
	}
}

func TestNewSignerRefusesMismatches(t *testing.T) {
	a, privA, _ := GenerateSigner()
	b, _, _ := GenerateSigner()
	cases := []struct {
		name, did, jwk, want string
	}{
		{"key of another DID", b.DID, string(privA), "different DID"},
		{"not did:jwk", "did:web:example.com", string(privA), "not a did:jwk"},
		{"garbage JWK", a.DID, "nope", "not JSON"},
		{"wrong curve", a.DID, `{"kty":"EC","crv":"P-256","d":"AA"}`, "want OKP"},
		{"short d", a.DID, `{"kty":"OKP","crv":"Ed25519","d":"AAEC"}`, "32-byte"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSigner(c.did, []byte(c.jwk))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// The private key must not leak through any printing path.
func TestSignerNeverPrintsKey(t *testing.T) {
	s, priv, _ := GenerateSigner()
	var k struct{ D string }
	_ = json.Unmarshal(priv, &k)
	js, _ := json.Marshal(s)
	jsVal, _ := json.Marshal(*s)
	outputs := []string{
		fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", *s),
		fmt.Sprintf("%+v", *s), fmt.Sprintf("%#v", *s), fmt.Sprintf("%x", *s), fmt.Sprintf("%d", *s),
		fmt.Sprintf("%s", s), string(js), string(jsVal),
		fmt.Sprintf("%v", struct{ S *Signer }{s}), fmt.Sprintf("%+v", []Signer{*s}),
	}
	seed := s.key.Seed()
	for _, out := range outputs {
		if strings.Contains(out, k.D) || strings.Contains(out, fmt.Sprintf("%x", seed)) ||
			strings.Contains(out, fmt.Sprint([]byte(seed))) || strings.Contains(out, fmt.Sprint([]byte(s.key))) {
			t.Fatalf("private key leaked: %s", out)
		}
		if !strings.Contains(out, s.DID[:20]) {
			t.Fatalf("output lost the DID: %s", out)
		}
	}
}

func TestWithGrantsCopies(t *testing.T) {
	s := signerFromSeed(vectorSeed())
	g := Grants{"Query": "q"}
	d := s.WithGrants(g)
	g["Query"] = "changed"
	if d.Grants["Query"] != "q" || s.Grants != nil {
		t.Fatal("WithGrants must copy and leave the original alone")
	}
	if _, err := d.SignDescriptor(map[string]any{"interface": "Messages"}); err != nil {
		t.Fatal("copy lost the key:", err)
	}
}

func TestEndpointGrants(t *testing.T) {
	g, err := ParseEndpointGrants([]byte(`{"http://a:1":{"Query":"q1","Read":"r1"},"*":{"Query":"q*"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.For("http://a:1/")["Read"] != "r1" || g.For("http://b:2")["Query"] != "q*" {
		t.Fatalf("lookup wrong: %v", g)
	}
	if _, err := ParseEndpointGrants([]byte(`{"*":{"Write":"x"}}`)); err == nil || !strings.Contains(err.Error(), "Write") {
		t.Fatalf("unknown method accepted: %v", err)
	}
	if g, err := ParseEndpointGrants(nil); err != nil || g != nil {
		t.Fatal("empty grants must be nil, nil")
	}
}

// Equal is what decides whether a reloaded Secret restarts a link: a signer loaded again from
// the same key is equal; other grants, another key, or nil on one side are not.
func TestSignerEqual(t *testing.T) {
	gen, priv, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewSigner(gen.DID, priv)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	rekeyed := *again // same DID and key id, another private key
	rekeyed.key = other.key
	for _, c := range []struct {
		name string
		a, b *Signer
		want bool
	}{
		{"loaded again", gen, again, true},
		{"same grants", gen.WithGrants(Grants{"Query": "g"}), again.WithGrants(Grants{"Query": "g"}), true},
		{"other grants", gen.WithGrants(Grants{"Query": "g"}), again.WithGrants(Grants{"Query": "h"}), false},
		{"grants added", gen, again.WithGrants(Grants{"Read": "g"}), false},
		{"other tenant", gen, other, false},
		{"rotated key", gen, &rekeyed, false},
		{"nil and a signer", nil, gen, false},
		{"both nil", nil, nil, true},
	} {
		if got := c.a.Equal(c.b); got != c.want {
			t.Errorf("%s: Equal = %v, want %v", c.name, got, c.want)
		}
	}
}
