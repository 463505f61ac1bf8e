package syncer

import (
	"context"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// LedgerHealth reports whether the ledger saves checkpoints (readiness checks read it).
func (e *Engine) LedgerHealth() ledger.Health { return e.opts.Ledger.Health() }

// withLedgerHealth adds the ledger's commit state to a link's snapshot: while commits fail,
// no link's checkpoints are saved.
func (e *Engine) withLedgerHealth(s LinkStatus) LinkStatus {
	if h := e.opts.Ledger.Health(); h.Failing {
		s.CheckpointsNotSaved = h.LastError
	}
	return s
}

// watchLedger follows the ledger's health until ctx ends: it keeps the ledger metrics current
// and, when commits start or stop failing, publishes an event for every link so that their
// status (the operator's reconciler, `dwnsync run`'s log) shows it at once.
func (e *Engine) watchLedger(ctx context.Context) {
	var seenFailures uint64
	wasFailing := false
	for {
		changed := e.opts.Ledger.HealthChanged()
		h := e.opts.Ledger.Health()
		if h.Failures > seenFailures {
			e.met.ledgerFailures.Add(float64(h.Failures - seenFailures))
			seenFailures = h.Failures
		}
		if h.Failing != wasFailing {
			wasFailing = h.Failing
			e.publishLedgerHealth(h)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

func (e *Engine) publishLedgerHealth(h ledger.Health) {
	ev := Event{Type: EventCheckpointsSaved, Message: "the ledger saves checkpoints again"}
	healthy := 1.0
	if h.Failing {
		ev = Event{Type: EventCheckpointsNotSaved, Message: "the ledger cannot save checkpoints: " + h.LastError}
		healthy = 0
		e.log.Error(nil, "checkpoints are not being saved: links go on replicating, and a restart now would resume them from older checkpoints (re-copying, not losing, messages)", "error", h.LastError)
	}
	e.met.ledgerHealthy.Set(healthy)
	e.mu.Lock()
	var links []*link
	for _, l := range e.links {
		links = append(links, l)
	}
	e.mu.Unlock()
	for _, l := range links {
		ev := ev
		ev.Key, ev.Name = l.key, l.cfg.Name
		e.publish(ev)
	}
}
