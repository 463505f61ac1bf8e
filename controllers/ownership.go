package controllers

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// Ownership of a ledger key. The key (tenant^endpoint^scope) has no namespace, so links in
// several namespaces may claim one key. The oldest claimant runs it (creationTimestamp), so
// every replica and every restart agrees. The engine keeps the owner's UID in the key's ledger
// record and refuses other claims with a *syncer.DuplicateLinkError naming the holder; the
// reconciler keeps no ownership of its own: the claimants come from the cache's key index, the
// holder from the engine. creationTimestamp counts whole seconds: of links created in one
// second, the holder keeps the key.

// linkKeyIndex indexes ReplicationLinks by their ledger key.
const linkKeyIndex = "dwnsync.io/linkKey"

// ReasonDuplicateLink is the Ready reason of a link refused because an older one owns its key.
const ReasonDuplicateLink = "DuplicateLink"

func indexLinkKey(o client.Object) []string {
	key, err := linkconfig.Key(o.(*v1alpha1.ReplicationLink))
	if err != nil {
		return nil
	}
	return []string{key}
}

// claimants lists the links that claim key, in every watched namespace.
func (r *ReplicationLinkReconciler) claimants(ctx context.Context, key string) ([]v1alpha1.ReplicationLink, error) {
	var list v1alpha1.ReplicationLinkList
	if err := r.claims.List(ctx, &list, client.MatchingFields{linkKeyIndex: key}); err != nil {
		return nil, fmt.Errorf("list the links of ledger key %s: %w", key, err)
	}
	return list.Items, nil
}

// olderClaimant is the oldest link that claims key and was created before link (in an earlier
// second), or nil. A link being deleted still claims its key until its finalizer has run.
func (r *ReplicationLinkReconciler) olderClaimant(ctx context.Context, link *v1alpha1.ReplicationLink, key string) (*v1alpha1.ReplicationLink, error) {
	others, err := r.claimants(ctx, key)
	if err != nil {
		return nil, err
	}
	var oldest *v1alpha1.ReplicationLink
	for i := range others {
		o := &others[i]
		if o.UID != link.UID && o.CreationTimestamp.Before(&link.CreationTimestamp) && (oldest == nil || o.CreationTimestamp.Before(&oldest.CreationTimestamp)) {
			oldest = o
		}
	}
	return oldest, nil
}

// apply runs cfg as link's engine link. When the engine says another link holds the key, a
// holder created in the same second keeps it (it is returned, and link is refused); a younger
// holder, or one no longer there, hands it over to link.
func (r *ReplicationLinkReconciler) apply(ctx context.Context, link *v1alpha1.ReplicationLink, key string, cfg syncer.LinkConfig) (string, *v1alpha1.ReplicationLink, error) {
	cfg.Owner = string(link.UID)
	got, err := r.Engine.Apply(cfg)
	var dup *syncer.DuplicateLinkError
	if !errors.As(err, &dup) {
		return got, nil, err
	}
	others, err := r.claimants(ctx, key)
	if err != nil {
		return "", nil, err
	}
	for i := range others {
		if h := &others[i]; string(h.UID) == dup.Owner && !h.CreationTimestamp.After(link.CreationTimestamp.Time) {
			return "", h, nil
		}
	}
	cfg.Supersedes = dup.Owner
	got, err = r.Engine.Apply(cfg)
	return got, nil, err
}

// duplicate is the refusal of a link whose key an older link owns. It names the owner only when
// both are in one namespace: a link never learns the names of another namespace's objects.
func duplicate(link, owner *v1alpha1.ReplicationLink, key string) *linkconfig.Error {
	who := "another ReplicationLink"
	if owner.Namespace == link.Namespace {
		who = "ReplicationLink " + owner.Name
	}
	return &linkconfig.Error{Reason: ReasonDuplicateLink, Message: fmt.Sprintf(
		"%s already replicates this tenant, endpoint and scope (ledger key %s); the oldest link runs a key: delete one of the two (this one takes over when the other is deleted)",
		who, key)}
}

// otherClaimants maps a link that appeared or went away to the other links of its key, so a
// released key passes to the next-oldest link and an older link's arrival refuses a younger.
func (r *ReplicationLinkReconciler) otherClaimants(ctx context.Context, o client.Object) []reconcile.Request {
	keys := indexLinkKey(o)
	if len(keys) == 0 {
		return nil
	}
	others, err := r.claimants(ctx, keys[0])
	if err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, l := range others {
		if l.UID != o.GetUID() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&l)})
		}
	}
	return reqs
}
