package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	// rewriteAllowance bounds the writes to the target: messages × 1.2.
	rewriteAllowance = 1.2
)

// `dwnsync run` (the binary) is killed with SIGKILL at random points of a 3,000-message
// bootstrap between two real servers, and started again on the same --state-dir each time. The
// ledger survives every kill and says the bootstrap is unfinished; each restart resumes from it;
// at the end both servers hold the same messages with the same data, and the target received at
// most 1.2 writes per message (counted by a proxy in front of it, per message CID).
//
// The kill points are drawn from a seeded RNG (the seed is logged; DWNSYNC_FAULT_SEED replays it).
func TestRunSurvivesKill9DuringBootstrap(t *testing.T) {
	rng := seededRNG(t)
	bin := faulttest.BuildDwnsync(t)
	servers := dwnserver.Start(t, 2)
	a, b := servers[0], servers[1]
	client := dwnserver.NewClient(t)
	id, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	seeded := faulttest.SeedMany(t, client, a.URL, id, bootstrapNotes)
	proxy := faulttest.StartProxy(t, b.URL)

	dir := t.TempDir()
	file := filepath.Join(dir, "links.yaml")
	if err := os.WriteFile(file, []byte(linksYAML(id, a.URL, proxy.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir, addr := filepath.Join(dir, "state"), freeAddr(t)
	run := func(n int) *faulttest.Process {
		return faulttest.StartProcess(t, filepath.Join(dir, fmt.Sprintf("run-%d.log", n)), nil, bin,
			"run", "-f", file, "--state-dir", stateDir, "--listen", addr, "--progress-every", "2s")
	}

	killAt := killPoints(rng, seeded.ExpectedCIDs)
	t.Logf("killing at %v writes to the target (of %d messages to copy)", killAt, seeded.ExpectedCIDs)
	start := time.Now()
	var key string
	for i, at := range killAt {
		p := run(i)
		key = servedKey(t, p, addr)
		faulttest.Await(t, 3*time.Minute, fmt.Sprintf("%d writes to the target before kill %d", at, i+1), p, func() (bool, string) {
			total, distinct := proxy.Writes()
			return total >= at, fmt.Sprintf("%d writes, %d distinct", total, distinct)
		})
		if err := p.Kill(); err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		total, distinct := proxy.Writes()
		rec := faulttest.LedgerRecord(t, filepath.Join(stateDir, standalone.LedgerFile), key)
		t.Logf("kill %d at %v: %d writes to the target (%d distinct); ledger: status %q needsReconcile %v",
			i+1, time.Since(start).Round(time.Millisecond), total, distinct, rec.Status, rec.NeedsReconcile)
		if !rec.NeedsReconcile {
			t.Fatalf("after kill %d the ledger does not say the bootstrap is unfinished (needsReconcile false): a restart would not resume it", i+1)
		}
	}

	final := run(len(killAt))
	servedKey(t, final, addr)
	ta, tb := tenantsOf(t, id, a.URL, b.URL)
	faulttest.Await(t, 4*time.Minute, "the link live, reconciled, and both servers listing the same CIDs", final, func() (bool, string) {
		s, seen := linkStatus(addr)
		if s == nil || s.Phase != v1alpha1.PhaseLive || s.NeedsReconcile {
			return false, seen
		}
		la, errA := ta.ListCIDs(context.Background(), dwn.Scope{})
		lb, errB := tb.ListCIDs(context.Background(), dwn.Scope{})
		slices.Sort(la)
		slices.Sort(lb)
		return errA == nil && errB == nil && len(la) == seeded.ExpectedCIDs && slices.Equal(la, lb),
			fmt.Sprintf("%s; A %d CIDs (%v), B %d (%v)", seen, len(la), errA, len(lb), errB)
	})
	t.Logf("converged %v after the first start, through %d kills", time.Since(start).Round(time.Millisecond), len(killAt))
	if err := final.Terminate(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM after convergence: %v\n%s", err, final.LogTail(30))
	}
	if rec := faulttest.LedgerRecord(t, filepath.Join(stateDir, standalone.LedgerFile), key); rec.NeedsReconcile || rec.LastConverged.IsZero() {
		t.Fatalf("ledger after convergence: needsReconcile %v, lastConverged %v", rec.NeedsReconcile, rec.LastConverged)
	}

	checkStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ia, ib, err := faulttest.Inventories(ctx, ta, tb)
	if err != nil {
		t.Fatal(err)
	}
	if err := faulttest.SameInventory(ia, ib); err != nil {
		t.Fatalf("A and B differ: %v", err)
	}
	total, distinct := proxy.Writes()
	cid, most := proxy.MostWritten()
	t.Logf("%d CIDs with identical data on both sides (checked in %v); %d writes to the target for %d messages (%d distinct; at most %d of one, %s)",
		len(ia), time.Since(checkStart).Round(time.Millisecond), total, len(ia), distinct, most, cid)
	if limit := int(float64(len(ia)) * rewriteAllowance); total > limit {
		t.Fatalf("%d writes to the target for %d messages: more than %.1f× (%d); the restarts re-copied what was already there",
			total, len(ia), rewriteAllowance, limit)
	}
}

// seededRNG returns an RNG seeded from DWNSYNC_FAULT_SEED or the clock, and logs the seed.
func seededRNG(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DWNSYNC_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DWNSYNC_FAULT_SEED=%q: want an unsigned integer", s)
		}
		seed = v
	}
	t.Logf("fault seed %d (replay with DWNSYNC_FAULT_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// killPoints draws `kills` distinct, increasing write counts between 1 and 85 % of messages:
// kill i happens once the target has received that many writes.
func killPoints(rng *rand.Rand, messages int) []int {
	upTo := messages * 85 / 100
	points := map[int]bool{}
	for len(points) < kills {
		points[1+rng.IntN(upTo)] = true
	}
	out := make([]int, 0, kills)
	for p := range points {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
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

// tenantsOf opens the tenant on both servers, to inspect what each holds.
func tenantsOf(t *testing.T, id dwnserver.Identity, urlA, urlB string) (dwn.Tenant, dwn.Tenant) {
	t.Helper()
	signer, err := dwn.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	pool := dwn.NewPool(dwn.Options{})
	t.Cleanup(pool.Close)
	var tenants []dwn.Tenant
	for _, u := range []string{urlA, urlB} {
		c, err := pool.Get(context.Background(), u, dwn.DialectAuto)
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, c.Tenant(id.DID, signer))
	}
	return tenants[0], tenants[1]
}
