// Package operator assembles `dwnsync operator`: the controller manager, the ReplicationLink
// reconciler and the replication engine (which runs only on the elected leader).
package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// Options are the operator's flags.
type Options struct {
	LocalEndpoint           string
	LocalDialect            dwn.Dialect
	StateDir                string
	MetricsBindAddress      string // "0" disables
	HealthProbeBindAddress  string // "0" disables
	LeaderElect             bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	GracefulShutdownTimeout time.Duration
	MaxConcurrentReconciles int
	MinCounterInterval      time.Duration
	// WatchNamespaces limits the operator to these namespaces (empty: all).
	WatchNamespaces []string
	// HTTPClient, when set, carries every request to the DWN servers (tests count them).
	HTTPClient *http.Client
	// Egress adds allowed and denied addresses to the DWN client's default egress policy
	// (--egress-allow, --egress-deny).
	Egress wire.EgressPolicy
	// SkipNameValidation lets one process start several managers (tests restart the operator).
	SkipNameValidation bool
	Logger             logr.Logger
	// Clock drives the engine and the status coalescing (tests inject a fake).
	Clock clock.WithTicker
	// LedgerBeforeCommit, when set, runs before each ledger commit; an error fails the commit
	// (tests simulate a full disk).
	LedgerBeforeCommit func() error
	// Sharding, when enabled, makes every replica a shard (docs/decisions.md D23).
	Sharding ShardingOptions
}

// ShardingOptions: every replica runs the links labelled for it, while it holds its shard
// Lease; the elected replica also assigns links to shards.
type ShardingOptions struct {
	Enabled bool
	// ShardName is this replica's shard (the pod name).
	ShardName string
	// LeaseNamespace holds the shard Leases (the pod's namespace).
	LeaseNamespace string
	// Ring names the set of shards (one operator installation); default "dwnsync".
	Ring   string
	Timing sharding.Timing
	// MaxDrains bounds the links being drained at once (default DefaultMaxDrains).
	MaxDrains int
}

// DefaultMaxDrains: a joining shard's share moves 50 links at a time.
const DefaultMaxDrains = 50

func (s *ShardingOptions) validate() error {
	if !s.Enabled {
		return nil
	}
	if s.Ring == "" {
		s.Ring = "dwnsync"
	}
	if s.Timing == (sharding.Timing{}) {
		s.Timing = sharding.DefaultTiming
	}
	if s.MaxDrains == 0 {
		s.MaxDrains = DefaultMaxDrains
	}
	switch {
	case s.MaxDrains < 0:
		return fmt.Errorf("--shard-max-drains %d: must be positive (the links drained at once when shards join; default %d)", s.MaxDrains, DefaultMaxDrains)
	case s.ShardName == "":
		return errors.New("--sharding needs --shard-name (the pod name; the chart passes $POD_NAME)")
	case s.LeaseNamespace == "":
		return errors.New("--sharding needs --shard-lease-namespace (the pod's namespace; the chart passes $POD_NAMESPACE)")
	}
	return s.Timing.Validate()
}

// Operator is a configured manager, ready to Start.
type Operator struct {
	Manager    manager.Manager
	Reconciler *controllers.ReplicationLinkReconciler
	engine     *leaderEngine
}

// Scheme knows core types and ReplicationLinks.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// New builds the operator against the cluster at cfg.
func New(cfg *rest.Config, opts Options) (*Operator, error) {
	if opts.StateDir == "" {
		return nil, errors.New("--state-dir is required: the ledger (checkpoints) lives there; in the chart it is a PVC")
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir %s: %w", opts.StateDir, err)
	}
	if err := opts.Egress.Validate(); err != nil {
		return nil, fmt.Errorf("--egress-allow/--egress-deny: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if err := opts.Sharding.validate(); err != nil {
		return nil, err
	}
	cacheOpts := controllers.CacheOptions(opts.WatchNamespaces)
	if opts.Sharding.Enabled {
		cacheOpts = controllers.ShardCacheOptions(cacheOpts, opts.Sharding.ShardName)
	}
	if opts.LeaderElectionID == "" {
		opts.LeaderElectionID = "dwnsync-operator.dwnsync.io"
	}
	if opts.GracefulShutdownTimeout == 0 {
		opts.GracefulShutdownTimeout = 30 * time.Second
	}
	log := opts.Logger
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Cache:                         cacheOpts,
		Controller:                    config.Controller{SkipNameValidation: &opts.SkipNameValidation},
		Scheme:                        Scheme(),
		Logger:                        log,
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress:        opts.HealthProbeBindAddress,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionID:              opts.LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &opts.GracefulShutdownTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	eng := newLeaderEngine(opts.StateDir, opts.Clock, log.WithName("runtime"), metrics.Registry)
	eng.httpClient = opts.HTTPClient
	eng.beforeCommit = opts.LedgerBeforeCommit
	eng.egress = opts.Egress
	eng.everyReplica = opts.Sharding.Enabled
	if err := mgr.Add(eng); err != nil {
		return nil, err
	}
	rec := &controllers.ReplicationLinkReconciler{
		Client:                  mgr.GetClient(),
		Engine:                  eng,
		Recorder:                mgr.GetEventRecorder("dwnsync-operator"),
		Defaults:                linkconfig.Defaults{LocalEndpoint: opts.LocalEndpoint, LocalDialect: opts.LocalDialect},
		Clock:                   opts.Clock,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		MinCounterInterval:      opts.MinCounterInterval,
	}
	if opts.Sharding.Enabled {
		if err := addSharding(mgr, cfg, rec, opts); err != nil {
			return nil, err
		}
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	// Ready means: this replica leads and runs the links. A standby reports not ready, so a
	// Service (or a person) sees which pod does the work.
	if err := mgr.AddReadyzCheck("engine", func(*http.Request) error {
		if !eng.Running() {
			return errors.New("standing by: not the elected leader, or the engine is starting")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ledger", eng.checkpointsSaved); err != nil {
		return nil, err
	}
	if rec.Shard != nil {
		if err := mgr.AddReadyzCheck("shard", shardHoldsLease(rec.Shard)); err != nil {
			return nil, err
		}
	}
	return &Operator{Manager: mgr, Reconciler: rec, engine: eng}, nil
}

// Start runs until ctx ends; on return the links are stopped and the ledger flushed and closed.
func (o *Operator) Start(ctx context.Context) error {
	err := o.Manager.Start(ctx)
	if o.engine.started.Load() {
		<-o.engine.stopped // the manager's graceful timeout may have returned first
	}
	return err
}

// Engine is the running engine's LinkEngine view (for tests).
func (o *Operator) Engine() controllers.LinkEngine { return o.engine }

// LedgerRecord is the running engine's ledger record of key (for tests and diagnostics).
func (o *Operator) LedgerRecord(key string) (ledger.Record, bool, error) { return o.engine.Record(key) }
