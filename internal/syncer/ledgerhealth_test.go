package syncer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// While the ledger's commits fail (a full disk), every link's snapshot carries the error, an
// event per link says so, dwnsync_ledger_healthy is 0 and the failures are counted; the link
// keeps replicating meanwhile, and once a commit succeeds everything clears and the
// checkpoints it advanced during the failure are in the file.
func TestLedgerCommitFailureReachesSnapshotsEventsAndMetrics(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	p := &pair{local: local, remote: remote, id: id}
	var disk ledger.FullDisk
	path := filepath.Join(t.TempDir(), "ledger.db")
	te := startEngine(t, engineOpts{ledgerPath: path, beforeCommit: disk.BeforeCommit})
	eng, store, reg := te.Engine, te.store, te.reg
	if metricValue(t, reg, "dwnsync_ledger_healthy") != 1 {
		t.Fatal("dwnsync_ledger_healthy is not 1 before any failure")
	}
	disk.Set(true) // before the links start, so that their first state change already fails
	var keys []string
	for _, scope := range []dwn.Scope{{}, {Protocol: "https://example.org/other"}} {
		key, err := eng.Apply(LinkConfig{Name: "link " + scope.Protocol, Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
			Scope: scope, LocalSigner: id.Signer, RemoteSigner: id.Signer})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}

	eventually(t, 30*time.Second, "both links see the failure", func() bool {
		for _, k := range keys {
			s, _ := eng.Snapshot(k)
			if !strings.Contains(s.CheckpointsNotSaved, "no space left on device") || !te.sawEvent(k, EventCheckpointsNotSaved, "") {
				return false
			}
		}
		return true
	})
	if h := eng.LedgerHealth(); !h.Failing || metricValue(t, reg, "dwnsync_ledger_healthy") != 0 || metricValue(t, reg, "dwnsync_ledger_commit_failures_total") < 1 {
		t.Fatalf("health %+v, healthy gauge %v, failures %v", h, metricValue(t, reg, "dwnsync_ledger_healthy"), metricValue(t, reg, "dwnsync_ledger_commit_failures_total"))
	}
	// Replication goes on without saved checkpoints: writes reach the other side through the
	// feed, whose checkpoint advances in memory.
	eventually(t, 30*time.Second, "live", func() bool { s, _ := eng.Snapshot(keys[0]); return s.Phase == "live" })
	p.write(t, remote, 3, "r")
	eventually(t, 30*time.Second, "the remote's writes copied while the ledger fails", func() bool {
		s, _ := eng.Snapshot(keys[0])
		return len(local.CIDs(id.DID)) == 3 && s.Phase == "live" && s.Pull.Checkpoint != "" && s.Pull.Pending == 0
	})
	pulled, _ := eng.Snapshot(keys[0])

	disk.Set(false)
	if err := store.Flush(context.Background()); err != nil && !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("Flush once the disk has room: %v", err)
	}
	eventually(t, 30*time.Second, "the failure cleared on every link", func() bool {
		for _, k := range keys {
			s, _ := eng.Snapshot(k)
			if s.CheckpointsNotSaved != "" || !te.sawEvent(k, EventCheckpointsSaved, "") {
				return false
			}
		}
		return metricValue(t, reg, "dwnsync_ledger_healthy") == 1
	})
	te.stop()
	reopened, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	rec, _, _ := reopened.Get(keys[0])
	if rec.Pull.Contiguous == nil {
		t.Fatalf("no pull checkpoint in the file; the link had reached %q while commits failed", pulled.Pull.Checkpoint)
	}
	if cmp, ok := ledger.ComparePositions(rec.Pull.Contiguous.Position, pulled.Pull.Checkpoint); !ok || cmp < 0 {
		t.Fatalf("pull checkpoint in the file %q is behind %q, reached while commits failed", rec.Pull.Contiguous.Position, pulled.Pull.Checkpoint)
	}
}

// metricValue reads an unlabelled gauge or counter from reg (failing when it is not there).
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
