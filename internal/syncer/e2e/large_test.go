package e2e

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// docs/engine-behaviour.md#e18: payloads of ≤ 30 KB (inline), between 30 KB and 1 MiB, and above 1
// MiB cross in both directions, by reconcile and by the live feeds, with their data intact (the
// seed dropped the data of anything above its 1 MiB buffer).
func TestE18_LargePayloadsBothWays(t *testing.T) {
	a, b, client, id := twoServersOneTenant(t)
	sizes := []int{20_000, 100_000, 1_500_000}
	write := func(url string) []string {
		var cids []string
		for _, n := range sizes {
			data := make([]byte, n)
			_, _ = rand.Read(data)
			w, err := client.Write(url, id, dwnserver.WriteOpts{Data: data, DataFormat: "application/octet-stream"})
			if err != nil {
				t.Fatalf("writing %d bytes to %s: %v", n, url, err)
			}
			cids = append(cids, w.CID)
		}
		return cids
	}
	onA, onB := write(a.URL), write(b.URL)

	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	te := startEngine(t, engineOpts{})
	key, err := te.Apply(syncer.LinkConfig{Name: "e2e/large", Tenant: id.DID, LocalEndpoint: a.URL, RemoteEndpoint: b.URL,
		LocalSigner: signer, RemoteSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	ta, tb := tenantsOn(t, id.DID, signer, a.URL, b.URL)
	eventually(t, 2*time.Minute, "bootstrap copied every payload", func() bool {
		s, _ := te.Snapshot(key)
		la, lb := listCIDs(t, ta), listCIDs(t, tb)
		return s.Phase == "live" && !s.NeedsReconcile && len(la) >= 6 && sameSet(la, lb)
	})
	liveA, liveB := write(a.URL), write(b.URL)
	eventually(t, 2*time.Minute, "live payloads crossed", func() bool {
		la, lb := listCIDs(t, ta), listCIDs(t, tb)
		for _, c := range append(append([]string{}, liveA...), liveB...) {
			if !contains(la, c) || !contains(lb, c) {
				return false
			}
		}
		return true
	})
	ia, ib := inventory(t, ta), inventory(t, tb)
	for _, c := range append(append(append(onA, onB...), liveA...), liveB...) {
		if ia[c] == "" || ia[c] == faulttest.NoData || ia[c] != ib[c] {
			t.Fatalf("message %s: data hash %q on A, %q on B", c, ia[c], ib[c])
		}
	}
	t.Logf("%d messages with payloads of %v bytes identical on both servers", len(ia), sizes)
}
