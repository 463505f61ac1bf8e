// Package syncer is dwnsync's replication engine. One Engine runs many links; each link is a
// pull feed (remote→local) and a push feed (local→remote) with durable checkpoints in the
// ledger, plus reconcile and repair. One supervisor goroutine per link owns its state: it
// feeds a pure state machine (package linkstate) and performs the effects it returns.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/ledger"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// Dialer resolves a tenant on an endpoint. The engine uses Options.Pool unless a Dialer is
// given (tests inject failures this way).
type Dialer = dwn.Opener

// Options configure an Engine.
type Options struct {
	Ledger     *ledger.Store
	Pool       dwn.Opener // the caller's dialect.Pool
	Clock      clock.WithTicker
	Logger     logr.Logger
	Registerer prometheus.Registerer

	// Dialer overrides Pool (optional).
	Dialer Dialer
	// Timing overrides the spec's delays (optional; tests shorten them).
	Timing *ls.Timing
	// Rand returns a uniform number in [0,1) (optional; the degraded-poll jitter).
	Rand func() float64
	// Copier moves messages (optional; the zero Copier by default).
	Copier *transfer.Copier
	// EventBuffer is the size of the Events channel (default EventBufferSize).
	EventBuffer int
	// MaxConcurrentReconciles bounds the reconcile and repair passes running at once across
	// all links (default DefaultMaxConcurrentReconciles): each holds a chunk of messages and
	// two listings in memory, so many dirty links after a restart must take turns. Passes
	// against one remote endpoint hold at most half of the slots (rounded up), so a slow
	// server cannot starve the links of the others.
	MaxConcurrentReconciles int
}

// DefaultMaxConcurrentReconciles is Options.MaxConcurrentReconciles when unset.
const DefaultMaxConcurrentReconciles = 4

// Engine runs links. It is not a manager runnable itself: the operator runs it from its own
// leader-elected runnable (internal/operator), dwnsync run directly.
type Engine struct {
	opts   Options
	clock  clock.WithTicker
	log    logr.Logger
	timing ls.Timing
	dialer Dialer
	copier *transfer.Copier
	bus    *eventBus
	met    *metrics
	// reconcileSlots are the MaxConcurrentReconciles slots of the reconcile and repair
	// passes, shared fairly among remote endpoints.
	reconcileSlots *reconcileSlots

	mu      sync.Mutex
	links   map[string]*link
	ctx     context.Context // set by Start
	started chan struct{}
	stopped bool
	groups  map[string]*pollGroup

	// restarting holds, per key, a channel closed once the Apply restarting it is done (e.mu).
	restarting map[string]chan struct{}
	// passTimeout is ReconcilePassTimeout (tests shorten it).
	passTimeout time.Duration
}

// New checks the options and returns an engine; links run once Start is called.
func New(opts Options) (*Engine, error) {
	if opts.Ledger == nil {
		return nil, errors.New("syncer: Options.Ledger is nil; open a ledger.Store first")
	}
	if opts.Pool == nil && opts.Dialer == nil {
		return nil, errors.New("syncer: Options.Pool is nil; pass a dialect.Pool")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = EventBufferSize
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	e := &Engine{
		opts:    opts,
		clock:   opts.Clock,
		log:     opts.Logger,
		timing:  ls.DefaultTiming(),
		dialer:  opts.Dialer,
		copier:  opts.Copier,
		bus:     newEventBus(opts.EventBuffer),
		links:   map[string]*link{},
		started: make(chan struct{}),
		groups:  map[string]*pollGroup{},

		reconcileSlots: newReconcileSlots(opts.MaxConcurrentReconciles),
		restarting:     map[string]chan struct{}{},
		passTimeout:    ReconcilePassTimeout,
	}
	if opts.Timing != nil {
		e.timing = *opts.Timing
	}
	if e.dialer == nil {
		e.dialer = opts.Pool
	}
	if e.copier == nil {
		e.copier = &transfer.Copier{Logger: opts.Logger}
	}
	e.met = newMetrics(opts.Registerer, e)
	return e, nil
}

// Start runs every applied link until ctx ends, then stops them and flushes the ledger.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.ctx != nil {
		e.mu.Unlock()
		return errors.New("syncer: engine already started")
	}
	e.ctx = ctx
	for key, l := range e.links {
		if e.restarting[key] == nil { // a restarting link is replaced and launched by its Apply
			e.launchLocked(l)
		}
	}
	close(e.started)
	e.mu.Unlock()
	go e.watchLedger(ctx)

	<-ctx.Done()

	e.mu.Lock()
	e.stopped = true
	var all []*link
	for _, l := range e.links {
		all = append(all, l)
	}
	e.mu.Unlock()
	return e.stopAll(all)
}

