package linkconfig_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/linkconfig/secrettest"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

func secret(t *testing.T, data map[string]string) (*corev1.Secret, string) {
	t.Helper()
	s, jwk, err := dwnmsg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sig"},
		Data: map[string][]byte{"did": []byte(s.DID), "privateJwk": jwk}}
	for k, v := range data {
		if v == "" {
			delete(sec.Data, k)
		} else {
			sec.Data[k] = []byte(v)
		}
	}
	return sec, s.DID
}

func TestSignerErrorsNameSecretAndKey(t *testing.T) {
	other, _, _ := dwnmsg.GenerateSigner()
	cases := []struct {
		name, key string
		data      map[string]string
	}{
		{"no did", "did", map[string]string{"did": ""}},
		{"no key", "privateJwk", map[string]string{"privateJwk": ""}},
		{"not json", "privateJwk", map[string]string{"privateJwk": "{"}},
		{"other identity", "privateJwk", map[string]string{"did": other.DID}},
		{"bad did", "did", map[string]string{"did": "did:web:example.com"}},
		{"bad grants", "grants", map[string]string{"grants": `{"*": {"Write": "x"}}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sec, _ := secret(t, c.data)
			_, _, err := linkconfig.Signer(sec)
			var le *linkconfig.Error
			if !errors.As(err, &le) || le.Reason != linkconfig.ReasonSecretInvalid {
				t.Fatalf("err %v", err)
			}
			if !strings.Contains(le.Message, `ns/sig key "`+c.key+`"`) {
				t.Fatalf("message does not name the key %q: %s", c.key, le.Message)
			}
			if strings.Contains(le.Message, string(sec.Data["privateJwk"])) && len(sec.Data["privateJwk"]) > 2 {
				t.Fatal("message leaks the private key")
			}
		})
	}
}

func TestSignerFromStringData(t *testing.T) {
	sec, did := secret(t, nil)
	sec.StringData = map[string]string{"did": string(sec.Data["did"]), "privateJwk": string(sec.Data["privateJwk"])}
	sec.Data = nil
	s, _, err := linkconfig.Signer(sec)
	if err != nil || s.DID != did {
		t.Fatalf("signer %v err %v", s, err)
	}
}

func TestBuild(t *testing.T) {
	sec, did := secret(t, map[string]string{"grants": `{"https://remote.test": {"Query": "gq", "Read": "gr", "Subscribe": "gs"}, "*": {"Query": "lq"}}`})
	signer, grants, err := linkconfig.Signer(sec)
	if err != nil {
		t.Fatal(err)
	}
	link := &v1alpha1.ReplicationLink{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "l"}, Spec: v1alpha1.ReplicationLinkSpec{
		Tenant: did, Endpoint: "https://remote.test", Protocol: "https://example.com/chat",
		ProtocolPathPrefixes: []v1alpha1.ProtocolPathPrefix{"thread"}, Suspend: true,
	}}
	link.Default()
	cfg, err := linkconfig.Build(link, signer, grants, linkconfig.Defaults{LocalEndpoint: "http://local.test:3000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "ns/l" || cfg.LocalEndpoint != "http://local.test:3000" || cfg.Direction != linkstate.Both || cfg.Mode != linkstate.ModeLive ||
		cfg.PollInterval != 2*time.Minute || cfg.Dialect != dwn.DialectAuto || cfg.LocalDialect != dwn.DialectAuto || !cfg.Suspend ||
		cfg.Scope.Protocol != "https://example.com/chat" || len(cfg.Scope.ProtocolPathPrefixes) != 1 {
		t.Fatalf("cfg %+v", cfg)
	}
	if cfg.RemoteSigner.Grants["Read"] != "gr" || cfg.LocalSigner.Grants["Query"] != "lq" || cfg.LocalSigner.Grants["Read"] != "" {
		t.Fatalf("grants: remote %v local %v", cfg.RemoteSigner.Grants, cfg.LocalSigner.Grants)
	}

	link.Spec.LocalEndpoint = ""
	if _, err := linkconfig.Build(link, signer, grants, linkconfig.Defaults{}); err == nil || !strings.Contains(err.Error(), "--local-endpoint") {
		t.Fatalf("no local endpoint: %v", err)
	}
	if _, err := linkconfig.Build(link, signer, grants, linkconfig.Defaults{LocalEndpoint: "https://remote.test/"}); err == nil || !strings.Contains(err.Error(), "local server itself") {
		t.Fatalf("local = remote: %v", err)
	}
}

// A Secret whose did and privateJwk are swapped (or otherwise wrong) is refused with a message
// that says which key looks wrong and why, and holds no piece of either value.
func TestSignerErrorsNeverEchoSecretValues(t *testing.T) {
	s, jwk, err := dwnmsg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	parts := append(secrettest.PrivateParts(t, jwk), strings.TrimPrefix(s.DID, "did:jwk:"))
	var k map[string]string
	_ = json.Unmarshal(jwk, &k)
	k["kty"] = k["d"] // a private value where a public one belongs
	oddKty, _ := json.Marshal(k)
	cases := []struct {
		name, did, jwk, key, want string
	}{
		{"swapped", string(jwk), s.DID, "did", "does not look like a DID (it looks like a JSON object; did you swap did and privateJwk?)"},
		{"jwk in both", string(jwk), string(jwk), "did", "does not look like a DID (it looks like a JSON object)"},
		{"did in both", s.DID, s.DID, "privateJwk", "does not look like a JWK (it looks like a DID; did you swap did and privateJwk?)"},
		{"d as did", "did:key:" + k["d"], string(jwk), "did", "is a DID of another method"},
		{"d as kty", s.DID, string(oddKty), "privateJwk", "not an Ed25519 key"},
		{"truncated jwk", s.DID, string(jwk[:40]), "privateJwk", "is not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sig"},
				Data: map[string][]byte{"did": []byte(c.did), "privateJwk": []byte(c.jwk)}}
			_, _, err := linkconfig.Signer(sec)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, `signer Secret ns/sig key "`+c.key+`": `+c.want) {
				t.Errorf("message does not say key %q %s", c.key, c.want)
			}
			if piece := secrettest.Leak(msg, parts...); piece != "" {
				t.Errorf("message holds %q, a piece of a Secret value", piece)
			}
		})
	}
}

// A private seed pasted after did:jwk: decodes to bytes that are not JSON: the error says so in
// its own words, without the JSON parser's, which quote the first byte of the decoded seed.
func TestDIDErrorsQuoteNoDecodedByte(t *testing.T) {
	s, jwk, err := dwnmsg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]string
	_ = json.Unmarshal(jwk, &k)
	seed, err := base64.RawURLEncoding.DecodeString(k["d"])
	if err != nil {
		t.Fatal(err)
	}
	seed[0] = 0xb7 // not a byte JSON can start with, so the parser quotes it
	did := "did:jwk:" + base64.RawURLEncoding.EncodeToString(seed)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sig"},
		Data: map[string][]byte{"did": []byte(did), "privateJwk": jwk}}
	_, _, err = linkconfig.Signer(sec)
	if err == nil {
		t.Fatalf("accepted did %s for %s", did, s.DID)
	}
	msg := err.Error()
	if strings.Contains(msg, "'\u00b7'") || strings.Contains(msg, "invalid character") {
		t.Errorf("the message quotes a decoded byte of the did: %s", msg)
	}
	if !strings.Contains(msg, `signer Secret ns/sig key "did": `) || !strings.Contains(msg, "not a base64url-encoded JSON JWK") {
		t.Errorf("the message does not say what is wrong with key did: %s", msg)
	}
}
