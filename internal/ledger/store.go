package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/go-logr/logr"
	bolt "go.etcd.io/bbolt"
	"k8s.io/utils/clock"
)

// Defaults for Options.
const (
	DefaultCommitInterval   = 200 * time.Millisecond
	DefaultMaxStagedUpdates = 256
	DefaultMaxDeadLetters   = 100
	// DefaultCommitRetry is the first wait before a failed commit is retried; it doubles up to
	// MaxCommitRetry while commits keep failing.
	DefaultCommitRetry = time.Second
	MaxCommitRetry     = 30 * time.Second
)

var linksBucket = []byte("links")

// ErrNotFound is returned when a key has no record.
var ErrNotFound = errors.New("ledger: no such link record")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("ledger: store is closed")

// Options tune a Store. Zero values take the defaults above.
type Options struct {
	Clock            clock.Clock
	CommitInterval   time.Duration // how long staged updates may wait for company
	MaxStagedUpdates int           // staged updates that force a commit at once
	MaxDeadLetters   int           // dead letters kept per link (oldest dropped)
	CommitRetry      time.Duration // first wait before a failed commit is retried
	Logger           logr.Logger

	// BeforeCommit, when set, runs before each group commit writes to the file; an error it
	// returns fails that commit like a write error (fault injection: a full or read-only disk).
	BeforeCommit func() error

	// retryArmed, when set, is called with the delay each time a failed commit schedules its
	// retry (tests step a fake clock by exactly that).
	retryArmed func(time.Duration)
}

// Store is the ledger. All methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options

	// commitMu orders every write to the file (group commits, creations, removals), so a
	// removed record can never be resurrected by a commit snapshot taken before the removal.
	commitMu sync.Mutex

	mu          sync.Mutex
	records     map[string]*Record
	dirty       map[string]bool
	staged      uint64        // sequence of the latest staged update
	committed   uint64        // every update up to this sequence is durable
	pending     int           // staged updates since the last snapshot
	commitErr   error         // result of the latest commit
	committedC  chan struct{} // closed (and replaced) after each commit attempt
	closed      bool
	health      Health
	consecutive int           // failed commits in a row
	healthC     chan struct{} // closed (and replaced) when health changes

	wake   chan struct{} // something was staged
	urgent chan struct{} // commit now: Flush, or too many pending
	done   chan struct{}
	exited chan struct{}
}

// Open opens (or creates) the ledger file and loads every record. Records of an older schema
// are migrated and rewritten by the first commit; a newer schema is refused. A missing file is
// a fresh start; an existing one is verified first (Check), and a damaged one (empty,
// truncated, not a ledger, failing bbolt's consistency check) is refused with a *DamagedError
// that says how to recover, never with a panic.
func Open(path string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = DefaultCommitInterval
	}
	if opts.MaxStagedUpdates <= 0 {
		opts.MaxStagedUpdates = DefaultMaxStagedUpdates
	}
	if opts.MaxDeadLetters <= 0 {
		opts.MaxDeadLetters = DefaultMaxDeadLetters
	}
	if opts.CommitRetry <= 0 {
		opts.CommitRetry = DefaultCommitRetry
	}
	db, err := openVerified(path, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:         db,
		opts:       opts,
		records:    map[string]*Record{},
		dirty:      map[string]bool{},
		committedC: make(chan struct{}),
		healthC:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		urgent:     make(chan struct{}, 1),
		done:       make(chan struct{}),
		exited:     make(chan struct{}),
	}
	if err := withoutPanics(s.load); err != nil {
		_ = db.Close()
		var fe formatError
		if errors.As(err, &fe) {
			abs, _ := filepath.Abs(path)
			return nil, damaged(abs, fe.error)
		}
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	go s.commitLoop()
	if len(s.dirty) > 0 {
		s.signal(s.wake)
	}
	return s, nil
}

func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(linksBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			rec, migrated, err := decodeRecord(string(k), v)
			if err != nil && !errors.Is(err, errNewerSchema) {
				return formatError{err} // the file is damaged
			}
			if err != nil {
				return err
			}
			s.records[rec.Key] = &rec
			if migrated {
				s.dirty[rec.Key] = true
				s.staged++
			}
			return nil
		})
	})
}

// Get returns a copy of the record for key.
func (s *Store) Get(key string) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Record{}, false, ErrClosed
	}
	r, ok := s.records[key]
	if !ok {
		return Record{}, false, nil
	}
	return r.clone(), true, nil
}

