package e2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// Issue 10 §1 on the real @web5/dwn-server: a link whose remote was seeded before it started
// and stayed quiet opens its pull feed with no checkpoint. The remote's WebSocket is then cut
// (through a TCP proxy) while the doorbells of new writes are in flight, and more writes land
// during the redial. All of them must reach local without the periodic verify (24 h here),
// and once the feed is healthy again no stale error stays on the pull direction.
func TestEngineWeb5ReopenAfterDropLosesNothing(t *testing.T) {
	local, remote, client, id := twoServersOneTenant(t)
	u, err := url.Parse(remote.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	write := func(n int, what string) []string {
		var cids []string
		for i := 0; i < n; i++ {
			w, err := client.Write(remote.URL, id, dwnserver.WriteOpts{Data: []byte(fmt.Sprintf("%s %d", what, i)), DataFormat: "text/plain"})
			if err != nil {
				t.Fatalf("writing to the remote: %v", err)
			}
			cids = append(cids, w.CID)
		}
		return cids
	}
	write(3, "seed")

	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	te := startEngine(t, engineOpts{verifyInterval: 24 * time.Hour})
	key, err := te.Apply(syncer.LinkConfig{Name: "e2e/reopen", Tenant: id.DID, LocalEndpoint: local.URL, RemoteEndpoint: proxy.URL(),
		LocalSigner: signer, RemoteSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	tl, tr := tenantsOn(t, id.DID, signer, local.URL, remote.URL)
	eventually(t, time.Minute, "bootstrapped, live and clean", func() bool {
		s, _ := te.Snapshot(key)
		l := listCIDs(t, tl)
		return s.Phase == "live" && !s.NeedsReconcile && s.Pull.Pending == 0 && len(l) >= 3 && sameSet(l, listCIDs(t, tr))
	})

	proxy.Freeze()
	held := write(3, "doorbell in flight")
	before := proxy.Accepted()
	proxy.Cut()
	during := write(2, "during the redial")
	eventually(t, 30*time.Second, "the engine redialled the remote", func() bool { return proxy.Accepted() > before })

	want := append(held, during...)
	untruthful := ""
	eventually(t, time.Minute, "the writes of the outage reached local", func() bool {
		// Read the status before the listing: a write missing from the listing was missing
		// when the status was taken too.
		s, _ := te.Snapshot(key)
		l := listCIDs(t, tl)
		if s.Phase == "live" && !s.NeedsReconcile && s.Pull.Checkpoint == "" && !containsAll(l, want) {
			untruthful = fmt.Sprintf("%+v", s)
		}
		return containsAll(l, want)
	})
	if untruthful != "" {
		t.Errorf("live and clean with no pull checkpoint while writes were missing: %s", untruthful)
	}
	eventually(t, 30*time.Second, "healthy: live, clean, no stale error", func() bool {
		s, _ := te.Snapshot(key)
		return s.Phase == "live" && !s.NeedsReconcile && s.LastError == "" && s.Pull.LastError == ""
	})
}

func containsAll(list, want []string) bool {
	for _, s := range want {
		if !contains(list, s) {
			return false
		}
	}
	return true
}
