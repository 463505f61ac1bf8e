package controllers

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	toolscache "k8s.io/client-go/tools/cache"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// Sharder assigns ReplicationLinks to the live shards of its ring, on the elected replica only.
// It watches every link and the ring's Leases through a cache of its own (started only while it
// leads, so standby shards never hold all links), and follows sharding.Timing.Decide: it labels
// unassigned links, drains links from a live shard that should let go, and declares a silent
// shard dead only once fencing time has passed.
type Sharder struct {
	Namespace string // of the shard Leases
	Ring      string
	Timing    sharding.Timing
	Clock     clock.WithTicker
	// MaxDrains bounds the drains in flight (0: no bound), so a joining shard's share moves in
	// batches and the old shards stop links at a bounded pace.
	MaxDrains int
	// Client writes labels and Leases. Cache holds every link and the ring's Leases; the
	// operator builds it with NewSharderCache and the sharder starts it.
	Client client.Client
	Cache  cache.Cache

	missingSince map[string]time.Time // owners without a Lease, since when
	drainedMu    sync.Mutex
	drained      map[string]drainAsked // links asked to drain: by whom, since when
	observed     atomic.Int64          // unix nanos of the last pass's clock instant
}

// drainAsked is one drain request of the sharder: from which owner, and when (for the
// duration metric).
type drainAsked struct {
	from string
	at   time.Time
}

// shardingChanged passes the updates a pass may act on: not a link's status writes.
func shardingChanged(o, n any) bool {
	a, okA := o.(client.Object)
	b, okB := n.(client.Object)
	if !okA || !okB {
		return true
	}
	if _, lease := b.(*coordinationv1.Lease); lease {
		return true
	}
	return a.GetGeneration() != b.GetGeneration() || !maps.Equal(a.GetLabels(), b.GetLabels()) ||
		!a.GetDeletionTimestamp().Equal(b.GetDeletionTimestamp())
}

// sharderWritesInFlight bounds the sharder's concurrent label writes.
const sharderWritesInFlight = 8

// NewSharderCache is the sharder's cache: every link in namespaces (all when empty), and the
// Leases of ring in leaseNamespace.
func NewSharderCache(cfg *rest.Config, scheme *runtime.Scheme, namespaces []string, leaseNamespace, ring string) (cache.Cache, error) {
	opts := cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&coordinationv1.Lease{}: {
			Namespaces: map[string]cache.Config{leaseNamespace: {}},
			Label:      labels.SelectorFromSet(labels.Set{sharding.RingLabel: ring}),
		},
	}}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return cache.New(cfg, opts)
}

// NeedLeaderElection: one sharder per ring.
func (s *Sharder) NeedLeaderElection() bool { return true }

