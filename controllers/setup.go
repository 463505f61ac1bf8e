package controllers

import (
	"context"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// SignerLabel marks the Secrets that links sign with. The operator caches and reads only the
// Secrets labelled SignerLabel=true: other Secrets of the cluster never enter its memory.
const SignerLabel = "dwnsync.io/signer"

// CacheOptions are the manager's cache options: the namespaces to watch (all when empty), and
// of the Secrets only the labelled signer Secrets.
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{SignerLabel: "true"})},
	}}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// secretRefIndex indexes ReplicationLinks by the name of their signer Secret.
const secretRefIndex = ".spec.signer.secretRef.name"

// SetupWithManager registers the reconciler, its Secret index and the engine event pump.
func (r *ReplicationLinkReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	r.claims = mgr.GetCache()
	r.init()
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ReplicationLink{}, linkKeyIndex, indexLinkKey); err != nil {
		return err
	}

	err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ReplicationLink{}, secretRefIndex,
		func(o client.Object) []string {
			name := o.(*v1alpha1.ReplicationLink).Spec.Signer.SecretRef.Name
			if name == "" {
				return nil
			}
			return []string{name}
		})
	if err != nil {
		return err
	}
	var pump manager.Runnable = manager.RunnableFunc(r.pumpEngineEvents)
	if r.Shard != nil {
		if pump, err = r.setupShard(mgr, pump); err != nil {
			return err
		}
	}
	if err := mgr.Add(pump); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("replicationlink").
		For(&v1alpha1.ReplicationLink{}, builder.WithPredicates(specOrLifecycleChanged())).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.linksForSecret)).
		Watches(&v1alpha1.ReplicationLink{}, handler.EnqueueRequestsFromMapFunc(r.otherClaimants), builder.WithPredicates(createdOrDeleted())).
		WatchesRawSource(source.Channel(r.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, NeedLeaderElection: r.needLeaderElection()}).
		Complete(r)
}

// linksForSecret lists the links that sign with a Secret, so a new or fixed Secret starts them.
func (r *ReplicationLinkReconciler) linksForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var links v1alpha1.ReplicationLinkList
	if err := r.Client.List(ctx, &links, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{secretRefIndex: secret.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(links.Items))
	for _, l := range links.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&l)})
	}
	return reqs
}

// specOrLifecycleChanged ignores the link's own status writes: only spec (generation),
// deletion, finalizer, label and annotation changes reconcile it.
func specOrLifecycleChanged() predicate.Predicate {
	return predicate.Or(
		predicate.GenerationChangedPredicate{},
		predicate.LabelChangedPredicate{},
		predicate.AnnotationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return !o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) || len(o.GetFinalizers()) != len(n.GetFinalizers())
		}},
	)
}

// createdOrDeleted passes the events that change who claims a ledger key.
func createdOrDeleted() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// init fills defaults and the reconciler's memory.
func (r *ReplicationLinkReconciler) init() {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.MinCounterInterval == 0 {
		r.MinCounterInterval = DefaultMinCounterInterval
	}
	if r.CounterWritesPerSecond <= 0 {
		r.CounterWritesPerSecond = DefaultCounterWritesPerSecond
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = DefaultMaxConcurrentReconcile
	}
	r.links = map[types.NamespacedName]*tracked{}
	if r.claims == nil {
		r.claims = r.Client // without a manager (unit tests): a client that has the key index
	}
	r.wake = make(chan event.GenericEvent, 1024)
	r.budget = rate.NewLimiter(rate.Limit(r.CounterWritesPerSecond), max(1, int(r.CounterWritesPerSecond)))
}
