package ledger

import (
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// The three vectors of docs/engine-behaviour.md#scope-id.
func TestScopeIDVectors(t *testing.T) {
	cases := []struct {
		scope     dwn.Scope
		canonical string
		want      string
	}{
		{dwn.Scope{}, `{"kind":"full"}`, "zAqQlNC0GOw31aZ2pyPObCCPmHXzuxmOEyS4qn8QCYM"},
		{dwn.Scope{Protocol: "https://example.com/p"}, `{"kind":"protocol","protocol":"https://example.com/p"}`, "jceny9dYgwttytiJYB2osqn0boYAp_n9PFZ31Yhszac"},
		{dwn.Scope{Protocol: "https://example.com/p", ProtocolPathPrefixes: []string{"b", "a", "b"}},
			`{"kind":"protocol","protocol":"https://example.com/p","protocolPathPrefixes":["a","b"]}`, "1E-1a8UMG-VPvGImGdhO6yJHpk93l-FfA8AgAZuaLZw"},
	}
	for _, c := range cases {
		if got := canonicalScope(c.scope); got != c.canonical {
			t.Errorf("canonical(%+v) = %s, want %s", c.scope, got, c.canonical)
		}
		if got := ScopeID(c.scope); got != c.want {
			t.Errorf("ScopeID(%+v) = %s, want %s", c.scope, got, c.want)
		}
	}
}

// JSON.stringify does not escape <, > or &; Go's encoder would, and the id would differ.
func TestCanonicalScopeMatchesJSONStringify(t *testing.T) {
	got := canonicalScope(dwn.Scope{Protocol: "https://e.com/p?a=<b>&c=\"d\"\n"})
	want := `{"kind":"protocol","protocol":"https://e.com/p?a=<b>&c=\"d\"\n"}`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got := canonicalScope(dwn.Scope{Protocol: "x\x01"}); got != `{"kind":"protocol","protocol":"x\u0001"}` {
		t.Fatalf("control character: %s", got)
	}
}

func TestLinkKey(t *testing.T) {
	key, err := LinkKey("did:jwk:abc", "http://127.0.0.1:3000", dwn.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "did:jwk:abc^http://127.0.0.1:3000^zAqQlNC0GOw31aZ2pyPObCCPmHXzuxmOEyS4qn8QCYM"; key != want {
		t.Fatalf("key = %s, want %s", key, want)
	}
	for _, bad := range []struct{ tenant, endpoint, mention string }{
		{"did:jwk:a^b", "http://x", "tenant"},
		{"did:jwk:a", "http://x/?q=^", "remote endpoint"},
		{"", "http://x", "tenant DID is empty"},
		{"did:jwk:a", "", "remote endpoint is empty"},
	} {
		_, err := LinkKey(bad.tenant, bad.endpoint, dwn.Scope{})
		if err == nil || !strings.Contains(err.Error(), bad.mention) {
			t.Errorf("LinkKey(%q, %q) error = %v, want one naming %q", bad.tenant, bad.endpoint, err, bad.mention)
		}
	}
}
