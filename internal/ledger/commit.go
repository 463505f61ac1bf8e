package ledger

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// commitLoop is the group committer: the first staged update opens a window of
// CommitInterval; everything staged until it closes goes into one bbolt transaction (one
// fsync). Flush and a full window (MaxPending) close the window early.
func (s *Store) commitLoop() {
	defer close(s.exited)
	for {
		select {
		case <-s.done:
			s.commit()
			return
		case <-s.urgent:
		case <-s.wake:
			t := s.opts.Clock.NewTimer(s.opts.CommitInterval)
			select {
			case <-t.C():
			case <-s.urgent:
			case <-s.done:
				t.Stop()
				s.commit()
				return
			}
			t.Stop()
		}
		s.commit()
	}
}

// commit writes every dirty record in one transaction and wakes Flush waiters.
func (s *Store) commit() {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	s.mu.Lock()
	seq := s.staged
	values := make(map[string][]byte, len(s.dirty))
	var encodeErr error
	for key := range s.dirty {
		v, err := encodeRecord(*s.records[key])
		if err != nil {
			encodeErr = fmt.Errorf("ledger: encode %q: %w", key, err)
			break
		}
		values[key] = v
	}
	if encodeErr == nil {
		s.dirty = map[string]bool{}
		s.pending = 0
	}
	s.mu.Unlock()

	err := encodeErr
	if err == nil && len(values) > 0 {
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(linksBucket)
			for k, v := range values {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			err = fmt.Errorf("ledger: commit %d records: %w", len(values), err)
		}
	}

	s.mu.Lock()
	if err != nil {
		// Keep them dirty: the next commit writes their latest state.
		for k := range values {
			if _, ok := s.records[k]; ok {
				s.dirty[k] = true
			}
		}
		s.opts.Logger.Error(err, "ledger commit failed; will retry with the next commit")
	} else {
		s.committed = seq
	}
	s.commitErr = err
	close(s.committedC)
	s.committedC = make(chan struct{})
	s.mu.Unlock()
}
