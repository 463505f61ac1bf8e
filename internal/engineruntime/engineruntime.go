// Package engineruntime opens what both runtimes (the operator and `dwnsync run`) need to
// replicate: the ledger in --state-dir (verified, a damaged file refused), the DWN client pool
// and the engine over them. The callers decide when the engine starts and what feeds it.
package engineruntime

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LedgerFile is the ledger's file name inside --state-dir.
const LedgerFile = "ledger.db"

// Options say where the ledger lives and how the engine and its clients run.
type Options struct {
	StateDir   string
	Clock      clock.WithTicker // default: the real clock
	Logger     logr.Logger
	Registerer prometheus.Registerer
	// HTTPClient, when set, carries every request to the DWN servers (tests count them).
	HTTPClient *http.Client
	// Egress adds allowed and denied addresses to the DWN client's default egress policy.
	Egress wire.EgressPolicy
	// LedgerBeforeCommit, when set, runs before each ledger commit; an error fails the commit
	// (tests simulate a full disk).
	LedgerBeforeCommit func() error
}

// Runtime is an open ledger, its client pool and an engine that has not started yet.
type Runtime struct {
	Engine *syncer.Engine
	Ledger *ledger.Store
	pool   *dialect.Pool
	path   string
	log    logr.Logger
}

// Open creates the state directory if needed, opens the ledger and builds the pool and the
// engine. Start the engine with Engine.Start; Close after it returned.
func Open(opts Options) (*Runtime, error) {
	if opts.StateDir == "" {
		return nil, errors.New("--state-dir is required: the ledger (checkpoints) lives there")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir %s: %w", opts.StateDir, err)
	}
	path := filepath.Join(opts.StateDir, LedgerFile)
	store, err := ledger.Open(path, ledger.Options{Logger: opts.Logger.WithName("ledger"), BeforeCommit: opts.LedgerBeforeCommit})
	if err != nil {
		return nil, err
	}
	pool := newPool(opts)
	eng, err := syncer.New(syncer.Options{Ledger: store, Pool: pool, Clock: opts.Clock, Logger: opts.Logger.WithName("engine"), Registerer: opts.Registerer})
	if err != nil {
		pool.Close()
		_ = store.Close()
		return nil, err
	}
	return &Runtime{Engine: eng, Ledger: store, pool: pool, path: path, log: opts.Logger}, nil
}

// newPool is the one place the DWN client pool is built.
func newPool(opts Options) *dialect.Pool {
	return dialect.NewPool(dialect.Options{Clock: opts.Clock, Logger: opts.Logger.WithName("dwn"), HTTPClient: opts.HTTPClient, Egress: opts.Egress,
		OnRequest: syncer.EndpointRequestCounter(opts.Registerer)})
}

// Close closes the pool, then flushes and closes the ledger. Call it once the engine's Start
// returned (or when it never started).
func (r *Runtime) Close() error {
	r.pool.Close()
	if err := r.Ledger.Close(); err != nil {
		return fmt.Errorf("closing the ledger %s: %w", r.path, err)
	}
	r.log.Info("ledger flushed and closed", "path", r.path)
	return nil
}
