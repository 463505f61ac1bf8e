// Package controllers holds the ReplicationLink reconciler: it turns each ReplicationLink and its
// signer Secret into an engine link (engine.Apply / engine.Remove) and writes the engine's view
// back as status. It has no sync logic of its own.
package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
	"github.com/dwnsync/dwnsync/internal/syncer"
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
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
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
	// Shard, when set, makes this reconciler one shard of several (docs/decisions.md D23): it
	// runs only links labelled for it, while it holds its Lease.
	Shard *Shard

	// claims reads the links of one ledger key through the cache's key index (the manager's
	// cache, even when Client reads the API server directly).
	claims client.Reader

	mu     sync.Mutex
	links  map[types.NamespacedName]*tracked
	wake   chan event.GenericEvent
	budget *rate.Limiter // counter-only writes of all links together

	writes  writeCounts
	resyncs atomic.Int64 // passes over every link after the engine dropped events
}

// tracked is what the reconciler remembers about a link between passes, to coalesce its status
// writes. Which link runs a key is not remembered here: the API objects and the ledger record
// say. Whether its configuration changed is not either: Engine.Apply compares configs
// (LinkConfig.Same) and leaves an unchanged link running.
type tracked struct {
	uid       types.UID
	lastWrite time.Time
	written   *v1alpha1.ReplicationLinkStatus // the last status written (the cache may lag)
	// deadLetterAction is the outcome of the latest dead-letter request handled (the
	// annotation is gone by the time the status is written), at object version deadLetterRV.
	deadLetterAction *v1alpha1.DeadLetterAction
	deadLetterRV     string
}

type writeCounts struct{ transitions, counters atomic.Int64 }

// StatusWrites reports how many status writes the reconciler made: for transitions (phase,
// conditions, errors) and for counters only.
func (r *ReplicationLinkReconciler) StatusWrites() (transitions, counters int64) {
	return r.writes.transitions.Load(), r.writes.counters.Load()
}

// EventLossResyncs is how many times every link was reconciled again because the engine had
// dropped events (wakeAllOnLoss).
func (r *ReplicationLinkReconciler) EventLossResyncs() int64 { return r.resyncs.Load() }

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
	if r.Shard != nil {
		if res, done, err := r.shardGate(ctx, link); done || err != nil {
			return res, err
		}
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
	older, err := r.olderClaimant(ctx, link, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	if older != nil {
		if err := r.stopRefused(ctx, link, key); err != nil {
			return ctrl.Result{}, err
		}
		return r.problem(ctx, link, duplicate(link, older, key))
	}
	r.remember(nn, link.UID)

	secret := &corev1.Secret{}
	secretName := link.Spec.Signer.SecretRef.Name
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: link.Namespace, Name: secretName}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return r.stopSigning(ctx, link, key, missingSecret(link.Namespace, secretName))
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

	got, holder, err := r.applyLink(ctx, link, key, cfg)
	if holder != nil {
		return r.problem(ctx, link, duplicate(link, holder, key))
	}
	if err != nil {
		return r.problem(ctx, link, &linkconfig.Error{Reason: status.ReasonEngineRejected, Message: "the engine refused the link: " + err.Error()})
	}
	if got != key {
		logf.FromContext(ctx).Info("engine keyed the link differently", "expected", key, "got", got)
		key = got
	}

	snap, ok := r.Engine.Snapshot(key)
	if !ok {
		return r.problem(ctx, link, &linkconfig.Error{Reason: status.ReasonEngineNotRunning,
			Message: "the replication engine is not running this link yet; it starts on the elected operator replica"})
	}
	if err := r.handleDeadLetterRequest(ctx, link, key); err != nil {
		return ctrl.Result{}, err
	}
	if snap, ok = r.Engine.Snapshot(key); !ok {
		return ctrl.Result{RequeueAfter: time.Second}, nil // stopped meanwhile
	}
	cur := r.lastStatus(link)
	next := status.FromSnapshot(cur, snap, status.InputsFor(link, r.Clock.Now()))
	next.LinkKey = key
	if err := r.withDeadLetters(link, key, snap.DeadLetters, &cur, &next); err != nil {
		return ctrl.Result{}, err
	}
	return r.writeStatus(ctx, link, next)
}

