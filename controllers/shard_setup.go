package controllers

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// ShardCacheOptions limits the ReplicationLinks of a manager's cache to those labelled for
// shard: a shard never holds the other shards' links in memory.
func ShardCacheOptions(opts cache.Options, shard string) cache.Options {
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	opts.ByObject[&v1alpha1.ReplicationLink{}] = cache.ByObject{
		Label: labels.SelectorFromSet(labels.Set{sharding.OwnerLabel: shard}),
	}
	return opts
}

// setupShard adds the shard's Lease loop; the reconciler, its engine event pump and the engine
// run on every replica, each on the links of its shard.
func (r *ReplicationLinkReconciler) setupShard(mgr manager.Manager, pump manager.Runnable) (manager.Runnable, error) {
	s := r.Shard
	s.engine = r.Engine
	s.onActive = r.wakeShardLinks
	if s.Client == nil {
		s.Client = mgr.GetClient()
	}
	if s.Reader == nil {
		s.Reader = mgr.GetAPIReader()
	}
	if err := mgr.Add(s); err != nil {
		return nil, err
	}
	return everyReplica{pump}, nil
}

// needLeaderElection is nil (the manager's default) unless sharded: then every replica runs.
func (r *ReplicationLinkReconciler) needLeaderElection() *bool {
	if r.Shard == nil {
		return nil
	}
	return ptr.To(false)
}

// everyReplica runs a runnable on every replica, not only on the elected leader.
type everyReplica struct{ manager.Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }
