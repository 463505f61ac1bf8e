package syncer

import "sync"

// eventBus is the engine's buffered event channel. Publishing never blocks: when the buffer is
// full the oldest event is dropped and counted.
type eventBus struct {
	mu      sync.Mutex
	ch      chan Event
	dropped int64
}

func newEventBus(size int) *eventBus { return &eventBus{ch: make(chan Event, size)} }

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
		default:
		}
	}
}

func (b *eventBus) droppedCount() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