// missingSecret is linkconfig.MissingSecret with the label the operator needs on the Secret.
func missingSecret(namespace, name string) *linkconfig.Error {
	e := linkconfig.MissingSecret(namespace, name)
	e.Message += fmt.Sprintf("; the operator sees only Secrets labelled %s=true: if it exists, run kubectl label secret -n %s %s %s=true",
		SignerLabel, namespace, name, SignerLabel)
	return e
}

// stopSigning stops the engine link of a link whose signer Secret is gone, so nothing signs
// with a key its owner deleted, and reports why. The ledger record goes with it: re-creating
// the Secret starts the link again, with a full reconcile.
func (r *ReplicationLinkReconciler) stopSigning(ctx context.Context, link *v1alpha1.ReplicationLink, key string, why *linkconfig.Error) (ctrl.Result, error) {
	if _, running := r.Engine.Snapshot(key); running {
		removed, err := r.Engine.Release(key, string(link.UID))
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("stop link %s after its signer Secret was deleted: %w", key, err)
		}
		if removed {
			r.event(link, corev1.EventTypeWarning, "Stopped", "Stop", "link stopped: its signer Secret %s/%s is gone; re-create it to start the link again",
				link.Namespace, link.Spec.Signer.SecretRef.Name)
			// Of links created in one second, the record's owner keeps the key; with the
			// record gone another one may now own it.
			r.wakeClaimants(ctx, link)
		}
	}
	return r.problem(ctx, link, why)
}

// stopRefused stops the engine link of a refused link that still runs its key: it ran the key
// before the older claimant was seen (that link's namespace informer delivered it later, or the
// operator started watching its namespace). If the older link can run, it takes the key over
// anyway; if it cannot (its Secret is missing or invalid), nothing must sign with the refused
// link's Secret while its status says DuplicateLink. The other claimants are woken: the owner
// may have been refused by the engine while this link ran the key.
func (r *ReplicationLinkReconciler) stopRefused(ctx context.Context, link *v1alpha1.ReplicationLink, key string) error {
	if !r.runsKey(link, key) {
		return nil
	}
	removed, err := r.Engine.Release(key, string(link.UID))
	if err != nil {
		return fmt.Errorf("stop link %s, refused because an older link claims its key: %w", key, err)
	}
	if removed {
		r.event(link, corev1.EventTypeNormal, "Stopped", "Stop", "link stopped: an older ReplicationLink claims this tenant, endpoint and scope (ledger key %s)", key)
		r.wakeClaimants(ctx, link)
	}
	return nil
}

// runsKey reports whether the engine runs key for link: the running link's owner is link, or
// (applied without an owner) it bears link's name.
func (r *ReplicationLinkReconciler) runsKey(link *v1alpha1.ReplicationLink, key string) bool {
	snap, running := r.Engine.Snapshot(key)
	if !running {
		return false
	}
	if snap.Owner != "" {
		return snap.Owner == string(link.UID)
	}
	return snap.Name == client.ObjectKeyFromObject(link).String()
}

// wakeClaimants reconciles the other links of link's key: the key was released.
func (r *ReplicationLinkReconciler) wakeClaimants(ctx context.Context, link *v1alpha1.ReplicationLink) {
	for _, req := range r.otherClaimants(ctx, link) {
		stub := &v1alpha1.ReplicationLink{}
		stub.Namespace, stub.Name = req.Namespace, req.Name
		select {
		case r.wake <- event.GenericEvent{Object: stub}:
		case <-ctx.Done():
			return
		}
	}
}

