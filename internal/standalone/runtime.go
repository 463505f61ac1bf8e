package standalone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/engineruntime"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// LedgerFile is the ledger's file name inside --state-dir (the same as the operator's).
const LedgerFile = engineruntime.LedgerFile

// DefaultListen is where `dwnsync run` serves and `dwnsync status` looks.
const DefaultListen = "127.0.0.1:9477"

// DefaultProgressEvery is how often the log reports progress of bootstrapping links.
const DefaultProgressEvery = 10 * time.Second

// Options configure `dwnsync run`.
type Options struct {
	Files    []string
	StateDir string
	Listen   string
	Defaults linkconfig.Defaults
	Logger   logr.Logger
	Clock    clock.WithTicker
	// Reload receives a value on SIGHUP: re-read the files and apply the differences.
	Reload <-chan struct{}
	// ProgressEvery is the period of the progress log lines.
	ProgressEvery time.Duration
	// Egress adds allowed and denied addresses to the DWN client's default egress policy.
	Egress wire.EgressPolicy
	// Listening, when set, is called with the bound address once the server accepts requests.
	Listening func(addr string)
	// LedgerBeforeCommit, when set, runs before each ledger commit; an error fails the commit
	// (tests simulate a full disk).
	LedgerBeforeCommit func() error
}

// Runtime is a running `dwnsync run`.
type Runtime struct {
	opts    Options
	log     logr.Logger
	engine  *syncer.Engine
	started time.Time

	mu       sync.Mutex
	links    map[string]*active // by ledger key
	statuses map[string]v1alpha1.ReplicationLinkStatus
	refused  map[string]refusal // by link name (namespace/name)

	lastProgress map[string]string // by link name: the last progress line (loop goroutine only)
}

type active struct {
	Link
	since time.Time
}

// refusal is a refused link and since when it has been refused for this reason.
type refusal struct {
	Refused
	since time.Time
	// byEngine: the engine refused the link (start made this refusal, start lifts it).
	byEngine bool
}

// Run validates the files, runs their links until ctx ends, then stops every link, flushes the
// ledger and returns. A file that cannot be read as Secrets and ReplicationLinks stops it before
// anything starts; a link that cannot run is refused alone, logged and listed in /status.
func Run(ctx context.Context, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = DefaultProgressEvery
	}
	if opts.StateDir == "" {
		return errors.New("--state-dir is required: the ledger (checkpoints) lives there")
	}
	log := opts.Logger
	files, err := Load(opts.Files, opts.Defaults)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opened, err := engineruntime.Open(engineruntime.Options{StateDir: opts.StateDir, Clock: opts.Clock, Logger: log, Registerer: reg,
		Egress: opts.Egress, LedgerBeforeCommit: opts.LedgerBeforeCommit})
	if err != nil {
		return err
	}
	defer func() {
		if err := opened.Close(); err != nil {
			log.Error(err, "closing the ledger")
		}
	}()
	eng := opened.Engine
	rt := &Runtime{opts: opts, log: log, engine: eng, started: opts.Clock.Now(),
		links: map[string]*active{}, statuses: map[string]v1alpha1.ReplicationLinkStatus{}, refused: map[string]refusal{},
		lastProgress: map[string]string{}}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", opts.Listen, err)
	}
	srv := &http.Server{Handler: rt.handler(reg), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving /healthz, /metrics and /status", "address", ln.Addr().String())

	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Start(engCtx) }()
	defer func() {
		stopEngine()
		if err := <-engDone; err != nil {
			log.Error(err, "engine stopped with an error")
		}
		log.Info("all links stopped")
	}()

	rt.apply(files)
	if opts.Listening != nil {
		opts.Listening(ln.Addr().String())
	}
	return rt.loop(ctx, engDone)
}

// loop logs progress, reloads on request and returns when ctx ends or the engine fails.
func (rt *Runtime) loop(ctx context.Context, engDone chan error) error {
	ticker := rt.opts.Clock.NewTicker(rt.opts.ProgressEvery)
	defer ticker.Stop()
	events := rt.engine.Events()
	for {
		select {
		case <-ctx.Done():
			rt.log.Info("stopping: flushing checkpoints")
			return nil
		case err := <-engDone:
			engDone <- err // for the deferred wait
			if err == nil {
				err = errors.New("engine stopped unexpectedly")
			}
			return err
		case <-rt.opts.Reload:
			rt.reload()
		case ev, ok := <-events:
			if ok {
				rt.logEvent(ev)
			} else {
				events = nil
			}
		case <-ticker.C():
			rt.logProgress()
		}
	}
}

