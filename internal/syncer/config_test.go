package syncer

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// Same is the one test of "did this link's configuration change", for the engine, the operator
// and `dwnsync run`: a config built again from the same inputs (new signer values) is the same;
// any field that changes how the link runs is not; how the key was taken is not a change.
func TestLinkConfigSame(t *testing.T) {
	signer, priv, err := msg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	base := func() LinkConfig {
		s, err := msg.NewSigner(signer.DID, priv) // a fresh value each time, as a reload builds
		if err != nil {
			t.Fatal(err)
		}
		return LinkConfig{Name: "ns/a", Tenant: signer.DID, LocalEndpoint: "http://127.0.0.1:1", RemoteEndpoint: "http://127.0.0.1:2",
			Scope: dwn.Scope{Protocol: "https://example.org/p"}, PollInterval: time.Minute,
			LocalSigner: s, RemoteSigner: s, Owner: "uid-1"}
	}
	other, _, err := msg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		change func(*LinkConfig)
		same   bool
	}{
		{"built again", func(*LinkConfig) {}, true},
		{"taken over from another owner", func(c *LinkConfig) { c.Supersedes = "uid-0" }, true},
		{"other remote", func(c *LinkConfig) { c.RemoteEndpoint = "http://127.0.0.1:3" }, false},
		{"other scope", func(c *LinkConfig) { c.Scope.Protocol = "https://example.org/q" }, false},
		{"suspended", func(c *LinkConfig) { c.Suspend = true }, false},
		{"poll interval", func(c *LinkConfig) { c.PollInterval = 2 * time.Minute }, false},
		{"new grants", func(c *LinkConfig) { c.RemoteSigner = c.RemoteSigner.WithGrants(msg.Grants{"Query": "g"}) }, false},
		{"new key", func(c *LinkConfig) { c.LocalSigner = other }, false},
		{"other owner", func(c *LinkConfig) { c.Owner = "uid-2" }, false},
	} {
		a, b := base(), base()
		c.change(&b)
		if got := a.Same(b); got != c.same {
			t.Errorf("%s: Same = %v, want %v", c.name, got, c.same)
		}
	}
}
