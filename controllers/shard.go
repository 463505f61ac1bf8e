package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dwnsync/dwnsync/internal/sharding"
)

// ShardNameLabel on a shard Lease names its shard.
const ShardNameLabel = "shard.dwnsync.io/shard"

// ShardLeaseName is the name of a shard's Lease.
func ShardLeaseName(shard string) string { return shard + ".shard.dwnsync.io" }

// errNotShardOwner refuses an Apply on a shard that does not hold its Lease.
var errNotShardOwner = errors.New("this shard does not hold its Lease (starting, partitioned, or declared dead): it runs no link")

// Shard makes one operator replica a shard: it holds the shard's Lease and runs links only
// while it does. When it cannot renew within LeaseDuration-Margin, or finds its Lease declared
// dead, it stops every link (fencing) before the sharder may hand them to others.
type Shard struct {
	Name      string // the pod name; the value of sharding.OwnerLabel on its links
	Namespace string // of the Lease
	Ring      string // sharding.RingLabel of the Lease
	Timing    sharding.Timing
	Clock     clock.WithTicker
	// Client writes the Lease and the links' labels; Reader reads both from the API server
	// (never a cache: a stale owner label must not start a link).
	Client client.Client
	Reader client.Reader

	engine   LinkEngine
	onActive func(context.Context) // wakes every link of the shard when it (re)gains its Lease

	// gate is held for reading around engine Applies and for writing while fencing, so no
	// Apply slips in after the fence stopped everything.
	gate      sync.RWMutex
	active    bool
	lastRenew time.Time
	lease     *coordinationv1.Lease
	observed  atomic.Int64 // unix nanos of the last clock instant the renew loop handled
}

// NeedLeaderElection: every replica is a shard.
func (s *Shard) NeedLeaderElection() bool { return false }

// Active reports whether the shard holds its Lease and may run links.
func (s *Shard) Active() bool {
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.active
}

// Observed is the last clock instant the shard's renew loop acted on (tests wait for it).
func (s *Shard) Observed() time.Time { return time.Unix(0, s.observed.Load()) }

// Start renews the Lease every RenewInterval until ctx ends. A stopping shard does not release
// its Lease: the engine stops its links as the process ends, and a pod restarted within
// LeaseDuration+Margin takes its own Lease and links back (StatefulSet: same name, same ledger).
func (s *Shard) Start(ctx context.Context) error {
	if err := s.Timing.Validate(); err != nil {
		return err
	}
	tick := s.Clock.NewTicker(s.Timing.RenewInterval)
	defer tick.Stop()
	s.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
			s.tick(ctx)
		}
	}
}

func (s *Shard) tick(ctx context.Context) {
	now := s.Clock.Now()
	defer s.observed.Store(now.UnixNano())
	log := logf.FromContext(ctx).WithValues("shard", s.Name)
	// A renewal may hang on a partitioned network: it may take only until the fencing
	// deadline, and a deadline already passed fences first.
	s.gate.RLock()
	active, deadline := s.active, s.Timing.StopsBy(s.lastRenew)
	s.gate.RUnlock()
	renewCtx := ctx
	if active {
		if !now.Before(deadline) {
			s.fence(ctx, fmt.Sprintf("no renewal of its Lease since %s", s.lastRenew.UTC().Format(time.RFC3339)))
		} else {
			var cancel context.CancelFunc
			renewCtx, cancel = context.WithTimeout(ctx, deadline.Sub(now))
			defer cancel()
		}
	}
	err := s.renew(renewCtx, now)
	switch {
	case err == nil:
		s.gate.Lock()
		woke := !s.active
		s.active, s.lastRenew = true, now
		s.gate.Unlock()
		if woke {
			log.Info("shard holds its Lease: running its links")
			if s.onActive != nil {
				go s.onActive(ctx) // never blocks the renewals
			}
		}
	case errors.Is(err, errLeaseLost):
		s.fence(ctx, "its Lease was declared dead or released")
	default:
		s.gate.RLock()
		due := s.active && s.Timing.MustStop(s.lastRenew, s.Clock.Now()) // the renewal may have taken long
		s.gate.RUnlock()
		if due {
			s.fence(ctx, fmt.Sprintf("no renewal of its Lease since %s (%v)", s.lastRenew.UTC().Format(time.RFC3339), err))
		} else {
			log.Info("could not renew the shard Lease", "error", err.Error())
		}
	}
}

var errLeaseLost = errors.New("shard lease lost")