// apply starts new links and updates changed ones; links missing from the files are removed
// (stopped, and their ledger record deleted, as `kubectl delete` would). A refused link that
// runs keeps its last good config, as in the operator, unless its Secret is gone: a link
// whose signer was removed stops signing.
func (rt *Runtime) apply(files Files) {
	byName := map[string]Link{}
	for _, l := range files.Links {
		byName[l.Config.Name] = l
	}
	rt.setRefused(files.Refused, byName)
	// What leaves goes first, so a key it frees passes to the link of the files that claims it.
	rt.mu.Lock()
	var gone []*active
	for key, a := range rt.links {
		l, listed := byName[a.Config.Name]
		r, refused := rt.refused[a.Config.Name]
		if (listed && l.Key == key) || (refused && r.Reason != linkconfig.ReasonSecretMissing) {
			continue
		}
		gone = append(gone, a)
		delete(rt.links, key)
		delete(rt.statuses, key)
	}
	rt.mu.Unlock()
	for _, a := range gone {
		if _, err := rt.engine.Release(a.Key, a.Config.Name); err != nil {
			rt.log.Error(err, "removing a link", "link", a.Config.Name)
			continue
		}
		if _, refused := rt.refused[a.Config.Name]; refused {
			rt.log.Info("link stopped: its signer Secret left the files (ledger record deleted)", "link", a.Config.Name)
		} else {
			rt.log.Info("link removed (no longer in the files; ledger record deleted)", "link", a.Config.Name)
		}
	}
	inOrder := slices.Clone(files.Links)
	sort.SliceStable(inOrder, func(i, j int) bool { return inOrder[i].order < inOrder[j].order })
	for _, l := range inOrder {
		rt.start(l, byName)
	}
}

// start applies one link to the engine unless it runs with the same configuration. "The same"
// is syncer.LinkConfig.Same, the engine's own test, so `run` and the operator agree on what a
// change is (new grants or a new key restart the link; reformatting the file does not). The
// link's name owns its key: a key another link of the files holds refuses it as a duplicate;
// one held by a link no longer in the files (named by the ledger record of an earlier run) is
// taken over.
func (rt *Runtime) start(l Link, files map[string]Link) {
	rt.mu.Lock()
	cur, exists := rt.links[l.Key]
	rt.mu.Unlock()
	exists = exists && cur.Config.Name == l.Config.Name
	if exists && cur.Config.Same(l.Config) {
		rt.unrefuse(l.Config.Name)
		return
	}
	cfg := l.Config
	cfg.Owner = l.Config.Name
	key, err := rt.engine.Apply(cfg)
	var dup *syncer.DuplicateLinkError
	if errors.As(err, &dup) {
		if holder, listed := files[dup.Owner]; listed {
			rt.refuse(l, ReasonDuplicateLink, fmt.Sprintf("%s (ReplicationLink %s): replicates the same tenant, endpoint and scope as %s; keep one of the two",
				l.Source, l.Config.Name, holder.Source))
			return
		}
		cfg.Supersedes = dup.Owner
		key, err = rt.engine.Apply(cfg)
	}
	if err != nil {
		rt.refuse(l, status.ReasonEngineRejected, fmt.Sprintf("%s: the engine refused the link: %v", l.Source, err))
		return
	}
	since := rt.opts.Clock.Now()
	if exists {
		since = cur.since
		rt.log.Info("link updated (checkpoints kept)", "link", l.Config.Name)
	} else {
		rt.log.Info("link started", "link", l.Config.Name, "tenant", l.Config.Tenant, "local", l.Config.LocalEndpoint, "remote", l.Config.RemoteEndpoint, "key", key)
	}
	l.Key = key
	rt.mu.Lock()
	rt.links[key] = &active{Link: l, since: since}
	rt.mu.Unlock()
	rt.unrefuse(l.Config.Name)
}

// unrefuse drops the engine's refusal of a link that now runs as the files say.
func (rt *Runtime) unrefuse(name string) {
	rt.mu.Lock()
	r, was := rt.refused[name]
	was = was && r.byEngine
	if was {
		delete(rt.refused, name)
	}
	rt.mu.Unlock()
	if was {
		rt.log.Info("link no longer refused", "link", name)
	}
}

// refuse lists a link of the files that the engine does not run, unless it is refused for the
// same reason already.
func (rt *Runtime) refuse(l Link, reason, message string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if old, ok := rt.refused[l.Config.Name]; ok && old.Message == message {
		return
	}
	rt.log.Info("link refused: fix it and send SIGHUP; the other links run", "link", l.Config.Name, "source", l.Source, "reason", reason, "problem", message)
	rt.refused[l.Config.Name] = refusal{Refused: Refused{Object: l.Object, Source: l.Source, Reason: reason, Message: message}, since: rt.opts.Clock.Now(), byEngine: true}
}

// setRefused replaces the refused links, logging each one that is new or refused for a new
// reason, and each one that is fixed. The engine's refusals of links still in the files stay
// until start applies them again.
func (rt *Runtime) setRefused(refused []Refused, listed map[string]Link) {
	now := rt.opts.Clock.Now()
	next := make(map[string]refusal, len(refused))
	rt.mu.Lock()
	prev := rt.refused
	rt.mu.Unlock()
	for _, r := range refused {
		old, known := prev[r.Name()]
		if known && old.Message == r.Message {
			next[r.Name()] = refusal{Refused: r, since: old.since}
			continue
		}
		next[r.Name()] = refusal{Refused: r, since: now}
		rt.log.Info("link refused: fix it and send SIGHUP; the other links run", "link", r.Name(), "reason", r.Reason, "problem", r.Message)
	}
	for name, old := range prev {
		if _, still := next[name]; still {
			continue
		}
		if _, inFiles := listed[name]; inFiles && old.byEngine {
			next[name] = old
			continue
		}
		rt.log.Info("link no longer refused", "link", name)
	}
	rt.mu.Lock()
	rt.refused = next
	rt.mu.Unlock()
}

