package operator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LedgerFile is the ledger's file name inside --state-dir.
const LedgerFile = "ledger.db"

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
	egress       dwn.EgressPolicy
	// everyReplica runs the engine on every replica (sharding), not only on the leader.
	everyReplica bool

	ready  chan struct{} // closed when engine is set
	failed chan struct{} // closed when the engine could not start
	once   sync.Once
	mu     sync.Mutex
	engine *syncer.Engine
	store  *ledger.Store
	// keyLocks order Apply and Remove of one ledger key (striped by key), so a Remove never
	// reads the owner a concurrent Apply is about to replace.
	keyLocks [64]sync.Mutex
	stopped  chan struct{} // closed when Start returned (ledger flushed and closed)
	started  atomic.Bool
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
	store, err := ledger.Open(filepath.Join(l.stateDir, LedgerFile), ledger.Options{Logger: l.logger.WithName("ledger"), BeforeCommit: l.beforeCommit})
	if err != nil {
		close(l.failed)
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = cerr
		}
		l.logger.Info("ledger flushed and closed", "path", filepath.Join(l.stateDir, LedgerFile))
	}()
	pool := dwn.NewPool(dwn.Options{Clock: l.clock, Logger: l.logger.WithName("dwn"), HTTPClient: l.httpClient, Egress: l.egress})
	defer pool.Close()
	eng, err := syncer.New(syncer.Options{Ledger: store, Pool: pool, Clock: l.clock, Logger: l.logger.WithName("engine"), Registerer: l.registerer})
	if err != nil {
		close(l.failed)
		return err
	}
	l.mu.Lock()
	l.engine, l.store = eng, store
	l.mu.Unlock()
	close(l.ready)
	l.logger.Info("replication engine started", "stateDir", l.stateDir)
	return eng.Start(ctx)
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

// lockKey locks key's stripe and returns its unlock.
func (l *leaderEngine) lockKey(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &l.keyLocks[h.Sum32()%uint32(len(l.keyLocks))]
	m.Lock()
	return m.Unlock
}

// Apply runs the link and records owner in its ledger record (durable with the next commit).
func (l *leaderEngine) Apply(cfg syncer.LinkConfig, owner types.UID) (string, error) {
	e, store := l.get(), l.ledgerStore()
	if e == nil {
		return "", errNotRunning
	}
	key, err := ledger.LinkKey(cfg.Tenant, cfg.RemoteEndpoint, cfg.Scope)
	if err != nil {
		return "", err
	}
	defer l.lockKey(key)()
	if _, err := e.Apply(cfg); err != nil {
		return "", l.takeoverRefused(key, owner, err)
	}
	rec, _, err := store.Get(key)
	if err != nil || rec.OwnerUID == string(owner) {
		return key, err
	}
	if err := store.Update(key, func(r *ledger.Record) { r.OwnerUID = string(owner) }); err != nil {
		return "", fmt.Errorf("record the owner of %s: %w", key, err)
	}
	return key, nil
}

// takeoverRefused is the engine's refusal of owner's Apply, without the words that name the
// link running key when the record names another owner: that link may be in another namespace
// (the engine refuses a different local endpoint by naming the running link and its endpoint).
func (l *leaderEngine) takeoverRefused(key string, owner types.UID, err error) error {
	rec, found, gerr := l.ledgerStore().Get(key)
	if gerr != nil || !found || rec.OwnerUID == "" || rec.OwnerUID == string(owner) {
		return err
	}
	return fmt.Errorf("another ReplicationLink still runs ledger key %s, and the engine cannot hand it over to this link yet "+
		"(a different local endpoint?); this link starts when that one stops, which it does once it is refused as the younger link", key)
}

// Remove stops the link and deletes its record, unless the record names another owner.
func (l *leaderEngine) Remove(key string, owner types.UID) (bool, error) {
	e, store := l.get(), l.ledgerStore()
	if e == nil {
		return false, errNotRunning
	}
	defer l.lockKey(key)()
	rec, found, err := store.Get(key)
	if err != nil {
		return false, err
	}
	if found && rec.OwnerUID != "" && rec.OwnerUID != string(owner) {
		return false, nil
	}
	return true, e.Remove(key)
}

// Owner is the owner recorded in key's ledger record ("" when none, or not running).
func (l *leaderEngine) Owner(key string) types.UID {
	store := l.ledgerStore()
	if store == nil {
		return ""
	}
	rec, _, _ := store.Get(key)
	return types.UID(rec.OwnerUID)
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
