package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
)

// Ownership of a ledger key. The key (tenant^endpoint^scope) has no namespace, so links in
// several namespaces may claim one key. The oldest claimant runs it (creationTimestamp), so
// every replica and every restart agrees; the engine records the owner's UID in the key's
// ledger record, and only the owner's deletion removes that record. creationTimestamp counts
// whole seconds: of links created in one second, the recorded owner keeps the key, and
// without one the lowest UID takes it.

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

// precedes orders the claimants of a key: the older first; of two created in one second, the
// incumbent (the recorded owner), else the lower UID.
func precedes(a, b *v1alpha1.ReplicationLink, incumbent types.UID) bool {
	switch {
	case !a.CreationTimestamp.Equal(&b.CreationTimestamp):
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	case a.UID == incumbent || b.UID == incumbent:
		return a.UID == incumbent
	}
	return a.UID < b.UID
}

// claimants lists the links that claim key, in every watched namespace.
func (r *ReplicationLinkReconciler) claimants(ctx context.Context, key string) ([]v1alpha1.ReplicationLink, error) {
	var list v1alpha1.ReplicationLinkList
	if err := r.claims.List(ctx, &list, client.MatchingFields{linkKeyIndex: key}); err != nil {
		return nil, fmt.Errorf("list the links of ledger key %s: %w", key, err)
	}
	return list.Items, nil
}

// ownerOf is the oldest link that claims key: link itself, or an older one. A link being
// deleted still owns its key until its finalizer has removed the engine link.
func (r *ReplicationLinkReconciler) ownerOf(ctx context.Context, link *v1alpha1.ReplicationLink, key string) (*v1alpha1.ReplicationLink, error) {
	others, err := r.claimants(ctx, key)
	if err != nil {
		return nil, err
	}
	incumbent := r.Engine.Owner(key)
	owner := link
	for i := range others {
		if others[i].UID != link.UID && precedes(&others[i], owner, incumbent) {
			owner = &others[i]
		}
	}
	return owner, nil
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