// stopAll stops every link and flushes the ledger, all within one StopTimeout on the engine's
// clock: supervisors still running then are left behind (their context is cancelled, so
// they write nothing that matters), and a flush cut short is finished by the ledger's Close.
func (e *Engine) stopAll(all []*link) error {
	for _, l := range all {
		l.stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deadline := e.clock.NewTimer(StopTimeout)
	defer deadline.Stop()
	go func() {
		select {
		case <-deadline.C():
			cancel()
		case <-ctx.Done():
		}
	}()
	running := 0
	for _, l := range all {
		select {
		case <-l.done:
		case <-ctx.Done():
			running++
		}
	}
	if running > 0 {
		e.log.Info("link supervisors did not stop in time", "timeout", StopTimeout, "running", running)
	}
	err := e.opts.Ledger.Flush(ctx)
	switch {
	case err == nil || errors.Is(err, ledger.ErrClosed):
		return nil
	case ctx.Err() != nil:
		e.log.Info("the stop timeout ended the final ledger flush; closing the ledger commits the rest", "timeout", StopTimeout)
		return nil
	default:
		return fmt.Errorf("syncer: flushing the ledger on stop: %w", err)
	}
}

// WaitReady returns once Start has been called (or ctx ends).
func (e *Engine) WaitReady(ctx context.Context) error {
	select {
	case <-e.started:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Events reports link transitions. The channel is buffered; the engine never blocks on it
// (when full, the oldest event is dropped and counted in dwnsync_events_dropped_total).
func (e *Engine) Events() <-chan Event { return e.bus.ch }

// EventsLost receives after Events dropped events because nobody read it in time: what they
// said is gone, so a consumer that acts on events should look at every link's Snapshot again.
// Signals coalesce: one is pending at most, and it covers every drop before it is received.
func (e *Engine) EventsLost() <-chan struct{} { return e.bus.lost }

// Apply adds a link or updates it. An unchanged config is a no-op; a changed one restarts the
// link, keeping its checkpoints. It returns the link's ledger key. A key held by another owner
// (LinkConfig.Owner, kept in the ledger record) is refused with a *DuplicateLinkError, unless
// cfg.Supersedes names that owner.
func (e *Engine) Apply(cfg LinkConfig) (string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	key, err := ledger.LinkKey(cfg.Tenant, cfg.RemoteEndpoint, cfg.Scope)
	if err != nil {
		return "", fmt.Errorf("link %q: %w", cfg.Name, err)
	}
	if cfg.Name == "" {
		cfg.Name = key
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.restarting[key] != nil { // another Apply of this key is restarting it: go after it
		wait := e.restarting[key]
		e.mu.Unlock()
		<-wait
		e.mu.Lock()
	}
	if e.stopped {
		return "", errors.New("syncer: engine stopped")
	}
	if err := e.claimLocked(key, cfg); err != nil {
		return "", err
	}
	old := e.links[key]
	if old != nil {
		if !baseurl.Same(old.cfg.LocalEndpoint, cfg.LocalEndpoint) && old.cfg.Owner != cfg.Owner {
			// A hand-over; the running link may be another namespace's: name nothing of it.
			return "", fmt.Errorf("link %q: another link still runs ledger key %s with a different local endpoint, and the engine cannot hand it over "+
				"to this link; this link starts once that one stops", cfg.Name, key)
		}
		if !baseurl.Same(old.cfg.LocalEndpoint, cfg.LocalEndpoint) {
			return "", fmt.Errorf("link %q: tenant %s, endpoint %s and this scope are already replicated by link %q with local endpoint %s; "+
				"one tenant/remote/scope can have only one local endpoint (change the scope or remove the other link)",
				cfg.Name, cfg.Tenant, cfg.RemoteEndpoint, old.cfg.Name, old.cfg.LocalEndpoint)
		}
		if old.cfg.Same(cfg) {
			return key, nil
		}
	}
	if _, err := e.opts.Ledger.GetOrCreate(ledger.Record{Tenant: cfg.Tenant, LocalEndpoint: cfg.LocalEndpoint,
		RemoteEndpoint: cfg.RemoteEndpoint, Scope: cfg.Scope}); err != nil {
		return "", fmt.Errorf("link %q: ledger: %w", cfg.Name, err)
	}
	if err := e.recordOwner(key, cfg); err != nil {
		return "", fmt.Errorf("link %q: record its owner: %w", cfg.Name, err)
	}
	if old != nil {
		// Restart: the old supervisor's context is cancelled and it is waited for, so nothing it
		// started mutates state after the new one runs (docs/engine-behaviour.md#e15). The wait
		// (closing feeds may wait seconds for a slow server) happens without e.mu, so other links'
		// snapshots and Applies go on; the old link stays visible meanwhile.
		done := make(chan struct{})
		e.restarting[key] = done
		e.leavePollGroupLocked(old)
		e.mu.Unlock()
		old.stop()
		if old.launched() {
			<-old.done
		}
		e.mu.Lock()
		delete(e.restarting, key)
		close(done)
		if e.stopped {
			return "", errors.New("syncer: engine stopped")
		}
		if e.links[key] != old {
			return "", fmt.Errorf("link %q was removed while it restarted", cfg.Name)
		}
	}
	l := newLink(e, key, cfg)
	e.links[key] = l
	if e.ctx != nil && !e.stopped {
		e.launchLocked(l)
	}
	return key, nil
}

func (e *Engine) launchLocked(l *link) {
	l.launch(e.ctx)
	if l.cfg.Mode == ls.ModePoll {
		e.joinPollGroupLocked(l)
	}
}

// Remove stops a link and deletes its ledger record. Removing an unknown key deletes any
// stale record and is not an error.
func (e *Engine) Remove(key string) error {
	e.mu.Lock()
	l := e.links[key]
	delete(e.links, key)
	if l != nil {
		e.leavePollGroupLocked(l)
	}
	e.mu.Unlock()
	if l != nil {
		l.stop()
		if l.launched() {
			<-l.done
		}
		e.met.forget(l.cfg.Name)
	}
	if err := e.opts.Ledger.Remove(key); err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return fmt.Errorf("syncer: removing ledger record %s: %w", key, err)
	}
	return nil
}

// Snapshot returns the current view of one link.
func (e *Engine) Snapshot(key string) (LinkStatus, bool) {
	e.mu.Lock()
	l := e.links[key]
	e.mu.Unlock()
	if l == nil {
		return LinkStatus{}, false
	}
	return e.withLedgerHealth(l.snapshot()), true
}

// Snapshots returns every link's view, sorted by key.
func (e *Engine) Snapshots() []LinkStatus {
	e.mu.Lock()
	var ls []*link
	for _, l := range e.links {
		ls = append(ls, l)
	}
	e.mu.Unlock()
	out := make([]LinkStatus, 0, len(ls))
	for _, l := range ls {
		out = append(out, e.withLedgerHealth(l.snapshot()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (e *Engine) publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.clock.Now()
	}
	e.bus.publish(ev)
}
