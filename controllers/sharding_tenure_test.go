package controllers_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// A shard process killed (or stopped for longer than the fencing delay) leaves checkpoints in
// its ledger for links that then ran on other shards. When it comes back under a new Lease it
// drops them before it runs anything, so a link handed back starts with a bootstrap reconcile
// instead of paging again from a stale position, which re-copied every record written since
// (TestShardKill9MovesItsLinksAndLosesNothing saw up to 1.34 writes per record). A shard
// restarted within the fencing delay finds its own live Lease and keeps its checkpoints.
func TestNewShardTenureDropsTheCheckpointsOfItsEarlierTenure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ownLease bool // a live Lease of its own is waiting: a restart within the fencing delay
	}{{"new tenure", false}, {"own live Lease", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			shard := "dwnsync-0"
			stateDir := t.TempDir()
			key := staleLedgerRecord(t, filepath.Join(stateDir, operator.LedgerFile))
			if tc.ownLease {
				now := metav1.NewMicroTime(time.Now())
				lease := &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ShardLeaseName(shard),
						Labels: map[string]string{sharding.RingLabel: ns, controllers.ShardNameLabel: shard}},
					Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(shard), LeaseDurationSeconds: ptr.To(int32(15)),
						AcquireTime: &now, RenewTime: &now},
				}
				if err := k8sClient.Create(context.Background(), lease); err != nil {
					t.Fatal(err)
				}
			}
			r := startReplicaWith(t, ns, func(o *operator.Options) {
				o.StateDir = stateDir
				o.Sharding = operator.ShardingOptions{Enabled: true, ShardName: shard, LeaseNamespace: ns, Ring: ns}
			})
			eventually(t, 2*time.Minute, "the shard holding its Lease", r.ready)
			_, found, err := r.op.LedgerRecord(key)
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.ownLease {
				t.Fatalf("the earlier checkpoint found=%v, want %v", found, tc.ownLease)
			}
		})
	}
}

// staleLedgerRecord writes a ledger at path holding one link's record, and
// returns its key.
func staleLedgerRecord(t *testing.T, path string) string {
	t.Helper()
	store, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.GetOrCreate(ledger.Record{Tenant: "did:example:moved", LocalEndpoint: "http://127.0.0.1:1", RemoteEndpoint: "http://127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return rec.Key
}
