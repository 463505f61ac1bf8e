package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/engineruntime"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LedgerFile is the ledger's file name inside --state-dir.
const LedgerFile = engineruntime.LedgerFile

// errNotRunning is returned by the engine methods before this replica leads.
var errNotRunning = errors.New("replication engine not running on this replica (not the elected leader yet)")

// leaderEngine opens the ledger and runs the engine only while this replica is the elected
// leader, so a standby never holds the ledger's file lock. It implements controllers.LinkEngine
// by delegating to the engine once it runs.
type leaderEngine struct {
	stateDir   string
	clock      clock.WithTicker
	logger     logr.Logger
	registerer prometheus.Registerer
	httpClient *http.Client
	// beforeCommit is Options.LedgerBeforeCommit (fault injection in tests).
	beforeCommit func() error
	egress       wire.EgressPolicy
	// everyReplica runs the engine on every replica (sharding), not only on the leader.
	everyReplica bool

	ready  chan struct{} // closed when engine is set
	failed chan struct{} // closed when the engine could not start
	once   sync.Once
	mu     sync.Mutex
	engine *syncer.Engine
	store  *ledger.Store
	// stopped is closed when Start returned (ledger flushed and closed).
	stopped chan struct{}
	started atomic.Bool
}

func newLeaderEngine(stateDir string, clk clock.WithTicker, logger logr.Logger, reg prometheus.Registerer) *leaderEngine {
	return &leaderEngine{stateDir: stateDir, clock: clk, logger: logger, registerer: reg,
		ready: make(chan struct{}), failed: make(chan struct{}), stopped: make(chan struct{})}
}

// Start is a leader-election runnable: open the ledger, run the engine until ctx ends, then
// stop every link, flush and close the ledger.
func (l *leaderEngine) Start(ctx context.Context) (err error) {
	l.started.Store(true)
	defer close(l.stopped)
	rt, err := engineruntime.Open(engineruntime.Options{StateDir: l.stateDir, Clock: l.clock, Logger: l.logger, Registerer: l.registerer,
		HTTPClient: l.httpClient, Egress: l.egress, LedgerBeforeCommit: l.beforeCommit})
	if err != nil {
		close(l.failed)
		return err
	}
	defer func() {
		if cerr := rt.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	l.mu.Lock()
	l.engine, l.store = rt.Engine, rt.Ledger
	l.mu.Unlock()
	close(l.ready)
	l.logger.Info("replication engine started", "stateDir", l.stateDir)
	return rt.Engine.Start(ctx)
}

// NeedLeaderElection: the engine runs on the leader only, unless every replica is a shard.
func (l *leaderEngine) NeedLeaderElection() bool { return !l.everyReplica }

// WaitReady blocks until the engine runs (the reconciler waits on it instead of failing).
func (l *leaderEngine) WaitReady(ctx context.Context) error {
	select {
	case <-l.ready:
		return nil
	case <-l.failed:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Running reports whether the engine runs (the readiness check).
func (l *leaderEngine) Running() bool {
	select {
	case <-l.ready:
		select {
		case <-l.stopped:
			return false
		default:
			return true
		}
	default:
		return false
	}
}

// checkpointsSaved is a readiness check: it fails while the running engine's ledger cannot
// save checkpoints (a full or read-only volume), so the pod leaves its Service and the probe
// says why. A standby has no ledger open; the "engine" check covers it.
func (l *leaderEngine) checkpointsSaved(*http.Request) error {
	e := l.get()
	if e == nil || !l.Running() {
		return nil
	}
	if h := e.LedgerHealth(); h.Failing {
		return fmt.Errorf("the ledger in %s cannot save checkpoints since %s: %s", l.stateDir, h.Since.UTC().Format(time.RFC3339), h.LastError)
	}
	return nil
}

func (l *leaderEngine) get() *syncer.Engine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.engine
}

func (l *leaderEngine) ledgerStore() *ledger.Store {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.store
}

// Apply runs the link on the engine, which keeps cfg.Owner in the key's ledger record and
// refuses another owner's claim with a *syncer.DuplicateLinkError.
func (l *leaderEngine) Apply(cfg syncer.LinkConfig) (string, error) {
	e := l.get()
	if e == nil {
		return "", errNotRunning
	}
	return e.Apply(cfg)
}

// Release stops the link and deletes its record, unless the record names another owner.
func (l *leaderEngine) Release(key, owner string) (bool, error) {
	e := l.get()
	if e == nil {
		return false, errNotRunning
	}
	return e.Release(key, owner)
}

// DropIdleRecords deletes the ledger records of the keys no link runs (a shard's new tenure).
func (l *leaderEngine) DropIdleRecords() (int, error) {
	e := l.get()
	if e == nil {
		return 0, errNotRunning
	}
	return e.DropIdleRecords()
}

// Record is the ledger record of key (for tests and diagnostics).
func (l *leaderEngine) Record(key string) (ledger.Record, bool, error) {
	store := l.ledgerStore()
	if store == nil {
		return ledger.Record{}, false, errNotRunning
	}
	return store.Get(key)
}

func (l *leaderEngine) Snapshots() []syncer.LinkStatus {
	if e := l.get(); e != nil {
		return e.Snapshots()
	}
	return nil
}

func (l *leaderEngine) Snapshot(key string) (syncer.LinkStatus, bool) {
	if e := l.get(); e != nil {
		return e.Snapshot(key)
	}
	return syncer.LinkStatus{}, false
}

// EventsLost waits for the engine like Events and returns its lost-events signal; nil when the
// engine failed to start.
func (l *leaderEngine) EventsLost() <-chan struct{} {
	select {
	case <-l.ready:
		return l.get().EventsLost()
	case <-l.failed:
		return nil
	}
}

// Events waits for the engine (the pump runs on the leader too) and returns its channel; nil
// when the engine failed to start.
func (l *leaderEngine) Events() <-chan syncer.Event {
	select {
	case <-l.ready:
		return l.get().Events()
	case <-l.failed:
		return nil
	}
}

// The dead-letter API of the engine (controllers.DeadLetterEngine).
var _ controllers.DeadLetterEngine = (*leaderEngine)(nil)

func (l *leaderEngine) DeadLetters(key string) ([]ledger.DeadLetter, error) {
	if e := l.get(); e != nil {
		return e.DeadLetters(key)
	}
	return nil, errNotRunning
}

func (l *leaderEngine) RetryDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error) {
	if e := l.get(); e != nil {
		return e.RetryDeadLetters(key, cids)
	}
	return nil, errNotRunning
}

func (l *leaderEngine) ClearDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error) {
	if e := l.get(); e != nil {
		return e.ClearDeadLetters(key, cids)
	}
	return nil, errNotRunning
}
