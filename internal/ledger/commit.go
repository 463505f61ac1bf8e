package ledger

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"k8s.io/utils/clock"
)

// Health is the state of the group commit: whether checkpoints reach the file.
type Health struct {
	// Failing is true from a failed commit until the next commit that succeeds. Meanwhile the
	// changes stay staged in memory and are retried; they are lost only if the process ends.
	Failing   bool
	LastError string    // the failed commit's error ("" when not failing)
	Since     time.Time // when the current run of failures began
	Failures  uint64    // failed commits since Open
}

// Health reports whether staged changes reach the file.
func (s *Store) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// HealthChanged returns a channel closed at the next change of Health (every failed commit,
// and the first good commit after failures).
func (s *Store) HealthChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.healthC
}

// commitLoop is the group committer: the first staged update opens a window of
// CommitInterval; everything staged until it closes goes into one bbolt transaction (one
// fsync). Flush and a full window (MaxStagedUpdates) close the window early. After a failed commit
// the loop retries with a growing delay, even when nothing new is staged.
func (s *Store) commitLoop() {
	defer close(s.exited)
	for {
		retry := s.armRetry()
		select {
		case <-s.done:
			stopTimer(retry)
			s.commit()
			return
		case <-s.urgent:
		case <-timerC(retry):
		case <-s.wake:
			stopTimer(retry)
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
		stopTimer(retry)
		s.commit()
	}
}

// armRetry starts the retry timer when the latest commit failed.
func (s *Store) armRetry() clock.Timer {
	s.mu.Lock()
	failing, n := s.health.Failing, s.consecutive
	s.mu.Unlock()
	if !failing {
		return nil
	}
	d := s.opts.CommitRetry
	for i := 1; i < n && d < MaxCommitRetry; i++ {
		d *= 2
	}
	d = min(d, MaxCommitRetry)
	t := s.opts.Clock.NewTimer(d)
	if s.opts.retryArmed != nil {
		s.opts.retryArmed(d)
	}
	return t
}

func timerC(t clock.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func stopTimer(t clock.Timer) {
	if t != nil {
		t.Stop()
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
		err = s.write(values)
		if err != nil {
			err = fmt.Errorf("ledger: commit %d records: %w", len(values), err)
		}
	}

	s.mu.Lock()
	if err != nil {
		// Keep them dirty: the retry (or the next commit) writes their latest state.
		for k := range values {
			if _, ok := s.records[k]; ok {
				s.dirty[k] = true
			}
		}
		s.opts.Logger.Error(err, "ledger commit failed: checkpoints are kept in memory and retried", "staged", len(s.dirty))
	} else {
		s.committed = seq
	}
	s.commitErr = err
	s.noteHealthLocked(err)
	close(s.committedC)
	s.committedC = make(chan struct{})
	s.mu.Unlock()
}

// write puts the encoded records into the file in one transaction.
func (s *Store) write(values map[string][]byte) error {
	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(); err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(linksBucket)
		for k, v := range values {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// noteHealthLocked updates Health after a commit attempt. Caller holds s.mu.
func (s *Store) noteHealthLocked(err error) {
	switch {
	case err != nil:
		if !s.health.Failing {
			s.health.Since = s.opts.Clock.Now()
		}
		s.health.Failing = true
		s.health.LastError = err.Error()
		s.health.Failures++
		s.consecutive++
	case s.health.Failing:
		s.opts.Logger.Info("ledger commits succeed again: checkpoints are saved", "failedCommits", s.consecutive)
		s.health.Failing, s.health.LastError, s.health.Since = false, "", time.Time{}
		s.consecutive = 0
	default:
		return
	}
	close(s.healthC)
	s.healthC = make(chan struct{})
}

// FullDisk simulates a full disk for Options.BeforeCommit: while it is set, every commit fails
// with ENOSPC before touching the file (tests and fault drills).
type FullDisk struct{ full atomic.Bool }

// Set fills (true) or frees (false) the simulated disk.
func (d *FullDisk) Set(full bool) { d.full.Store(full) }

// BeforeCommit is the Options.BeforeCommit hook.
func (d *FullDisk) BeforeCommit() error {
	if d.full.Load() {
		return fmt.Errorf("simulated full disk: %w", syscall.ENOSPC)
	}
	return nil
}
