package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

// `dwnsync run` (the binary) is killed with SIGKILL at random points of a 3,000-message
// bootstrap between two real servers, and started again on the same --state-dir each time. The
// ledger survives every kill and says the bootstrap is unfinished; each restart resumes from it;
// at the end both servers hold the same messages with the same data, and the target received at
// most 1.2 writes per message (counted by a proxy in front of it, per message CID).
//
// The kill points are drawn from a seeded RNG (the seed is logged; DWNSYNC_FAULT_SEED replays it).
func TestRunSurvivesKill9DuringBootstrap(t *testing.T) {
	bs := faulttest.NewBootstrap(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "links.yaml")
	if err := os.WriteFile(file, []byte(linksYAML(bs.Tenant, bs.Source.URL, bs.Proxy.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir, addr := filepath.Join(dir, "state"), freeAddr(t)
	bs.Run(t, faulttest.KillRun{
		Start: func(n int) *faulttest.Process {
			return faulttest.StartProcess(t, filepath.Join(dir, fmt.Sprintf("run-%d.log", n)), nil, bs.Bin,
				"run", "-f", file, "--state-dir", stateDir, "--listen", addr, "--progress-every", "2s")
		},
		Ledger:  filepath.Join(stateDir, standalone.LedgerFile),
		LinkKey: func(p *faulttest.Process) string { return servedKey(t, p, addr) },
	}, func() (bool, string) {
		s, seen := linkStatus(addr)
		return s != nil && s.Phase == v1alpha1.PhaseLive && !s.NeedsReconcile, seen
	})
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
