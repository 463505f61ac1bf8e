// Package controllers holds the ReplicationLink reconciler: it turns each ReplicationLink and its
// signer Secret into an engine link (engine.Apply / engine.Remove) and writes the engine's view
// back as status. It has no sync logic of its own.
package controllers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/status"
)

// FinalizerName keeps a ReplicationLink until its engine link is stopped and its ledger record
// removed.
const FinalizerName = "dwnsync.io/finalizer"

// Defaults of the status write coalescing.
const (
	DefaultMinCounterInterval     = 5 * time.Second
	DefaultCounterWritesPerSecond = 20.0
	DefaultMaxConcurrentReconcile = 4
)

// +kubebuilder:rbac:groups=dwnsync.io,resources=replicationlinks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=dwnsync.io,resources=replicationlinks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=dwnsync.io,resources=replicationlinks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// ReplicationLinkReconciler runs ReplicationLinks on a LinkEngine.
type ReplicationLinkReconciler struct {
	Client   client.Client
	Engine   LinkEngine
	Recorder events.EventRecorder
	// Defaults holds the operator's --local-endpoint (and local dialect).
	Defaults linkconfig.Defaults
	Clock    clock.PassiveClock

	// MinCounterInterval is the shortest time between two counter-only status writes of one
	// link. Phase and condition changes are written at once.
	MinCounterInterval time.Duration
	// CounterWritesPerSecond bounds counter-only writes of all links together: with N links
	// each link's interval stretches to N/CounterWritesPerSecond seconds.
	CounterWritesPerSecond float64
	// MaxConcurrentReconciles of the controller.
	MaxConcurrentReconciles int

	mu     sync.Mutex
	links  map[types.NamespacedName]*tracked
	owners map[string]types.NamespacedName // ledger key → the link that runs it
	wake   chan event.GenericEvent
	budget *rate.Limiter // counter-only writes of all links together

	writes writeCounts
}

// tracked is what the reconciler remembers about a link between passes.
type tracked struct {
	key       string
	uid       types.UID
	applied   string // inputs of the last engine.Apply (generation and Secret version)
	lastWrite time.Time
	written   *v1alpha1.ReplicationLinkStatus // the last status written (the cache may lag)
}

type writeCounts struct{ transitions, counters atomic.Int64 }

// StatusWrites reports how many status writes the reconciler made: for transitions (phase,
// conditions, errors) and for counters only.
func (r *ReplicationLinkReconciler) StatusWrites() (transitions, counters int64) {
	return r.writes.transitions.Load(), r.writes.counters.Load()
}

// Reconcile brings one ReplicationLink's engine link and status up to date.
func (r *ReplicationLinkReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	if err != nil && ctx.Err() != nil {
		return ctrl.Result{}, nil // shutting down: the next leader picks it up
	}
	return res, err
}

func (r *ReplicationLinkReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	link := &v1alpha1.ReplicationLink{}
	if err := r.Client.Get(ctx, req.NamespacedName, link); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone without our finalizer (removed by hand, or its namespace force-deleted): the
			// engine must not keep replicating a link nobody can see any more.
			return ctrl.Result{}, r.release(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !link.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, link)
	}
	if !controllerutil.ContainsFinalizer(link, FinalizerName) {
		controllerutil.AddFinalizer(link, FinalizerName)
		if err := r.Client.Update(ctx, link); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.sync(ctx, link)
}

// sync applies the link to the engine and writes its status.
func (r *ReplicationLinkReconciler) sync(ctx context.Context, link *v1alpha1.ReplicationLink) (ctrl.Result, error) {
	nn := client.ObjectKeyFromObject(link)
	if w, ok := r.Engine.(readyWaiter); ok {
		if err := w.WaitReady(ctx); err != nil {
			return r.problem(ctx, link, &linkconfig.Error{Reason: status.ReasonEngineNotRunning, Message: "the replication engine is not running: " + err.Error()})
		}
	}
	key, err := linkconfig.Key(link)
	if err != nil {
		return r.problem(ctx, link, err)
	}
	if owner, ok := r.claim(nn, link.UID, key); !ok {
		return r.problem(ctx, link, &linkconfig.Error{Reason: "DuplicateLink", Message: fmt.Sprintf(
			"ReplicationLink %s already replicates this tenant, endpoint and scope (ledger key %s): delete one of the two", owner, key)})
	}

	secret := &corev1.Secret{}
	secretName := link.Spec.Signer.SecretRef.Name
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: link.Namespace, Name: secretName}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return r.problem(ctx, link, linkconfig.MissingSecret(link.Namespace, secretName))
		}
		return ctrl.Result{}, err
	}
	signer, grants, err := linkconfig.Signer(secret)
	if err != nil {
		return r.problem(ctx, link, err)
	}
	cfg, err := linkconfig.Build(link, signer, grants, r.Defaults)
	if err != nil {
		return r.problem(ctx, link, err)
	}

	inputs := fmt.Sprintf("%d/%s/%s", link.Generation, secret.UID, secret.ResourceVersion)
	_, known := r.Engine.Snapshot(key)
	if r.appliedInputs(nn) != inputs || !known {
		got, err := r.Engine.Apply(cfg)
		if err != nil {
			return r.problem(ctx, link, &linkconfig.Error{Reason: status.ReasonEngineRejected, Message: "the engine refused the link: " + err.Error()})
		}
		if got != key {
			logf.FromContext(ctx).Info("engine keyed the link differently", "expected", key, "got", got)
			r.rekey(nn, key, got)
			key = got
		}
		r.mu.Lock()
		r.track(nn).applied = inputs
		r.mu.Unlock()
	}

	snap, ok := r.Engine.Snapshot(key)
	if !ok {
		return r.problem(ctx, link, &linkconfig.Error{Reason: status.ReasonEngineNotRunning,
			Message: "the replication engine is not running this link yet; it starts on the elected operator replica"})
	}
	next := status.FromSnapshot(r.lastStatus(link), snap, status.InputsFor(link, r.Clock.Now()))
	next.LinkKey = key
	return r.writeStatus(ctx, link, next)
}

// problem reports an input problem as Ready=False with the error's reason. The engine keeps
// whatever it was running: a deleted Secret does not stop a running link.
func (r *ReplicationLinkReconciler) problem(ctx context.Context, link *v1alpha1.ReplicationLink, err error) (ctrl.Result, error) {
	reason, message := status.ReasonEngineRejected, err.Error()
	if e, ok := err.(*linkconfig.Error); ok {
		reason = e.Reason
	}
	next := status.WithProblem(r.lastStatus(link), link.Generation, r.Clock.Now(), reason, message)
	return r.writeStatus(ctx, link, next)
}

// writeStatus writes next unless nothing changed; counter-only changes wait for the link's
// counter interval (the controller requeues for the rest of it).
func (r *ReplicationLinkReconciler) writeStatus(ctx context.Context, link *v1alpha1.ReplicationLink, next v1alpha1.ReplicationLinkStatus) (ctrl.Result, error) {
	cur := r.lastStatus(link)
	if status.Equal(cur, next) {
		return ctrl.Result{}, nil
	}
	now := r.Clock.Now()
	nn := client.ObjectKeyFromObject(link)
	significant := status.Significant(cur, next)
	if !significant {
		r.mu.Lock()
		last := r.track(nn).lastWrite
		interval := r.counterInterval()
		r.mu.Unlock()
		if wait := last.Add(interval).Sub(now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		// The per-link interval bounds the average; the shared budget also smooths the bursts
		// of links that became due together (e.g. all went live at start-up).
		if res := r.budget.ReserveN(now, 1); !res.OK() || res.DelayFrom(now) > 0 {
			delay := res.DelayFrom(now)
			res.CancelAt(now)
			return ctrl.Result{RequeueAfter: max(delay, time.Second/time.Duration(max(1, int(r.CounterWritesPerSecond))))}, nil
		}
	}
	patch := client.MergeFrom(link.DeepCopy())
	link.Status = next
	if err := r.Client.Status().Patch(ctx, link, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	r.mu.Lock()
	t := r.track(nn)
	t.lastWrite, t.written = now, next.DeepCopy()
	r.mu.Unlock()
	if significant {
		r.writes.transitions.Add(1)
		statusWritesTotal.WithLabelValues("transition").Inc()
	} else {
		r.writes.counters.Add(1)
		statusWritesTotal.WithLabelValues("counters").Inc()
	}
	r.recordTransitions(link, cur, next)
	return ctrl.Result{}, nil
}

// finalize stops the link, removes its ledger record and then the finalizer.
func (r *ReplicationLinkReconciler) finalize(ctx context.Context, link *v1alpha1.ReplicationLink) (ctrl.Result, error) {
	nn := client.ObjectKeyFromObject(link)
	if !controllerutil.ContainsFinalizer(link, FinalizerName) {
		return ctrl.Result{}, r.release(ctx, nn) // our finalizer was never added, or removed by hand
	}
	if key, owned := r.ownedKey(link); owned {
		if err := r.Engine.Remove(key); err != nil {
			r.event(link, corev1.EventTypeWarning, "RemoveFailed", "Remove", "could not stop the link and remove its ledger record (retrying): %v", err)
			return ctrl.Result{}, err
		}
		r.event(link, corev1.EventTypeNormal, "Removed", "Remove", "link stopped and its ledger record %s removed", key)
	}
	controllerutil.RemoveFinalizer(link, FinalizerName)
	if err := r.Client.Update(ctx, link); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	r.forget(nn)
	return ctrl.Result{}, nil
}

// release stops the engine link that nn ran, if this reconciler tracked one and still owns its
// key, then forgets nn. An error keeps the memory so the retry removes it.
func (r *ReplicationLinkReconciler) release(ctx context.Context, nn types.NamespacedName) error {
	r.mu.Lock()
	key := ""
	if t, ok := r.links[nn]; ok && t.key != "" && r.owners[t.key] == nn {
		key = t.key
	}
	r.mu.Unlock()
	if key != "" {
		if err := r.Engine.Remove(key); err != nil {
			return fmt.Errorf("stop the engine link %s of deleted ReplicationLink %s: %w", key, nn, err)
		}
		logf.FromContext(ctx).Info("stopped the engine link of a ReplicationLink deleted without its finalizer", "key", key)
	}
	r.forget(nn)
	return nil
}

// ownedKey is the ledger key to remove for a deleted link, unless another link owns that key.
func (r *ReplicationLinkReconciler) ownedKey(link *v1alpha1.ReplicationLink) (string, bool) {
	nn := client.ObjectKeyFromObject(link)
	r.mu.Lock()
	defer r.mu.Unlock()
	key := ""
	if t, ok := r.links[nn]; ok && t.key != "" {
		key = t.key
	} else if link.Status.LinkKey != "" {
		key = link.Status.LinkKey
	} else if k, err := linkconfig.Key(link); err == nil {
		key = k
	}
	if key == "" {
		return "", false
	}
	if owner, ok := r.owners[key]; ok && owner != nn {
		return "", false
	}
	return key, true
}

// lastStatus is the status last written for the link, or the cached one (the cache may not
// show our own last write yet).
func (r *ReplicationLinkReconciler) lastStatus(link *v1alpha1.ReplicationLink) v1alpha1.ReplicationLinkStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.links[client.ObjectKeyFromObject(link)]; ok && t.written != nil && t.uid == link.UID {
		return *t.written.DeepCopy()
	}
	return *link.Status.DeepCopy()
}

// counterInterval is the per-link counter write interval for the current number of links.
// Callers hold r.mu.
func (r *ReplicationLinkReconciler) counterInterval() time.Duration {
	spread := time.Duration(float64(len(r.links)) / r.CounterWritesPerSecond * float64(time.Second))
	return max(r.MinCounterInterval, spread)
}

func (r *ReplicationLinkReconciler) appliedInputs(nn types.NamespacedName) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.track(nn).applied
}

// track returns the link's memory, creating it. Callers that mutate it hold r.mu.
func (r *ReplicationLinkReconciler) track(nn types.NamespacedName) *tracked {
	t, ok := r.links[nn]
	if !ok {
		t = &tracked{}
		r.links[nn] = t
	}
	return t
}

// claim records that nn runs key; it fails with the owner's name when another link holds it.
func (r *ReplicationLinkReconciler) claim(nn types.NamespacedName, uid types.UID, key string) (types.NamespacedName, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if owner, ok := r.owners[key]; ok && owner != nn {
		return owner, false
	}
	r.owners[key] = nn
	t := r.track(nn)
	if t.uid != uid { // a new object under an old name starts afresh
		*t = tracked{uid: uid}
	}
	t.key = key
	return nn, true
}

func (r *ReplicationLinkReconciler) rekey(nn types.NamespacedName, from, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.owners, from)
	r.owners[to] = nn
	r.track(nn).key = to
}

func (r *ReplicationLinkReconciler) forget(nn types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.links[nn]; ok {
		if r.owners[t.key] == nn {
			delete(r.owners, t.key)
		}
		delete(r.links, nn)
	}
}

// ownerOf maps an engine event's link key to its ReplicationLink.
func (r *ReplicationLinkReconciler) ownerOf(key string) (types.NamespacedName, types.UID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nn, ok := r.owners[key]
	if !ok {
		return nn, "", false
	}
	return nn, r.links[nn].uid, true
}
