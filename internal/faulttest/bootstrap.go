package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// KillRun describes a bootstrap that a test interrupts with SIGKILL: how to start the process
// (the n-th start), where its ledger is, and how to learn the link's ledger key from a running
// process.
type KillRun struct {
	Start    func(n int) *Process
	Ledger   string
	LinkKey  func(p *Process) string
	Proxy    *Proxy // in front of the target: the kills happen at counts of its writes
	Messages int    // what the bootstrap copies
	Kills    int
}

// KillDuringBootstrap starts the process and kills it with SIGKILL once the target has received
// each of Kills random write counts (KillPoints), starting it again after each kill. After every
// kill the ledger must open and say the bootstrap is unfinished, which is what makes the next
// start resume it. It returns the process started after the last kill and the link's key.
func KillDuringBootstrap(t testing.TB, rng *rand.Rand, r KillRun) (final *Process, key string) {
	t.Helper()
	killAt := KillPoints(rng, r.Kills, r.Messages)
	t.Logf("killing at %v writes to the target (of %d messages to copy)", killAt, r.Messages)
	start := time.Now()
	for i, at := range killAt {
		p := r.Start(i)
		if key == "" {
			key = r.LinkKey(p)
		}
		// Generous: on a loaded two-core machine the bootstrap was seen copying ~10 messages/s,
		// and ~2/s with three test runs at once. A stuck copy still fails, within stepTimeout.
		Await(t, stepTimeout, fmt.Sprintf("%d writes to the target before kill %d", at, i+1), p, func() (bool, string) {
			total, distinct := r.Proxy.Writes()
			return total >= at, fmt.Sprintf("%d writes, %d distinct", total, distinct)
		})
		if err := p.Kill(); err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		total, distinct := r.Proxy.Writes()
		rec := LedgerRecord(t, r.Ledger, key)
		t.Logf("kill %d at %v: %d writes to the target (%d distinct); ledger: status %q needsReconcile %v",
			i+1, time.Since(start).Round(time.Millisecond), total, distinct, rec.Phase, rec.NeedsReconcile)
		if !rec.NeedsReconcile {
			t.Fatalf("after kill %d the ledger does not say the bootstrap is unfinished (needsReconcile false): a restart would not resume it", i+1)
		}
	}
	return r.Start(len(killAt)), key
}

// inventoryTimeout bounds reading every message's data on both servers at the end.
const inventoryTimeout = 20 * time.Minute

// stepTimeout bounds each wait of a kill run for the copy to move on (the writes before the
// next kill, the final convergence): only a copy that stopped moving, or a machine far slower
// than any seen, reaches it. The whole test is bounded by go test's -timeout (make test: 60 min).
const stepTimeout = 15 * time.Minute

// CheckBootstrapped stops the final process with SIGTERM, checks that its ledger says the link
// converged, that both tenants hold the same CIDs with the same data, and that the target
// received at most RewriteAllowance writes per message.
func CheckBootstrapped(t testing.TB, r KillRun, final *Process, key string, local, remote dwn.Tenant) {
	t.Helper()
	if err := final.Terminate(45 * time.Second); err != nil {
		t.Fatalf("SIGTERM after convergence: %v\n%s", err, final.LogTail(30))
	}
	if rec := LedgerRecord(t, r.Ledger, key); rec.NeedsReconcile || rec.LastConverged.IsZero() {
		t.Fatalf("ledger after convergence: needsReconcile %v, lastConverged %v", rec.NeedsReconcile, rec.LastConverged)
	}
	start := time.Now()
	// ~6,000 reads: a loaded 2-core machine served ~6.5 reads/s per web5 server, so 6 minutes ran
	// out (760 of 3,081 reads unfinished) while the servers already held the same data.
	ctx, cancel := context.WithTimeout(context.Background(), inventoryTimeout)
	defer cancel()
	ia, ib, err := Inventories(ctx, local, remote)
	if err != nil {
		t.Fatal(err)
	}
	if err := SameInventory(ia, ib); err != nil {
		t.Fatalf("the servers differ: %v", err)
	}
	total, distinct := r.Proxy.Writes()
	cid, most := r.Proxy.MostWritten()
	t.Logf("%d CIDs with identical data on both sides (checked in %v); %d writes to the target for %d messages (%d distinct; at most %d of one, %s)",
		len(ia), time.Since(start).Round(time.Millisecond), total, len(ia), distinct, most, cid)
	if err := WithinRewriteAllowance(total, len(ia)); err != nil {
		t.Fatal(err)
	}
}

