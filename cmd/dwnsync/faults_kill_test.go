package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

const (
	// bootstrapNotes is how many small records the source holds before the link starts (the
	// seed adds a mixed batch of ~80 messages more).
	bootstrapNotes = 3000
	// kills is how many times `dwnsync run` is killed with SIGKILL during the bootstrap.
	kills = 6
)

// `dwnsync run` (the binary) is killed with SIGKILL at random points of a 3,000-message
// bootstrap between two real servers, and started again on the same --state-dir each time. The
// ledger survives every kill and says the bootstrap is unfinished; each restart resumes from it;
// at the end both servers hold the same messages with the same data, and the target received at
// most 1.2 writes per message (counted by a proxy in front of it, per message CID).
//
// The kill points are drawn from a seeded RNG (the seed is logged; DWNSYNC_FAULT_SEED replays it).
func TestRunSurvivesKill9DuringBootstrap(t *testing.T) {
	rng := faulttest.SeededRNG(t)
	bin := faulttest.BuildDwnsync(t)
	client := dwnserver.NewClient(t)
	a, id, seeded := faulttest.SeededSource(t, client, bootstrapNotes)
	b := dwnserver.Start(t, 1)[0]
	proxy := faulttest.StartProxy(t, b.URL)

	dir := t.TempDir()
	file := filepath.Join(dir, "links.yaml")
	if err := os.WriteFile(file, []byte(linksYAML(id, a.URL, proxy.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir, addr := filepath.Join(dir, "state"), freeAddr(t)
	r := faulttest.KillRun{
		Start: func(n int) *faulttest.Process {
			return faulttest.StartProcess(t, filepath.Join(dir, fmt.Sprintf("run-%d.log", n)), nil, bin,
				"run", "-f", file, "--state-dir", stateDir, "--listen", addr, "--progress-every", "2s")
		},
		Ledger:   filepath.Join(stateDir, standalone.LedgerFile),
		LinkKey:  func(p *faulttest.Process) string { return servedKey(t, p, addr) },
		Proxy:    proxy,
		Messages: seeded.ExpectedCIDs,
		Kills:    kills,
	}
	start := time.Now()
	final, key := faulttest.KillDuringBootstrap(t, rng, r)

	signer, err := dwn.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	tenants := faulttest.TenantsOf(t, id.DID, signer, a.URL, b.URL)
	faulttest.Await(t, 8*time.Minute, "the link live, reconciled, and both servers listing every message", final, func() (bool, string) {
		s, seen := linkStatus(addr)
		if s == nil || s.Phase != v1alpha1.PhaseLive || s.NeedsReconcile {
			return false, seen
		}
		same, listed := faulttest.SameListing(tenants[0], tenants[1], seeded.ExpectedCIDs)
		return same, seen + "; " + listed
	})
	t.Logf("converged %v after the first start, through %d kills", time.Since(start).Round(time.Millisecond), kills)
	faulttest.CheckBootstrapped(t, r, final, key, tenants[0], tenants[1])
}

// linksYAML is a links file with one `both` link of the tenant id between local and remote.
func linksYAML(id dwnserver.Identity, local, remote string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: tenant-signer
stringData:
  did: %s
  privateJwk: '%s'
---
apiVersion: dwnsync.io/v1alpha1
kind: ReplicationLink
metadata:
  name: tenant
spec:
  tenant: %s
  localEndpoint: %s
  endpoint: %s
  signer:
    secretRef:
      name: tenant-signer
`, id.DID, id.PrivateJWK, id.DID, local, remote)
}

// servedKey waits for the process to serve its link's status and returns the link's ledger key.
func servedKey(t *testing.T, p *faulttest.Process, addr string) string {
	t.Helper()
	var key string
	faulttest.Await(t, time.Minute, "the link in /status", p, func() (bool, string) {
		s, seen := linkStatus(addr)
		if s == nil || s.LinkKey == "" {
			return false, seen
		}
		key = s.LinkKey
		return true, seen
	})
	return key
}

// linkStatus is the one link's status served by `dwnsync run` at addr, or nil, and what was seen.
func linkStatus(addr string) (*v1alpha1.ReplicationLinkStatus, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := standalone.FetchStatus(ctx, addr)
	if err != nil {
		return nil, err.Error()
	}
	if len(list.Items) != 1 {
		return nil, fmt.Sprintf("%d links", len(list.Items))
	}
	s := &list.Items[0].Status
	seen := fmt.Sprintf("phase %q needsReconcile %v lastError %q", s.Phase, s.NeedsReconcile, s.LastError)
	if s.Progress != nil {
		seen += fmt.Sprintf(" progress %d/%d", s.Progress.Applied, s.Progress.Total)
	}
	return s, seen
}
