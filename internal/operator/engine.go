package operator

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
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
	egress     dwn.EgressPolicy

	ready   chan struct{} // closed when engine is set
	failed  chan struct{} // closed when the engine could not start
	once    sync.Once
	mu      sync.Mutex
	engine  *syncer.Engine
	stopped chan struct{} // closed when Start returned (ledger flushed and closed)
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
	store, err := ledger.Open(filepath.Join(l.stateDir, LedgerFile), ledger.Options{Logger: l.logger.WithName("ledger")})
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
	l.engine = eng
	l.mu.Unlock()
	close(l.ready)
	l.logger.Info("replication engine started", "stateDir", l.stateDir)
	return eng.Start(ctx)
}

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

func (l *leaderEngine) get() *syncer.Engine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.engine
}

func (l *leaderEngine) Apply(cfg syncer.LinkConfig) (string, error) {
	if e := l.get(); e != nil {
		return e.Apply(cfg)
	}
	return "", errNotRunning
}

func (l *leaderEngine) Remove(key string) error {
	if e := l.get(); e != nil {
		return e.Remove(key)
	}
	return errNotRunning
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