// reload re-reads the files and applies them. Files that cannot be read leave every link as it
// is; a link refused now leaves the others alone.
func (rt *Runtime) reload() {
	files, err := Load(rt.opts.Files, rt.opts.Defaults)
	if err != nil {
		rt.log.Error(err, "reload refused: keeping the running links unchanged")
		return
	}
	rt.log.Info("reloading link files", "links", len(files.Links), "refused", len(files.Refused))
	rt.apply(files)
}

// logEvent writes the engine events a person follows to the log.
func (rt *Runtime) logEvent(ev syncer.Event) {
	switch ev.Type {
	case syncer.EventPullAdvance, syncer.EventPushAdvance:
		return // too chatty; the progress lines summarise them
	}
	kv := []any{"link", ev.Name, "event", ev.Type}
	if ev.From != "" || ev.To != "" {
		kv = append(kv, "from", ev.From, "to", ev.To)
	}
	if ev.Reason != "" {
		kv = append(kv, "reason", ev.Reason)
	}
	if ev.Message != "" {
		kv = append(kv, "message", ev.Message)
	}
	rt.log.Info("link event", kv...)
}

// logProgress writes a line for each link that is bootstrapping, repairing or copying, when
// its figures moved since the last line.
func (rt *Runtime) logProgress() {
	for _, l := range rt.List().Items {
		s := l.Status
		// A pass still copying; the engine keeps the last pass's figures after it ends, and a
		// listed message that turned out superseded leaves applied < total for good.
		copying := s.Progress != nil && s.Progress.Total > s.Progress.Applied && s.NeedsReconcile
		if s.Phase != v1alpha1.PhaseInitializing && s.Phase != v1alpha1.PhaseRepairing && !copying {
			continue
		}
		name := l.Namespace + "/" + l.Name
		line := fmt.Sprintf("%s %v %s", s.Phase, s.Progress, s.LastError)
		if rt.lastProgress[name] == line {
			continue
		}
		rt.lastProgress[name] = line
		kv := []any{"link", name, "phase", s.Phase}
		if p := s.Progress; p != nil {
			kv = append(kv, "applied", p.Applied)
			if p.Total > 0 {
				kv = append(kv, "total", p.Total, "percent", fmt.Sprintf("%.1f", 100*float64(p.Applied)/float64(p.Total)))
			}
			if eta, ok := status.ETA(p); ok {
				kv = append(kv, "rate", status.Rate(p.RatePerMinute), "eta", eta.String())
			}
		}
		if s.LastError != "" {
			kv = append(kv, "lastError", s.LastError)
		}
		rt.log.Info("progress", kv...)
	}
}

// List is the status of every link, as a ReplicationLinkList (the JSON `dwnsync status` reads).
// A refused link is listed with Ready=False, its reason and message; one that still runs its
// last good config shows that link's progress too.
func (rt *Runtime) List() *v1alpha1.ReplicationLinkList {
	now := rt.opts.Clock.Now()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	list := &v1alpha1.ReplicationLinkList{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ReplicationLinkList"}}
	listed := map[string]bool{}
	for key, a := range rt.links {
		obj := listItem(a.Object, a.since)
		prev := rt.statuses[key]
		if snap, ok := rt.engine.Snapshot(key); ok {
			prev = status.FromSnapshot(prev, snap, status.InputsFor(obj, now))
			prev.LinkKey = key
			rt.statuses[key] = prev
		}
		obj.Status = prev
		if r, ok := rt.refused[a.Config.Name]; ok {
			obj.Status = status.WithProblem(prev, obj.Generation, r.since, r.Reason, r.Message)
		}
		listed[a.Config.Name] = true
		list.Items = append(list.Items, *obj)
	}
	for name, r := range rt.refused {
		if listed[name] {
			continue
		}
		obj := listItem(r.Object, r.since)
		obj.Status = status.WithProblem(v1alpha1.ReplicationLinkStatus{}, obj.Generation, r.since, r.Reason, r.Message)
		list.Items = append(list.Items, *obj)
	}
	sortLinks(list.Items)
	return list
}

// listItem is a copy of a link of the files as `dwnsync status` shows it.
func listItem(link *v1alpha1.ReplicationLink, since time.Time) *v1alpha1.ReplicationLink {
	obj := link.DeepCopy()
	obj.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ReplicationLink"}
	obj.CreationTimestamp = metav1.NewTime(since.UTC().Truncate(time.Second))
	return obj
}