// TenantsOf opens the tenant did on each server in urls through a pool of its own (closed when
// the test ends), for the test to inspect what each side holds.
func TenantsOf(t testing.TB, did string, signer *msg.Signer, urls ...string) []dwn.Tenant {
	t.Helper()
	pool := dialect.NewPool(dialect.Options{})
	t.Cleanup(pool.Close)
	var tenants []dwn.Tenant
	for _, u := range urls {
		c, err := pool.Get(context.Background(), u, dwn.DialectAuto)
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, c.Tenant(did, signer))
	}
	return tenants
}

// SameListing says whether both tenants list the same want CIDs, and what it saw.
func SameListing(a, b dwn.Tenant, want int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	la, errA := a.ListCIDs(ctx, dwn.Scope{})
	lb, errB := b.ListCIDs(ctx, dwn.Scope{})
	slices.Sort(la)
	slices.Sort(lb)
	return errA == nil && errB == nil && len(la) == want && slices.Equal(la, lb),
		fmt.Sprintf("%s %d CIDs (%v), %s %d (%v)", a.Endpoint(), len(la), errA, b.Endpoint(), len(lb), errB)
}

// BootstrapNotes and BootstrapKills size the kill-during-bootstrap tests: a source of 3,000
// notes (and the seed's mixed batch), killed 6 times.
const (
	BootstrapNotes = 3000
	BootstrapKills = 6
)

// Bootstrap is the setting of a kill-during-bootstrap test: the dwnsync binary, a seeded source,
// an empty target behind a counting proxy, and the seeded RNG of the kill points.
type Bootstrap struct {
	Bin            string
	Source, Target *dwnserver.Server
	Tenant         dwnserver.Identity
	Seeded         Seeded
	Proxy          *Proxy
	RNG            *rand.Rand
}

// NewBootstrap builds the binary and starts the servers and the proxy for t.
func NewBootstrap(t testing.TB) *Bootstrap {
	t.Helper()
	bs := &Bootstrap{RNG: SeededRNG(t), Bin: BuildDwnsync(t)}
	bs.Source, bs.Tenant, bs.Seeded = SeededSource(t, dwnserver.NewClient(t), BootstrapNotes)
	bs.Target = dwnserver.Start(t, 1)[0]
	bs.Proxy = StartProxy(t, bs.Target.URL)
	return bs
}

// Run kills the process started by start during the bootstrap (KillDuringBootstrap), waits until
// converged says the link is done (what it saw, for a failure) and both servers list every
// message, then makes the final checks (CheckBootstrapped).
func (bs *Bootstrap) Run(t testing.TB, r KillRun, converged func() (bool, string)) {
	t.Helper()
	r.Proxy, r.Messages, r.Kills = bs.Proxy, bs.Seeded.ExpectedCIDs, BootstrapKills
	start := time.Now()
	final, key := KillDuringBootstrap(t, bs.RNG, r)
	signer, err := msg.NewSigner(bs.Tenant.DID, bs.Tenant.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	tenants := TenantsOf(t, bs.Tenant.DID, signer, bs.Source.URL, bs.Target.URL)
	Await(t, stepTimeout, "the link done and both servers listing every message", final, func() (bool, string) {
		done, seen := converged()
		if !done {
			return false, seen
		}
		same, listed := SameListing(tenants[0], tenants[1], bs.Seeded.ExpectedCIDs)
		return same, seen + "; " + listed
	})
	t.Logf("converged %v after the first start, through %d kills", time.Since(start).Round(time.Millisecond), r.Kills)
	CheckBootstrapped(t, r, final, key, tenants[0], tenants[1])
}
