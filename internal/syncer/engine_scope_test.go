package syncer

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// A protocol-scoped link replicates that protocol only, by reconcile and by the live feeds.
func TestEngineProtocolScope(t *testing.T) {
	for _, mode := range modes() {
		t.Run(string(mode), func(t *testing.T) {
			local := dwntest.Start(t, dwntest.Options{Mode: mode})
			remote := dwntest.Start(t, dwntest.Options{Mode: mode})
			id := dwntest.MustIdentity(t)
			const in, out = "https://example.com/in", "https://example.com/out"
			put := func(n *dwntest.Node, w dwntest.Written, err error) string {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				if r := n.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
					t.Fatalf("seeding %s: %+v", w, r)
				}
				return w.CID
			}
			var want, notWanted []string
			for _, p := range []string{in, out} {
				w, err := id.ConfigureProtocol(p)
				c := put(remote, w, err)
				if p == in {
					want = append(want, c)
				} else {
					notWanted = append(notWanted, c)
				}
				for i := 0; i < 3; i++ {
					w, err := id.Write(dwntest.WriteOpts{Protocol: p, ProtocolPath: "note", Data: []byte(p + string(rune('a'+i)))})
					c := put(remote, w, err)
					if p == in {
						want = append(want, c)
					} else {
						notWanted = append(notWanted, c)
					}
				}
			}
			te := startEngine(t, engineOpts{})
			key, err := te.Apply(LinkConfig{Name: "scoped", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
				Scope: dwn.Scope{Protocol: in}, LocalSigner: id.Signer, RemoteSigner: id.Signer})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "scoped bootstrap", func() bool {
				s, _ := te.Snapshot(key)
				l := local.CIDs(id.DID)
				for _, c := range want {
					if !contains(l, c) {
						return false
					}
				}
				return s.Phase == "live" && !s.NeedsReconcile
			})
			wl, err := id.Write(dwntest.WriteOpts{Protocol: in, ProtocolPath: "note", Data: []byte("live in")})
			liveIn := put(remote, wl, err)
			wo, err := id.Write(dwntest.WriteOpts{Protocol: out, ProtocolPath: "note", Data: []byte("live out")})
			notWanted = append(notWanted, put(remote, wo, err))
			eventually(t, 20*time.Second, "live in-scope write pulled", func() bool { return contains(local.CIDs(id.DID), liveIn) })
			marker, err := id.Write(dwntest.WriteOpts{Protocol: in, ProtocolPath: "note", Data: []byte("marker")})
			m := put(remote, marker, err)
			eventually(t, 20*time.Second, "marker pulled", func() bool { return contains(local.CIDs(id.DID), m) })
			l := local.CIDs(id.DID)
			for _, c := range notWanted {
				if contains(l, c) {
					t.Fatalf("out-of-scope message %s replicated", c)
				}
			}
		})
	}
}
