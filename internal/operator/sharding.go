package operator

import (
	"errors"
	"fmt"
	"net/http"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/dwnsync/dwnsync/controllers"
)

// addSharding makes the reconciler a shard and adds the sharder, which runs on the elected
// replica only (with --leader-elect; without it every replica would assign, so it is required).
func addSharding(mgr ctrl.Manager, cfg *rest.Config, rec *controllers.ReplicationLinkReconciler, opts Options) error {
	so := opts.Sharding
	if !opts.LeaderElect {
		return fmt.Errorf("--sharding needs --leader-elect: the elected replica assigns links to shards")
	}
	rec.Shard = &controllers.Shard{Name: so.ShardName, Namespace: so.LeaseNamespace, Ring: so.Ring, Timing: so.Timing, Clock: opts.Clock}
	c, err := controllers.NewSharderCache(cfg, mgr.GetScheme(), opts.WatchNamespaces, so.LeaseNamespace, so.Ring)
	if err != nil {
		return fmt.Errorf("sharder cache: %w", err)
	}
	return mgr.Add(&controllers.Sharder{Namespace: so.LeaseNamespace, Ring: so.Ring, Timing: so.Timing, Clock: opts.Clock,
		MaxDrains: so.MaxDrains, Client: mgr.GetClient(), Cache: c})
}

// shardHoldsLease is a readiness check: a shard without its Lease (starting, cut off, or
// waiting for the sharder to retire a Lease declared dead) runs no link.
func shardHoldsLease(s *controllers.Shard) func(*http.Request) error {
	return func(*http.Request) error {
		if !s.Active() {
			return errors.New("this shard does not hold its Lease yet: it runs no link")
		}
		return nil
	}
}
