package syncer

import (
	"context"
	"slices"
	"sync"
)

// reconcileSlots are the engine's reconcile and repair slots, shared fairly among remote
// endpoints: at most total passes run at once, and at most perEndpoint of them against one
// remote endpoint, so passes stalled on one slow (or trickling) server cannot hold every
// slot while links to other servers wait (issue 10 §2). A freed slot goes to the longest
// waiting pass that may take it: waking every waiter to race for it cost O(waiters) per
// pass, and 10,000 links starting at once spent a fifth of the engine's CPU there.
type reconcileSlots struct {
	total, perEndpoint int

	mu         sync.Mutex
	inUse      int
	byEndpoint map[string]int
	waiting    map[string]int
	queue      []*slotWaiter // oldest first; none of them may take a slot now
}

// slotWaiter is one pass waiting for a slot; granted is closed once the slot is its own.
type slotWaiter struct {
	endpoint string
	granted  chan struct{}
}

// newReconcileSlots shares total slots; one endpoint may hold at most half of them (rounded
// up, so a single slot is still usable).
func newReconcileSlots(total int) *reconcileSlots {
	return &reconcileSlots{total: total, perEndpoint: (total + 1) / 2,
		byEndpoint: map[string]int{}, waiting: map[string]int{}}
}

// acquire waits for a slot for a pass against endpoint, or until ctx ends. The caller must
// call the returned release once the pass is over.
func (s *reconcileSlots) acquire(ctx context.Context, endpoint string) (release func(), err error) {
	s.mu.Lock()
	if s.mayTakeLocked(endpoint) { // no waiter may: see grantLocked
		s.takeLocked(endpoint)
		s.mu.Unlock()
		return s.releaser(endpoint), nil
	}
	w := &slotWaiter{endpoint: endpoint, granted: make(chan struct{})}
	s.queue = append(s.queue, w)
	s.waiting[endpoint]++
	s.mu.Unlock()
	select {
	case <-w.granted:
		return s.releaser(endpoint), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-w.granted: // granted as ctx ended: hand it on
		s.releaseLocked(endpoint)
	default:
		s.queue = slices.DeleteFunc(s.queue, func(q *slotWaiter) bool { return q == w })
		s.doneWaitingLocked(endpoint)
	}
	return nil, ctx.Err()
}

func (s *reconcileSlots) mayTakeLocked(endpoint string) bool {
	return s.inUse < s.total && s.byEndpoint[endpoint] < s.perEndpoint
}

func (s *reconcileSlots) takeLocked(endpoint string) {
	s.inUse++
	s.byEndpoint[endpoint]++
}

func (s *reconcileSlots) releaser(endpoint string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.releaseLocked(endpoint)
		})
	}
}

func (s *reconcileSlots) doneWaitingLocked(endpoint string) {
	if s.waiting[endpoint]--; s.waiting[endpoint] == 0 {
		delete(s.waiting, endpoint)
	}
}

func (s *reconcileSlots) releaseLocked(endpoint string) {
	s.inUse--
	if s.byEndpoint[endpoint]--; s.byEndpoint[endpoint] == 0 {
		delete(s.byEndpoint, endpoint)
	}
	s.grantLocked()
}

// grantLocked hands free slots to the oldest waiters that may take them.
func (s *reconcileSlots) grantLocked() {
	for i := 0; i < len(s.queue) && s.inUse < s.total; {
		w := s.queue[i]
		if !s.mayTakeLocked(w.endpoint) {
			i++
			continue
		}
		s.takeLocked(w.endpoint)
		s.doneWaitingLocked(w.endpoint)
		close(w.granted)
		s.queue = slices.Delete(s.queue, i, i+1)
	}
}