// List returns copies of every record, sorted by key (so a tenant's links are adjacent).
func (s *Store) List() ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// GetOrCreate returns the record for rec's link, creating it from rec when missing. The key is
// derived from Tenant, RemoteEndpoint and Scope (rec.Key, if set, must agree). A created record
// starts "initializing" unless rec says otherwise, and is durable before GetOrCreate returns.
// An existing record keeps its state; only LocalEndpoint is refreshed (it is not part of the key),
// and a changed LocalEndpoint clears the push checkpoint and sets NeedsReconcile.
func (s *Store) GetOrCreate(rec Record) (Record, error) {
	key, err := LinkKey(rec.Tenant, rec.RemoteEndpoint, rec.Scope)
	if err != nil {
		return Record{}, err
	}
	if rec.Key != "" && rec.Key != key {
		return Record{}, fmt.Errorf("ledger: record key %q does not match its tenant, remote endpoint and scope (%q); leave Key empty", rec.Key, key)
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Record{}, ErrClosed
	}
	if existing, ok := s.records[key]; ok {
		if rec.LocalEndpoint != "" && existing.LocalEndpoint != rec.LocalEndpoint {
			// Another local server (--local-endpoint changed): the push checkpoint is a
			// position in the old server's feed, which the new one may accept without
			// complaint and resume from the wrong place. Push starts over, and a reconcile
			// finds what the new server lacks. The pull checkpoint is the remote's position
			// and stays.
			existing.LocalEndpoint = rec.LocalEndpoint
			existing.Push = Checkpoint{}
			existing.NeedsReconcile = true
			existing.LastActivity = s.opts.Clock.Now().UTC()
			s.stageLocked(key)
		}
		out := existing.clone()
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()

	created := rec.clone()
	created.Key = key
	created.ScopeID = ScopeID(rec.Scope)
	if created.Phase == "" {
		created.Phase = ls.Initializing
	}
	created.LastActivity = s.opts.Clock.Now().UTC()
	value, err := encodeRecord(created)
	if err != nil {
		return Record{}, err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(linksBucket).Put([]byte(key), value)
	}); err != nil {
		return Record{}, fmt.Errorf("ledger: create %q: %w", key, err)
	}
	s.mu.Lock()
	s.records[key] = &created
	out := created.clone()
	s.mu.Unlock()
	return out, nil
}

// Update changes a record in memory and stages it for the next group commit. fn must not
// block. Whatever fn does, the store keeps the key, never moves a contiguous checkpoint
// backwards within its cursor domain (use ResetCheckpoint for that), caps the dead letters and
// stamps LastActivity.
func (s *Store) Update(key string, fn func(*Record)) error {
	return s.change(key, func(cur *Record) {
		next := cur.clone()
		fn(&next)
		next.Key, next.Tenant, next.RemoteEndpoint, next.ScopeID = cur.Key, cur.Tenant, cur.RemoteEndpoint, cur.ScopeID
		keepForward(&next.Pull, cur.Pull)
		keepForward(&next.Push, cur.Push)
		if extra := len(next.DeadLetters) - s.opts.MaxDeadLetters; extra > 0 {
			next.DeadLetters = append([]DeadLetter(nil), next.DeadLetters[extra:]...)
		}
		*cur = next
	})
}

// ResetCheckpoint sets both positions of one direction to to (nil clears them), even when that
// moves the resume point backwards: repair after a gap, a new epoch, a corrupt cursor.
// Staged like Update. (Calling Checkpoint.Reset inside Update does the same.)
func (s *Store) ResetCheckpoint(key string, d ls.Dir, to *dwn.Cursor) error {
	return s.change(key, func(cur *Record) {
		cur.Checkpoint(d).Reset(to)
		cur.Checkpoint(d).reset = false
	})
}

// change runs fn on key's in-memory record under s.mu (fn must not block), stamps
// LastActivity and stages the record for the next group commit.
func (s *Store) change(key string, fn func(cur *Record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	cur, ok := s.records[key]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	fn(cur)
	cur.LastActivity = s.opts.Clock.Now().UTC()
	s.stageLocked(key)
	return nil
}

// keepForward restores the old contiguous position if an update moved it backwards within the
// same domain, unless the update called Reset. A change of domain (new stream or epoch) is
// accepted: positions of different domains are not comparable.
func keepForward(next *Checkpoint, old Checkpoint) {
	if next.reset {
		next.reset = false
		return
	}
	if old.Contiguous == nil {
		return
	}
	if next.Contiguous == nil || positionNotAfter(*next.Contiguous, *old.Contiguous) {
		next.Contiguous = cursorPtr(*old.Contiguous)
	}
}

// Remove deletes a link's record, durably, before returning.
func (s *Store) Remove(key string) error {
	return s.RemoveAll([]string{key})
}

// RemoveAll deletes the records of keys in one durable transaction, before returning (one
// fsync, however many keys).
func (s *Store) RemoveAll(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	for _, key := range keys {
		delete(s.records, key)
		delete(s.dirty, key)
	}
	s.mu.Unlock()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(linksBucket)
		for _, key := range keys {
			if err := b.Delete([]byte(key)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		if len(keys) == 1 {
			return fmt.Errorf("ledger: remove %q: %w", keys[0], err)
		}
		return fmt.Errorf("ledger: remove %d records: %w", len(keys), err)
	}
	return nil
}

// Flush returns once every update staged before the call is durable, or with the commit's
// error, or when ctx ends.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.staged
	for {
		if s.committed >= target {
			s.mu.Unlock()
			return nil
		}
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		waitC := s.committedC
		s.mu.Unlock()
		s.signal(s.urgent)
		select {
		case <-waitC:
		case <-ctx.Done():
			return fmt.Errorf("ledger flush: %w", ctx.Err())
		}
		s.mu.Lock()
		if s.committed < target && s.commitErr != nil {
			err := s.commitErr
			s.mu.Unlock()
			return err
		}
	}
}

// Close commits everything staged and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true // refuse new updates; the final commit below still writes staged ones
	s.mu.Unlock()
	close(s.done)
	<-s.exited // the loop's final commit has run
	s.mu.Lock()
	err := s.commitErr
	s.mu.Unlock()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// stageLocked marks key dirty and wakes the committer. Caller holds s.mu.
func (s *Store) stageLocked(key string) {
	s.dirty[key] = true
	s.staged++
	s.pending++
	if s.pending > s.opts.MaxStagedUpdates {
		s.signal(s.urgent)
	} else {
		s.signal(s.wake)
	}
}

func (s *Store) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
