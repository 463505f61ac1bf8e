package syncer

import (
	"context"
	"sort"
	"time"

	"github.com/dwnsync/dwnsync/internal/baseurl"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// pollGroup drives the poll-mode links to one remote endpoint (docs/engine-behaviour.md#poll-mode):
// every tick reconciles them one after the other; the first failure skips the rest of the group for
// that tick (the endpoint is probably down); consecutive failed ticks back the interval off to 2×
// then 4×; any success resets it. Groups are independent, so one unreachable endpoint does not take
// the others offline (partial reachability stays online).
type pollGroup struct {
	endpoint string
	links    map[string]*link
	cancel   context.CancelFunc
	wake     chan struct{}
	failures int
}

func (e *Engine) joinPollGroupLocked(l *link) {
	ep := baseurl.Normalize(l.cfg.RemoteEndpoint)
	g := e.groups[ep]
	if g == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		g = &pollGroup{endpoint: ep, links: map[string]*link{}, cancel: cancel, wake: make(chan struct{}, 1)}
		e.groups[ep] = g
		go e.runPollGroup(ctx, g)
	}
	g.links[l.key] = l
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) leavePollGroupLocked(l *link) {
	ep := baseurl.Normalize(l.cfg.RemoteEndpoint)
	g := e.groups[ep]
	if g == nil {
		return
	}
	if g.links[l.key] != l {
		return
	}
	delete(g.links, l.key)
	if len(g.links) == 0 {
		g.cancel()
		delete(e.groups, ep)
	}
}

func (e *Engine) runPollGroup(ctx context.Context, g *pollGroup) {
	for {
		select {
		case <-g.wake: // this tick covers whoever joined
		default:
		}
		e.mu.Lock()
		var links []*link
		interval := time.Duration(0)
		for _, l := range g.links {
			links = append(links, l)
			if interval == 0 || l.cfg.PollInterval < interval {
				interval = l.cfg.PollInterval
			}
		}
		e.mu.Unlock()
		sort.Slice(links, func(i, j int) bool { return links[i].key < links[j].key })
		anyOK, failed := false, false
		for _, l := range links {
			r, ok := l.poll(ctx)
			if !ok {
				if ctx.Err() != nil {
					return
				}
				continue // the link stopped meanwhile
			}
			if !r.OK {
				failed = true
				break
			}
			anyOK = true
		}
		switch {
		case failed:
			g.failures++
		case anyOK:
			g.failures = 0
		}
		wait := interval
		if g.failures > 0 {
			wait = interval * time.Duration(min(1<<g.failures, MaxBackoffMultiplier))
		}
		if wait <= 0 {
			wait = DefaultPollInterval
		}
		t := e.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-g.wake: // a link joined: poll it now
			t.Stop()
		case <-t.C():
		}
	}
}

// poll asks the link's supervisor for one reconcile and waits for its answer.
func (l *link) poll(ctx context.Context) (ls.PollResult, bool) {
	select {
	case <-l.pollReply: // a stale answer
	default:
	}
	select {
	case l.mbox <- ls.PollTick{}:
	case <-ctx.Done():
		return ls.PollResult{}, false
	case <-l.ctx.Done():
		return ls.PollResult{}, false
	}
	select {
	case r := <-l.pollReply:
		return r, true
	case <-ctx.Done():
	case <-l.ctx.Done():
	}
	return ls.PollResult{}, false
}
