package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
)

// Ownership of a ledger key. The key (tenant^endpoint^scope) has no namespace, so links in
// several namespaces may claim one key. The oldest claimant runs it, decided from the API
// objects alone (creationTimestamp, then UID), so every replica and every restart agrees; the
// engine records the owner's UID in the key's ledger record, and only the owner's deletion
// removes that record.

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

// olderThan orders links by age: creationTimestamp, then UID for links created in one second.
func olderThan(a, b *v1alpha1.ReplicationLink) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
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
	owner := link
	for i := range others {
		if others[i].UID != link.UID && olderThan(&others[i], owner) {
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
