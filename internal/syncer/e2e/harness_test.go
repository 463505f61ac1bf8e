package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

type engineOpts struct {
	ledgerPath string
	pool       *dialect.Pool
	// verifyInterval replaces the periodic verify's 5 minutes (0 keeps them).
	verifyInterval time.Duration
	timing         func(*linkstate.Timing) // adjusts the test timings below
	onEvent        func(syncer.Event)      // sees every engine event
}

type testEngine struct {
	*syncer.Engine
	reg *prometheus.Registry
}

// startEngine runs an engine with the spec's timings, except that reconciles after start-up
// and give-ups come sooner, and stops it when the test ends.
func startEngine(t *testing.T, o engineOpts) *testEngine {
	t.Helper()
	if o.ledgerPath == "" {
		o.ledgerPath = filepath.Join(t.TempDir(), "ledger.db")
	}
	store, err := ledger.Open(o.ledgerPath, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.pool == nil {
		o.pool = dialect.NewPool(dialect.Options{})
	}
	timing := linkstate.DefaultTiming()
	timing.ReconcileStartupDirty = 100 * time.Millisecond
	timing.ReconcileRetry = 500 * time.Millisecond
	if o.verifyInterval > 0 {
		timing.VerifyInterval = o.verifyInterval
	}
	if o.timing != nil {
		o.timing(&timing)
	}
	reg := prometheus.NewRegistry()
	eng, err := syncer.New(syncer.Options{Ledger: store, Pool: o.pool, Registerer: reg, Timing: &timing})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Start(ctx) }()
	go func() {
		for {
			select {
			case ev := <-eng.Events():
				if o.onEvent != nil {
					o.onEvent(ev)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("engine did not stop")
		}
		o.pool.Close()
		_ = store.Close()
	})
	if err := eng.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return &testEngine{Engine: eng, reg: reg}
}

// twoServersOneTenant starts two real @web5/dwn-server instances (stopped when the test ends), a
// client driving them, and a fresh tenant identity to write as.
func twoServersOneTenant(t *testing.T) (a, b *dwnserver.Server, client *dwnserver.Client, id dwnserver.Identity) {
	t.Helper()
	servers := dwnserver.Start(t, 2)
	client = dwnserver.NewClient(t)
	id, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	return servers[0], servers[1], client, id
}

// tenantsOn opens the tenant did on two servers, through a pool of its own (closed when the test
// ends), for the test to inspect what each side holds.
func tenantsOn(t *testing.T, did string, signer *msg.Signer, urlA, urlB string) (dwn.Tenant, dwn.Tenant) {
	t.Helper()
	check := dialect.NewPool(dialect.Options{})
	t.Cleanup(check.Close)
	ctx := context.Background()
	ca, err := check.Get(ctx, urlA, dwn.DialectAuto)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := check.Get(ctx, urlB, dwn.DialectAuto)
	if err != nil {
		t.Fatal(err)
	}
	return ca.Tenant(did, signer), cb.Tenant(did, signer)
}

// readable says whether tenant answers a Read of cid.
func readable(ctx context.Context, tenant dwn.Tenant, cid string) bool {
	r, err := tenant.Read(ctx, cid)
	if err == nil && r.Data != nil {
		_ = r.Data.Close()
	}
	return err == nil
}

// eventually polls every 50 ms: conditions here list whole tenants on real servers. A wait
// gets at least 2 minutes: its deadline bounds a hang and asserts no timing, and real servers
// on a loaded machine (make test-stress) are slow.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, max(within, 2*time.Minute), 50*time.Millisecond, what, cond)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
