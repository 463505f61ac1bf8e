package syncer

import "sync"

// eventBus is the engine's buffered event channel. Publishing never blocks: when the buffer is
// full the oldest event is dropped and counted, and lost is signalled (one pending signal at
// most, however many were dropped) so that the consumer knows to look at every link again.
type eventBus struct {
	mu      sync.Mutex
	ch      chan Event
	lost    chan struct{}
	dropped int64
}

func newEventBus(size int) *eventBus {
	return &eventBus{ch: make(chan Event, size), lost: make(chan struct{}, 1)}
}

func (b *eventBus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		select {
		case b.ch <- ev:
			return
		default:
		}
		select {
		case <-b.ch:
			b.dropped++
			select {
			case b.lost <- struct{}{}:
			default: // a signal is already pending: it covers this drop too
			}
		default:
		}
	}
}

func (b *eventBus) droppedCount() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
