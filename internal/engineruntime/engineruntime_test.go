package engineruntime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/engineruntime"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// Open creates the state directory and an engine over its ledger; Close releases the file, so
// the next runtime (a restart, a new leader) opens it again.
func TestOpenCloseReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	for i := 0; i < 2; i++ {
		rt, err := engineruntime.Open(engineruntime.Options{StateDir: dir})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if rt.Engine == nil || rt.Ledger == nil {
			t.Fatalf("open %d: engine %v ledger %v", i, rt.Engine, rt.Ledger)
		}
		if err := rt.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, engineruntime.LedgerFile)); err != nil {
		t.Fatal(err)
	}
}

// A damaged ledger is refused with the ledger's own explanation, before any engine exists.
func TestOpenRefusesADamagedLedger(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, engineruntime.LedgerFile), []byte("not a ledger"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := engineruntime.Open(engineruntime.Options{StateDir: dir})
	var damaged *ledger.DamagedError
	if !errors.As(err, &damaged) {
		t.Fatalf("open of a damaged ledger: %v, want a *ledger.DamagedError", err)
	}
}

func TestOpenNeedsAStateDir(t *testing.T) {
	if _, err := engineruntime.Open(engineruntime.Options{}); err == nil {
		t.Fatal("opened without a state directory")
	}
}

// Every HTTP request the runtime's pool sends is counted per endpoint
// (dwnsync_endpoint_requests_total), in the registry the runtime was given.
func TestRequestsCountedPerEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	rt, err := engineruntime.Open(engineruntime.Options{StateDir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- rt.Engine.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	})
	local, remote := dwntest.Start(t, dwntest.Options{}), dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	if _, err := rt.Engine.Apply(syncer.LinkConfig{Name: "ns/counted", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer}); err != nil {
		t.Fatal(err)
	}
	requests := func(endpoint string) float64 {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "dwnsync_endpoint_requests_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == endpoint {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	waittest.For(t, time.Minute, 20*time.Millisecond, "requests counted for both endpoints", func() bool {
		return requests(local.URL()) > 0 && requests(remote.URL()) > 0
	})
	if n := requests("http://127.0.0.1:1"); n != 0 {
		t.Errorf("%v requests counted for an endpoint nobody called", n)
	}
}
