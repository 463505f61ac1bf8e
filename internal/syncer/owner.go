package syncer

import (
	"fmt"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// DuplicateLinkError refuses a link whose ledger key another owner holds: one tenant, remote
// endpoint and scope is replicated by one link. Owner is the holder's LinkConfig.Owner, as the
// ledger record keeps it; the caller decides what to tell whom (a namespace must not learn the
// names of another's objects).
type DuplicateLinkError struct {
	Key   string
	Owner string
}

func (e *DuplicateLinkError) Error() string {
	return fmt.Sprintf("ledger key %s is owned by %s: one tenant, endpoint and scope is replicated by one link; remove one of the two links", e.Key, e.Owner)
}

// holderLocked is the owner that holds key: the one in its ledger record, else the running
// link's (e.mu held).
func (e *Engine) holderLocked(key string) (string, error) {
	rec, found, err := e.opts.Ledger.Get(key)
	if err != nil {
		return "", fmt.Errorf("ledger: %w", err)
	}
	if found && rec.OwnerUID != "" {
		return rec.OwnerUID, nil
	}
	if l := e.links[key]; l != nil {
		return l.cfg.Owner, nil
	}
	return "", nil
}

// claimLocked refuses cfg when another owner holds key (e.mu held).
func (e *Engine) claimLocked(key string, cfg LinkConfig) error {
	if cfg.Owner == "" {
		return nil
	}
	holder, err := e.holderLocked(key)
	if err != nil {
		return fmt.Errorf("link %q: %w", cfg.Name, err)
	}
	if holder == "" || holder == cfg.Owner || holder == cfg.Supersedes {
		return nil
	}
	return &DuplicateLinkError{Key: key, Owner: holder}
}

// recordOwner keeps cfg's owner in key's ledger record (durable with the next commit).
func (e *Engine) recordOwner(key string, cfg LinkConfig) error {
	if cfg.Owner == "" {
		return nil
	}
	rec, _, err := e.opts.Ledger.Get(key)
	if err != nil || rec.OwnerUID == cfg.Owner {
		return err
	}
	return e.opts.Ledger.Update(key, func(r *ledger.Record) { r.OwnerUID = cfg.Owner })
}

// Release stops key's link and deletes its ledger record when owner holds the key (or no
// owner is recorded), and reports whether it did. Another owner's link and record are left
// alone, so removing a link that never ran the key cannot remove the one that does.
func (e *Engine) Release(key, owner string) (bool, error) {
	e.mu.Lock()
	for e.restarting[key] != nil {
		wait := e.restarting[key]
		e.mu.Unlock()
		<-wait
		e.mu.Lock()
	}
	holder, err := e.holderLocked(key)
	if err != nil {
		e.mu.Unlock()
		return false, err
	}
	if holder != "" && holder != owner {
		e.mu.Unlock()
		return false, nil
	}
	// Applies of key wait until the record is gone, so none recreates it in between.
	done := make(chan struct{})
	e.restarting[key] = done
	e.mu.Unlock()
	err = e.Remove(key)
	e.mu.Lock()
	delete(e.restarting, key)
	close(done)
	e.mu.Unlock()
	return err == nil, err
}

// DropIdleRecords deletes the ledger record of every key that no link of the engine runs, and
// returns how many it deleted. A shard calls it before it takes a new Lease: the links of its
// earlier tenure ran on other shards meanwhile, so the checkpoints it kept for them (a killed
// process flushes nothing and releases nothing) are stale, and resuming from them would page
// again through everything written since (D23: a moved link starts with a bootstrap reconcile).
func (e *Engine) DropIdleRecords() (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	recs, err := e.opts.Ledger.List()
	if err != nil {
		return 0, err
	}
	var idle []string
	for _, r := range recs {
		if e.links[r.Key] == nil && e.restarting[r.Key] == nil {
			idle = append(idle, r.Key)
		}
	}
	if err := e.opts.Ledger.RemoveAll(idle); err != nil {
		return 0, fmt.Errorf("syncer: drop the records of links not running: %w", err)
	}
	return len(idle), nil
}
