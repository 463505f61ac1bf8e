package syncer

import (
	"context"
	"sync"
)

// reconcileSlots are the engine's reconcile and repair slots, shared fairly among remote
// endpoints: at most total passes run at once, and at most perEndpoint of them against one
// remote endpoint, so passes stalled on one slow (or trickling) server cannot hold every
// slot while links to other servers wait (issue 10 §2).
type reconcileSlots struct {
	total, perEndpoint int

	mu         sync.Mutex
	inUse      int
	byEndpoint map[string]int
	waiting    map[string]int
	// freed is closed, and replaced, whenever a slot is released: the waiters then look again.
	freed chan struct{}
}

// newReconcileSlots shares total slots; one endpoint may hold at most half of them (rounded
// up, so a single slot is still usable).
func newReconcileSlots(total int) *reconcileSlots {
	return &reconcileSlots{total: total, perEndpoint: (total + 1) / 2,
		byEndpoint: map[string]int{}, waiting: map[string]int{}, freed: make(chan struct{})}
}

// acquire waits for a slot for a pass against endpoint, or until ctx ends. The caller must
// call the returned release once the pass is over.
func (s *reconcileSlots) acquire(ctx context.Context, endpoint string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting[endpoint]++
	defer s.doneWaiting(endpoint) // runs before the Unlock above
	for s.inUse >= s.total || s.byEndpoint[endpoint] >= s.perEndpoint {
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			s.mu.Lock()
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	s.inUse++
	s.byEndpoint[endpoint]++
	var once sync.Once
	return func() { once.Do(func() { s.release(endpoint) }) }, nil
}

func (s *reconcileSlots) doneWaiting(endpoint string) {
	if s.waiting[endpoint]--; s.waiting[endpoint] == 0 {
		delete(s.waiting, endpoint)
	}
}

func (s *reconcileSlots) release(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inUse--
	if s.byEndpoint[endpoint]--; s.byEndpoint[endpoint] == 0 {
		delete(s.byEndpoint, endpoint)
	}
	close(s.freed)
	s.freed = make(chan struct{})
}
