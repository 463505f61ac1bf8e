package syncer

import (
	"fmt"
	"slices"

	"github.com/dwnsync/dwnsync/internal/ledger"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Events of the dead-letter actions a person takes (Message: how many, and which CIDs).
const (
	EventDeadLettersRetried = "dead-letters:retried"
	EventDeadLettersCleared = "dead-letters:cleared"
)

// ErrUnknownLink is returned for a key the engine does not run.
var ErrUnknownLink = fmt.Errorf("syncer: no such link")

// DeadLetters returns the dead letters the ledger holds for a link, oldest first.
func (e *Engine) DeadLetters(key string) ([]ledger.DeadLetter, error) {
	if e.runningLink(key) == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownLink, key)
	}
	rec, ok, err := e.opts.Ledger.Get(key)
	if err != nil || !ok {
		return nil, fmt.Errorf("syncer: reading the dead letters of %s: %v", key, err)
	}
	return rec.DeadLetters, nil
}

// ClearDeadLetters forgets the link's dead letters with the given CIDs (all when cids is
// empty) and returns the ones it forgot. The messages are not copied: a later reconcile
// that fails on one again records it again.
func (e *Engine) ClearDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error) {
	return e.dropDeadLetters(key, cids, EventDeadLettersCleared)
}

// RetryDeadLetters forgets the link's dead letters with the given CIDs (all when cids is
// empty) and has the link reconcile now: the reconcile re-runs every message one side lacks
// through the copier, these included. One that fails again is a new dead letter (and a new
// dead-letter event); one that crosses is simply there.
func (e *Engine) RetryDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error) {
	dropped, err := e.dropDeadLetters(key, cids, EventDeadLettersRetried)
	if err != nil || len(dropped) == 0 {
		return dropped, err
	}
	e.runningLink(key).send(ls.RetryNow{})
	return dropped, nil
}

func (e *Engine) dropDeadLetters(key string, cids []string, event string) ([]ledger.DeadLetter, error) {
	l := e.runningLink(key)
	if l == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownLink, key)
	}
	var dropped []ledger.DeadLetter
	left := -1
	err := e.opts.Ledger.Update(key, func(r *ledger.Record) {
		kept := r.DeadLetters[:0]
		for _, d := range r.DeadLetters {
			if len(cids) == 0 || slices.Contains(cids, d.CID) {
				dropped = append(dropped, d)
			} else {
				kept = append(kept, d)
			}
		}
		r.DeadLetters, left = kept, len(kept)
	})
	if err != nil {
		return nil, fmt.Errorf("syncer: updating the dead letters of %s: %w", key, err)
	}
	if len(dropped) == 0 {
		return nil, nil
	}
	l.mu.Lock()
	l.status.DeadLetters = left
	l.mu.Unlock()
	msg := fmt.Sprintf("%d dead letter(s): %s", len(dropped), deadLetterCIDs(dropped))
	e.publish(Event{Key: key, Name: l.cfg.Name, Type: event, Message: msg})
	return dropped, nil
}

func (e *Engine) runningLink(key string) *link {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.links[key]
}

func deadLetterCIDs(ds []ledger.DeadLetter) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = ls.DeadLetterMessage(d.Direction, d.CID)
	}
	return out
}
