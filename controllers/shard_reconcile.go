package controllers

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/sharding"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// The reconciler's side of sharding: which links this shard may run, and the acknowledgement of
// a drain. The reconciler calls shardGate first; when it says done, the pass ends there.

// shardGate decides a pass of a sharded reconciler: a link being drained is stopped and let go;
// nothing starts while the shard does not hold its Lease; and a link that is not running yet is
// started only if the API server (not the cache) says it is this shard's and not draining.
func (r *ReplicationLinkReconciler) shardGate(ctx context.Context, link *v1alpha1.ReplicationLink) (ctrl.Result, bool, error) {
	s := r.Shard
	mine := link.Labels[sharding.OwnerLabel] == s.Name
	switch {
	case !mine || !s.Active():
		// Not ours (a stale cache entry), or the shard has no Lease: the shard wakes every link
		// when it has one again.
		return ctrl.Result{}, true, r.stopHere(ctx, link)
	case link.Labels[sharding.DrainLabel] != "":
		return ctrl.Result{}, true, r.letGo(ctx, link)
	case !link.DeletionTimestamp.IsZero():
		return ctrl.Result{}, false, nil // our link to finalize
	}
	if key, err := linkconfig.Key(link); err == nil {
		if _, running := r.Engine.Snapshot(key); running {
			return ctrl.Result{}, false, nil
		}
	}
	fresh := &v1alpha1.ReplicationLink{}
	if err := s.Reader.Get(ctx, client.ObjectKeyFromObject(link), fresh); err != nil {
		return ctrl.Result{}, true, client.IgnoreNotFound(err)
	}
	if fresh.Labels[sharding.OwnerLabel] != s.Name || fresh.Labels[sharding.DrainLabel] != "" {
		return ctrl.Result{RequeueAfter: s.Timing.RenewInterval}, true, nil // the cache lags: look again
	}
	return ctrl.Result{}, false, nil
}

// stopHere stops the engine link of link if this shard runs it.
func (r *ReplicationLinkReconciler) stopHere(ctx context.Context, link *v1alpha1.ReplicationLink) error {
	key, err := linkconfig.Key(link)
	if err != nil || !r.runsKey(link, key) {
		return nil
	}
	if _, err := r.Engine.Release(key, string(link.UID)); err != nil {
		return fmt.Errorf("stop link %s, which this shard may not run: %w", key, err)
	}
	logf.FromContext(ctx).Info("stopped a link this shard may not run now", "key", key)
	return nil
}

// letGo acknowledges a drain: stop the link, then hand it to the shard the drain names (or
// back to the sharder, for DrainToSharder) in one JSON patch that tests the link still names
// this shard and that drain: the new owner's cache sees the link only once it stopped here.
func (r *ReplicationLinkReconciler) letGo(ctx context.Context, link *v1alpha1.ReplicationLink) error {
	if err := r.stopHere(ctx, link); err != nil {
		return err
	}
	owner, drain := escapeJSONPointer(sharding.OwnerLabel), escapeJSONPointer(sharding.DrainLabel)
	to := link.Labels[sharding.DrainLabel]
	handOn := fmt.Sprintf(`{"op":"replace","path":"/metadata/labels/%s","value":%q}`, owner, to)
	if to == sharding.DrainToSharder {
		handOn = fmt.Sprintf(`{"op":"remove","path":"/metadata/labels/%s"}`, owner)
	}
	patch := fmt.Sprintf(`[{"op":"test","path":"/metadata/labels/%s","value":%q},{"op":"test","path":"/metadata/labels/%s","value":%q},%s,{"op":"remove","path":"/metadata/labels/%s"}]`,
		owner, r.Shard.Name, drain, to, handOn, drain)
	if err := r.Client.Patch(ctx, link, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
		return client.IgnoreNotFound(err)
	}
	shardHandovers.WithLabelValues(r.Shard.Name, "drained").Inc()
	logf.FromContext(ctx).Info("drained: link stopped and handed on", "shard", r.Shard.Name, "to", to)
	return nil
}

// escapeJSONPointer escapes a label key for a JSON pointer (RFC 6901).
var escapeJSONPointer = strings.NewReplacer("~", "~0", "/", "~1").Replace

// wakeShardLinks reconciles every link in the shard's cache (it just took its Lease).
func (r *ReplicationLinkReconciler) wakeShardLinks(ctx context.Context) {
	var list v1alpha1.ReplicationLinkList
	if err := r.claims.List(ctx, &list, client.MatchingLabels{sharding.OwnerLabel: r.Shard.Name}); err != nil {
		logf.FromContext(ctx).Error(err, "list the shard's links to start them")
		return
	}
	for i := range list.Items {
		stub := &v1alpha1.ReplicationLink{}
		stub.Namespace, stub.Name = list.Items[i].Namespace, list.Items[i].Name
		select {
		case r.wake <- event.GenericEvent{Object: stub}:
		case <-ctx.Done():
			return
		}
	}
}

// applyLink is r.apply, on a sharded reconciler only while the shard holds its Lease.
func (r *ReplicationLinkReconciler) applyLink(ctx context.Context, link *v1alpha1.ReplicationLink, key string, cfg syncer.LinkConfig) (got string, holder *v1alpha1.ReplicationLink, err error) {
	if r.Shard == nil {
		return r.apply(ctx, link, key, cfg)
	}
	err = r.Shard.holding(func() error {
		var applyErr error
		got, holder, applyErr = r.apply(ctx, link, key, cfg)
		return applyErr
	})
	return got, holder, err
}