// problem reports an input problem as Ready=False with the error's reason. The engine keeps
// whatever it was running (a Secret that became invalid does not stop a running link; a deleted
// one does, see stopSigning).
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
	// The whole status, not a merge patch against link: link is the informer's copy, which may
	// still show an older status (another shard's, or this reconciler's previous write not yet
	// echoed back). A diff against it omits the fields that copy shares with next, and leaves a
	// mix on the server (phase initializing under Ready=True/Live, for good: this reconciler
	// remembers having written next and writes nothing more until something changes).
	patch, err := json.Marshal([]map[string]any{{"op": "add", "path": "/status", "value": next}})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("encode the status of %s: %w", nn, err)
	}
	link.Status = next
	if err := r.Client.Status().Patch(ctx, link, client.RawPatch(types.JSONPatchType, patch)); err != nil {
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

// finalize stops the link and removes its ledger record, if it owns its key, and then the
// finalizer. A link that never ran its key (an older one owns it) leaves the owner alone.
func (r *ReplicationLinkReconciler) finalize(ctx context.Context, link *v1alpha1.ReplicationLink) (ctrl.Result, error) {
	nn := client.ObjectKeyFromObject(link)
	if !controllerutil.ContainsFinalizer(link, FinalizerName) {
		return ctrl.Result{}, r.release(ctx, nn) // our finalizer was never added, or removed by hand
	}
	if key, err := linkconfig.Key(link); err == nil {
		older, err := r.olderClaimant(ctx, link, key)
		if err != nil {
			return ctrl.Result{}, err
		}
		if older != nil {
			if err := r.stopRefused(ctx, link, key); err != nil {
				return ctrl.Result{}, err
			}
		} else {
			removed, err := r.Engine.Release(key, string(link.UID))
			if err != nil {
				r.event(link, corev1.EventTypeWarning, "RemoveFailed", "Remove", "could not stop the link and remove its ledger record (retrying): %v", err)
				return ctrl.Result{}, err
			}
			if removed {
				r.event(link, corev1.EventTypeNormal, "Removed", "Remove", "link stopped and its ledger record %s removed", key)
			}
		}
	}
	controllerutil.RemoveFinalizer(link, FinalizerName)
	if err := r.Client.Update(ctx, link); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	r.forget(nn)
	return ctrl.Result{}, nil
}

// release stops the engine link that nn ran, if any (the engine names links namespace/name),
// for the owner the engine recorded, then forgets nn. An error keeps the memory so the retry
// removes it.
func (r *ReplicationLinkReconciler) release(ctx context.Context, nn types.NamespacedName) error {
	r.mu.Lock()
	_, ok := r.links[nn]
	r.mu.Unlock()
	if !ok {
		return nil // never ran here: the engine runs links only for links this reconciler applied
	}
	for _, snap := range r.Engine.Snapshots() {
		if snap.Name != nn.String() {
			continue
		}
		removed, err := r.Engine.Release(snap.Key, snap.Owner)
		if err != nil {
			return fmt.Errorf("stop the engine link %s of deleted ReplicationLink %s: %w", snap.Key, nn, err)
		}
		if removed {
			logf.FromContext(ctx).Info("stopped the engine link of a ReplicationLink deleted without its finalizer", "key", snap.Key)
		}
	}
	r.forget(nn)
	return nil
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

// track returns the link's memory, creating it. Callers that mutate it hold r.mu.
func (r *ReplicationLinkReconciler) track(nn types.NamespacedName) *tracked {
	t, ok := r.links[nn]
	if !ok {
		t = &tracked{}
		r.links[nn] = t
	}
	return t
}

// remember starts the memory of a link, afresh for a new object under an old name.
func (r *ReplicationLinkReconciler) remember(nn types.NamespacedName, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.track(nn); t.uid != uid {
		*t = tracked{uid: uid}
	}
}

func (r *ReplicationLinkReconciler) forget(nn types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.links, nn)
}

// linkOfEvent maps an engine event to its ReplicationLink: the engine names links
// namespace/name (in the event, or else in the link's snapshot). ok is false for a link this
// reconciler does not remember.
func (r *ReplicationLinkReconciler) linkOfEvent(ev syncer.Event) (types.NamespacedName, types.UID, bool) {
	linkName := ev.Name
	if linkName == "" {
		snap, _ := r.Engine.Snapshot(ev.Key)
		linkName = snap.Name
	}
	ns, name, found := strings.Cut(linkName, "/")
	if !found {
		return types.NamespacedName{}, "", false
	}
	nn := types.NamespacedName{Namespace: ns, Name: name}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.links[nn]
	if !ok {
		return nn, "", false
	}
	return nn, t.uid, true
}