// Start runs the sharder until ctx ends: a pass on every change of a link or Lease, and when a
// shard's state changes by the clock alone.
func (s *Sharder) Start(ctx context.Context) error {
	if err := s.Timing.Validate(); err != nil {
		return err
	}
	s.missingSince = map[string]time.Time{}
	s.drained = map[string]drainAsked{}
	log := logf.FromContext(ctx).WithName("sharder")
	ctx = logf.IntoContext(ctx, log)
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() },
		UpdateFunc: func(o, n any) {
			if shardingChanged(o, n) {
				poke()
			}
		},
		DeleteFunc: func(any) { poke() },
	}
	for _, obj := range []client.Object{&v1alpha1.ReplicationLink{}, &coordinationv1.Lease{}} {
		inf, err := s.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("sharder: watch %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
	}
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- s.Cache.Start(ctx) }()
	if !s.Cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	// Passes are due at the plan's next check, and at least every renewal interval.
	tick := s.Clock.NewTicker(s.Timing.RenewInterval)
	defer tick.Stop()
	for {
		next, err := s.pass(ctx)
		if err != nil {
			log.Error(err, "sharding pass")
		}
		var at <-chan time.Time
		if !next.IsZero() {
			at = s.Clock.After(max(next.Sub(s.Clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return <-cacheDone
		case <-changed:
		case <-tick.C():
		case <-at:
		}
	}
}

// Observed is the clock instant of the sharder's last pass (tests wait for it).
func (s *Sharder) Observed() time.Time { return time.Unix(0, s.observed.Load()) }

// pass reads the cache, decides, and writes the steps; it returns when the next one is due.
func (s *Sharder) pass(ctx context.Context) (time.Time, error) {
	now := s.Clock.Now()
	var leases coordinationv1.LeaseList
	if err := s.Cache.List(ctx, &leases, client.InNamespace(s.Namespace), client.MatchingLabels{sharding.RingLabel: s.Ring}); err != nil {
		return time.Time{}, err
	}
	// Not copied: a pass only reads the links (linkStep copies the one it writes), and a copy
	// of every link on every pass is most of a pass's cost at 10,000 links.
	var list v1alpha1.ReplicationLinkList
	if err := s.Cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return time.Time{}, err
	}
	byShard := map[string]*coordinationv1.Lease{}
	renewed := map[string]time.Time{}
	var shards []sharding.Shard
	for i := range leases.Items {
		l := &leases.Items[i]
		name := l.Labels[ShardNameLabel]
		if name == "" {
			continue
		}
		byShard[name] = l
		sh := sharding.Shard{Name: name, Holder: ptr.Deref(l.Spec.HolderIdentity, "")}
		if l.Spec.RenewTime != nil {
			sh.RenewTime = l.Spec.RenewTime.Time
			renewed[name] = sh.RenewTime
		}
		shards = append(shards, sh)
	}
	links := make([]sharding.Link, 0, len(list.Items))
	objects := map[string]*v1alpha1.ReplicationLink{}
	owned := map[string]int{}
	for i := range list.Items {
		o := &list.Items[i]
		id := client.ObjectKeyFromObject(o).String()
		key, err := linkconfig.Key(o)
		if err != nil {
			key = string(o.UID) // an invalid link: its shard reports the problem
		}
		l := sharding.Link{ID: id, Key: key, Owner: o.Labels[sharding.OwnerLabel], DrainTo: o.Labels[sharding.DrainLabel]}
		links = append(links, l)
		objects[id] = o
		if l.Owner != "" {
			owned[l.Owner]++
		}
	}
	// An owner label without a Lease: wait from the first sighting as if it had just expired.
	for owner := range owned {
		if _, ok := byShard[owner]; ok {
			delete(s.missingSince, owner)
			continue
		}
		since, ok := s.missingSince[owner]
		if !ok {
			since, s.missingSince[owner] = now, now
		}
		shards = append(shards, sharding.Shard{Name: owner, Holder: owner, RenewTime: since, Missing: true})
	}
	plan := s.Timing.Decide(links, shards, now)
	plan.Draining = max(plan.Draining, s.followDrains(objects, now))
	plan.LimitDrains(s.MaxDrains)
	for _, a := range plan.Shards {
		if err := s.shardStep(ctx, a, byShard[a.Shard.Name]); err != nil {
			return plan.NextCheck, err
		}
	}
	// Label writes are independent: a few in flight, so rebalancing thousands of links is not
	// a queue of round trips.
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
		slots    = make(chan struct{}, sharderWritesInFlight)
	)
	for _, a := range plan.Links {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := s.linkStep(ctx, a, objects[a.Link.ID], now, renewed); err != nil {
				errMu.Lock()
				firstErr = cmp.Or(firstErr, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.report(shards, owned)
	s.observed.Store(now.UnixNano())
	return plan.NextCheck, firstErr
}

// followDrains counts the links asked to drain and not yet let go of, by the cache or by this
// sharder's own requests (its cache may not show its last drains yet: counting only the cache
// would let a burst of passes exceed MaxDrains). A link its old owner handed on is a hand-over
// done: it is timed and forgotten, like the requests for deleted links.
func (s *Sharder) followDrains(objects map[string]*v1alpha1.ReplicationLink, now time.Time) int {
	s.drainedMu.Lock()
	defer s.drainedMu.Unlock()
	n := 0
	for id := range s.drained {
		if _, ok := objects[id]; !ok {
			delete(s.drained, id)
		}
	}
	for id, o := range objects {
		ask, asked := s.drained[id]
		owner := o.Labels[sharding.OwnerLabel]
		switch {
		case o.Labels[sharding.DrainLabel] != "" || (asked && owner == ask.from):
			n++
		case asked && owner != "":
			shardHandoverSeconds.WithLabelValues("drain").Observe(now.Sub(ask.at).Seconds())
			delete(s.drained, id)
		}
	}
	return n
}

// shardStep declares a shard dead (only if its Lease is still the one decided on: an Update
// with its resourceVersion), or deletes a dead shard's Lease so it may join again.
func (s *Sharder) shardStep(ctx context.Context, a sharding.ShardAction, lease *coordinationv1.Lease) error {
	log := logf.FromContext(ctx).WithValues("shard", a.Shard.Name)
	switch {
	case a.Verb == sharding.DeclareDead && lease == nil:
		dead := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: ShardLeaseName(a.Shard.Name),
				Labels: map[string]string{sharding.RingLabel: s.Ring, ShardNameLabel: a.Shard.Name}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(sharding.DeadHolder)},
		}
		if err := s.Client.Create(ctx, dead); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("declare shard %s dead (it has no Lease): %w", a.Shard.Name, err)
		}
		log.Info("shard without a Lease declared dead: its links move", "since", a.Shard.RenewTime)
	case a.Verb == sharding.DeclareDead:
		next := lease.DeepCopy()
		next.Spec.HolderIdentity = ptr.To(sharding.DeadHolder)
		if err := s.Client.Update(ctx, next); err != nil {
			if apierrors.IsConflict(err) {
				return nil // it renewed after all: the next pass sees it
			}
			return fmt.Errorf("declare shard %s dead: %w", a.Shard.Name, err)
		}
		log.Info("shard declared dead: it stopped its links by now, they move", "lastRenewal", a.Shard.RenewTime)
	case a.Verb == sharding.DeleteLease && lease != nil:
		err := s.Client.Delete(ctx, lease, client.Preconditions{ResourceVersion: &lease.ResourceVersion})
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete the Lease of dead shard %s: %w", a.Shard.Name, err)
		}
	}
	return nil
}