// renew takes or renews the Lease at now. It takes a missing Lease, or its own, but never a
// dead or released one: those belong to the sharder until it deleted them.
func (s *Shard) renew(ctx context.Context, now time.Time) error {
	s.gate.RLock()
	lease := s.lease
	s.gate.RUnlock()
	if lease == nil {
		lease = &coordinationv1.Lease{}
		err := s.Reader.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: ShardLeaseName(s.Name)}, lease)
		switch {
		case apierrors.IsNotFound(err):
			if err := s.forgetEarlierTenure(ctx); err != nil {
				return err
			}
			lease = s.newLease(now)
			if err := s.Client.Create(ctx, lease); err != nil {
				return fmt.Errorf("create shard Lease %s/%s: %w", s.Namespace, lease.Name, err)
			}
			s.keep(lease)
			return nil
		case err != nil:
			return fmt.Errorf("read shard Lease: %w", err)
		}
	}
	if ptr.Deref(lease.Spec.HolderIdentity, "") != s.Name {
		s.keep(nil)
		return errLeaseLost
	}
	next := lease.DeepCopy()
	next.Spec.RenewTime = &metav1.MicroTime{Time: now}
	next.Spec.LeaseDurationSeconds = ptr.To(int32(s.Timing.LeaseDuration / time.Second))
	if err := s.Client.Update(ctx, next); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			s.keep(nil) // re-read: the sharder may have declared this shard dead
		}
		return fmt.Errorf("renew shard Lease: %w", err)
	}
	s.keep(next)
	return nil
}

// idleRecordDropper is an engine that can delete the ledger records of the links it does not
// run (the operator's engine).
type idleRecordDropper interface {
	DropIdleRecords() (int, error)
}

// forgetEarlierTenure runs before the shard takes a new Lease (it has none, or the sharder
// retired the one declared dead): the links of an earlier tenure, cut short by a kill or a stop
// longer than the fencing delay, ran on other shards since, so the checkpoints its ledger kept
// for them are stale. They are dropped before any link can start here, so a link handed back
// starts with a bootstrap reconcile (D23) instead of paging again through everything written
// since. A pod restarted within the fencing delay finds its own Lease and keeps them.
func (s *Shard) forgetEarlierTenure(ctx context.Context) error {
	d, ok := s.engine.(idleRecordDropper)
	if !ok {
		return nil
	}
	if w, ok := s.engine.(readyWaiter); ok {
		if err := w.WaitReady(ctx); err != nil {
			return fmt.Errorf("wait for the engine before taking a new shard Lease: %w", err)
		}
	}
	n, err := d.DropIdleRecords()
	if err != nil {
		return fmt.Errorf("drop the ledger records of an earlier tenure before taking a new shard Lease: %w", err)
	}
	if n > 0 {
		logf.FromContext(ctx).Info("new shard tenure: dropped the ledger records of links that ran elsewhere since; they start with a reconcile if they come back",
			"shard", s.Name, "records", n)
	}
	return nil
}

func (s *Shard) keep(l *coordinationv1.Lease) {
	s.gate.Lock()
	s.lease = l
	s.gate.Unlock()
}

func (s *Shard) newLease(now time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: ShardLeaseName(s.Name),
			Labels: map[string]string{sharding.RingLabel: s.Ring, ShardNameLabel: s.Name}},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(s.Name),
			LeaseDurationSeconds: ptr.To(int32(s.Timing.LeaseDuration / time.Second)),
			AcquireTime:          &metav1.MicroTime{Time: now},
			RenewTime:            &metav1.MicroTime{Time: now},
		},
	}
}

// fence stops every link of the engine: the shard may no longer hold its Lease.
func (s *Shard) fence(ctx context.Context, why string) {
	s.gate.Lock()
	defer s.gate.Unlock()
	if !s.active {
		return
	}
	s.active = false
	stopped := 0
	for _, snap := range s.engine.Snapshots() {
		if _, err := s.engine.Release(snap.Key, snap.Owner); err != nil {
			logf.FromContext(ctx).Error(err, "fencing: could not stop a link", "key", snap.Key)
			continue
		}
		stopped++
	}
	shardFencingStops.WithLabelValues(s.Name).Add(float64(stopped))
	logf.FromContext(ctx).Info("shard fenced: stopped every link", "shard", s.Name, "why", why, "links", stopped)
}

// holding runs do, an engine Apply, only while the shard holds its Lease.
func (s *Shard) holding(do func() error) error {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if !s.active {
		return errNotShardOwner
	}
	return do()
}
