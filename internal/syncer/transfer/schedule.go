package transfer

import (
	"context"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// abortFlag holds the first transient failure of a batch: once set, messages not yet started
// are not attempted.
type abortFlag struct {
	mu  sync.Mutex
	err error
}

func (a *abortFlag) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *abortFlag) setIfFirst(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
}

// applyInOrder copies items, ApplyConcurrency at a time, and returns their outcomes in order.
// An item starts once every item of the batch it depends on (protocol → initial write →
// parent → grant, see dependencyGraph) has finished, whatever else is still running: a slow
// message holds up only its own dependents. Items caught in a dependency cycle go one at a
// time, in input order, once nothing else can start. After a transient failure sets stop,
// items not yet started get that error instead of being attempted.
func (c *Copier) applyInOrder(ctx context.Context, src, dst dwn.Tenant, items []item, stop *abortFlag) []Outcome {
	infos := make([]msg.MessageInfo, len(items))
	for i, it := range items {
		infos[i] = it.Info
	}
	dependents, waitingOn := dependencyGraph(infos)
	s := scheduler{dependents: dependents, waitingOn: waitingOn, started: make([]bool, len(items))}
	for i := range items {
		if waitingOn[i] == 0 {
			s.ready = append(s.ready, i)
		}
	}

	outs := make([]Outcome, len(items))
	finished := make(chan int)
	running, done := 0, 0
	for done < len(items) {
		for running < c.applyConcurrency() {
			i, ok := s.next()
			if !ok {
				break
			}
			if err := stop.get(); err != nil {
				outs[i] = Outcome{CID: items[i].Entry.CID, Err: err}
				s.finish(i)
				done++
				continue
			}
			running++
			go func() {
				outs[i] = c.copyRoot(ctx, src, dst, items[i], stop)
				finished <- i
			}()
		}
		if running == 0 {
			if done < len(items) {
				s.breakCycle()
			}
			continue
		}
		i := <-finished
		running--
		done++
		s.finish(i)
	}
	return outs
}

// copyRoot copies one item of the batch with its own dependency budget, and raises stop when
// it failed in a way the rest of the batch would too.
func (c *Copier) copyRoot(ctx context.Context, src, dst dwn.Tenant, it item, stop *abortFlag) Outcome {
	budget := c.maxDependencyPasses()
	o := c.copyOne(ctx, src, dst, it, &budget, map[string]bool{it.Entry.CID: true})
	if cause := abortCause(ctx, o.Err); cause != nil {
		stop.setIfFirst(cause)
	}
	return o
}

// scheduler tracks which items of a batch may start: those whose dependencies in the batch
// have all finished, in the order they became ready.
type scheduler struct {
	dependents [][]int
	waitingOn  []int // dependencies in the batch not finished yet
	started    []bool
	ready      []int
}

func (s *scheduler) next() (int, bool) {
	if len(s.ready) == 0 {
		return 0, false
	}
	i := s.ready[0]
	s.ready = s.ready[1:]
	s.started[i] = true
	return i, true
}

func (s *scheduler) finish(i int) {
	for _, d := range s.dependents[i] {
		s.waitingOn[d]--
		if s.waitingOn[d] == 0 && !s.started[d] {
			s.ready = append(s.ready, d)
		}
	}
}

// breakCycle readies the first item not started yet: nothing is running and nothing is ready,
// so the rest wait on each other.
func (s *scheduler) breakCycle() {
	for i, started := range s.started {
		if !started {
			s.waitingOn[i] = 0
			s.ready = append(s.ready, i)
			return
		}
	}
}