// linkStep writes one link's labels, only if the link has not changed since the decision.
func (s *Sharder) linkStep(ctx context.Context, a sharding.LinkAction, o *v1alpha1.ReplicationLink, now time.Time, renewed map[string]time.Time) error {
	next := o.DeepCopy()
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	switch a.Verb {
	case sharding.Assign:
		next.Labels[sharding.OwnerLabel] = a.To
		delete(next.Labels, sharding.DrainLabel)
	case sharding.Unassign:
		delete(next.Labels, sharding.OwnerLabel)
		delete(next.Labels, sharding.DrainLabel)
	case sharding.Drain, sharding.Redirect:
		next.Labels[sharding.DrainLabel] = a.To
	case sharding.Undrain:
		delete(next.Labels, sharding.DrainLabel)
	}
	err := s.Client.Patch(ctx, next, client.MergeFromWithOptions(o, client.MergeFromWithOptimisticLock{}))
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // changed meanwhile: the next pass decides again
		}
		return fmt.Errorf("%s link %s (shard %q → %q): %w", a.Verb, a.Link.ID, a.From, a.To, err)
	}
	if a.Verb == sharding.Assign && a.From != "" {
		shardHandovers.WithLabelValues(a.From, "takenOver").Inc()
	}
	s.timeHandover(a, now, renewed)
	return nil
}

// timeHandover observes how long a link was between shards: from its dead owner's last renewal
// to its new assignment, or from a drain request to an assignment of the unlabelled link (a
// shard that let go the way it did before hand-on). A link handed on by its old owner is timed
// by followDrains.
func (s *Sharder) timeHandover(a sharding.LinkAction, now time.Time, renewed map[string]time.Time) {
	id := a.Link.ID
	s.drainedMu.Lock()
	defer s.drainedMu.Unlock()
	switch {
	case a.Verb == sharding.Drain:
		s.drained[id] = drainAsked{from: a.From, at: now}
	case a.Verb == sharding.Redirect:
	case a.Verb == sharding.Undrain || a.Verb == sharding.Unassign:
		delete(s.drained, id)
	case a.From != "":
		if t, ok := renewed[a.From]; ok {
			shardHandoverSeconds.WithLabelValues("takeover").Observe(now.Sub(t).Seconds())
		}
		delete(s.drained, id)
	default:
		if ask, ok := s.drained[id]; ok {
			shardHandoverSeconds.WithLabelValues("drain").Observe(now.Sub(ask.at).Seconds())
			delete(s.drained, id)
		}
	}
}

// report sets the per-shard link gauge.
func (s *Sharder) report(shards []sharding.Shard, owned map[string]int) {
	names := make([]string, 0, len(shards))
	for _, sh := range shards {
		names = append(names, sh.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		shardLinks.WithLabelValues(n).Set(float64(owned[n]))
	}
}
