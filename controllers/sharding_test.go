package controllers_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/sharding"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// runningTrace records, per ledger key, which shards run it, and every instant at which two
// did: the property sharding must never break. One mutex orders all starts and stops.
type runningTrace struct {
	mu         sync.Mutex
	on         map[string]map[string]bool // key → shards running it
	violations []string
	starts     map[string]int // key → starts
}

func newRunningTrace() *runningTrace {
	return &runningTrace{on: map[string]map[string]bool{}, starts: map[string]int{}}
}

// start is recorded before the engine starts the link, stop after it stopped: the recorded
// intervals contain the real ones, so an overlap of the real ones is always seen.
func (tr *runningTrace) start(key, shard string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.on[key] == nil {
		tr.on[key] = map[string]bool{}
	}
	for other := range tr.on[key] {
		if other != shard {
			tr.violations = append(tr.violations, fmt.Sprintf("%s started on %s while running on %s", key, shard, other))
		}
	}
	if !tr.on[key][shard] {
		tr.starts[key]++
	}
	tr.on[key][shard] = true
}

func (tr *runningTrace) stop(key, shard string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.on[key], shard)
}

// runner is the one shard running key ("" when none, "a+b" when several).
func (tr *runningTrace) runner(key string) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var on []string
	for s := range tr.on[key] {
		on = append(on, s)
	}
	sort.Strings(on)
	return strings.Join(on, "+")
}

func (tr *runningTrace) startsOf(key string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.starts[key]
}

func (tr *runningTrace) check(t testing.TB) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.violations) > 0 {
		t.Fatalf("links ran on two shards at once:\n%s", strings.Join(tr.violations, "\n"))
	}
}

// tracedEngine is one shard's fake engine, reporting its starts and stops to the trace.
type tracedEngine struct {
	*fakeEngine
	shard string
	trace *runningTrace
	gate  atomic.Pointer[removeGate]
}

// removeGate holds a shard's Releases until released, reporting each held key: the test looks
// at the link while its old shard is still stopping it.
type removeGate struct {
	held    chan string
	release chan struct{}
}

func (e *tracedEngine) Apply(cfg syncer.LinkConfig) (string, error) {
	key, keyErr := ledger.LinkKey(cfg.Tenant, cfg.RemoteEndpoint, cfg.Scope)
	_, running := e.Snapshot(key)
	if keyErr == nil && !running {
		e.trace.start(key, e.shard)
	}
	got, err := e.fakeEngine.Apply(cfg)
	if err != nil && keyErr == nil && !running {
		e.trace.stop(key, e.shard) // refused: it never ran
	}
	return got, err
}

func (e *tracedEngine) Release(key, owner string) (bool, error) {
	if g := e.gate.Load(); g != nil {
		select {
		case g.held <- key:
		default:
		}
		<-g.release
	}
	removed, err := e.fakeEngine.Release(key, owner)
	if removed {
		e.trace.stop(key, e.shard)
	}
	return removed, err
}

// cutTransport cuts a shard off the API server while cut is set: requests fail, and so do the
// reads of responses already streaming (watches). The process lives on: a network partition.
type cutTransport struct {
	next http.RoundTripper
	cut  *atomic.Bool
}

var errPartitioned = errors.New("partitioned from the API server (test)")

func (c cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errPartitioned
	}
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		resp.Body = cutBody{ReadCloser: resp.Body, cut: c.cut}
	}
	return resp, err
}

type cutBody struct {
	io.ReadCloser
	cut *atomic.Bool
}

func (b cutBody) Read(p []byte) (int, error) {
	if b.cut.Load() {
		return 0, errPartitioned
	}
	return b.ReadCloser.Read(p)
}

// ring is a sharder and its shards in one namespace, on one fake clock.
type ring struct {
	t       testing.TB
	ns      string
	clock   *clocktesting.FakeClock
	trace   *runningTrace
	sharder *controllers.Sharder
	shards  map[string]*shardUnderTest
}

type shardUnderTest struct {
	shard  *controllers.Shard
	engine *tracedEngine
	cut    atomic.Bool
	stop   func()
}

func newRing(t *testing.T) *ring { return newRingWith(t, nil) }

// newRingWith is newRing with the sharder changed by tune before it starts.
func newRingWith(t testing.TB, tune func(*controllers.Sharder)) *ring {
	r := buildRing(t, tune)
	r.startSharder()
	return r
}

// buildRing is a ring whose sharder has not started yet.
func buildRing(t testing.TB, tune func(*controllers.Sharder)) *ring {
	ns := newNamespace(t)
	r := &ring{t: t, ns: ns, clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		trace: newRunningTrace(), shards: map[string]*shardUnderTest{}}
	c, err := controllers.NewSharderCache(cfg, operator.Scheme(), []string{ns}, ns, ns)
	if err != nil {
		t.Fatal(err)
	}
	r.sharder = &controllers.Sharder{Namespace: ns, Ring: ns, Timing: sharding.DefaultTiming, Clock: r.clock, Client: k8sClient, Cache: c}
	if tune != nil {
		tune(r.sharder)
	}
	return r
}

func (r *ring) startSharder() {
	runUntilStopped(r.t, "sharder", 30*time.Second, r.sharder.Start)
}

// join starts a shard: a manager whose cache holds only the links labelled for it.
func (r *ring) join(name string) *shardUnderTest {
	t := r.t
	s := &shardUnderTest{engine: &tracedEngine{fakeEngine: newFakeEngine(), shard: name, trace: r.trace}}
	shardCfg := rest.CopyConfig(cfg)
	shardCfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return cutTransport{next: rt, cut: &s.cut} }
	mgr, err := ctrl.NewManager(shardCfg, ctrl.Options{
		Scheme:                 operator.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.ShardCacheOptions(controllers.CacheOptions([]string{r.ns}), name),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.shard = &controllers.Shard{Name: name, Namespace: r.ns, Ring: r.ns, Timing: sharding.DefaultTiming, Clock: r.clock}
	rec := &controllers.ReplicationLinkReconciler{Client: mgr.GetClient(), Engine: s.engine, Recorder: mgr.GetEventRecorder("dwnsync-operator"),
		Defaults: linkconfig.Defaults{LocalEndpoint: "http://local.dwn.test:3000"}, Shard: s.shard}
	if err := rec.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	s.stop = runUntilStopped(t, "shard "+name, 30*time.Second, mgr.Start)
	r.shards[name] = s
	// Observed is the Unix epoch until the first renewal was tried.
	eventually(t, time.Minute, name+" tries its Lease", func() (bool, string) { return s.shard.Observed().Unix() > 0, "no renewal tried" })
	// A Lease declared dead under this name is retired by the sharder first: step the clock.
	for start := r.clock.Now(); !s.shard.Active(); r.step() {
		if r.clock.Now().Sub(start) > 2*time.Minute {
			t.Fatalf("%s holds no Lease after %v", name, r.clock.Now().Sub(start))
		}
	}
	return s
}

// kill ends a shard's process without a word: no release, and its links end with it.
func (r *ring) kill(name string) (lastRenewal time.Time) {
	s := r.shards[name]
	lastRenewal = s.shard.Observed()
	s.stop()
	s.stop = nil
	for _, k := range s.engine.keys() {
		r.trace.stop(k, name)
	}
	return lastRenewal
}

// step advances the fake clock by one renewal interval and waits until the sharder and every
// shard still running have acted on the new instant.
func (r *ring) step() {
	r.clock.Step(sharding.DefaultTiming.RenewInterval)
	now := r.clock.Now()
	eventually(r.t, time.Minute, "every shard and the sharder at "+now.Format(time.TimeOnly), func() (bool, string) {
		if r.sharder.Observed().Before(now) {
			return false, "sharder at " + r.sharder.Observed().Format(time.TimeOnly)
		}
		for name, s := range r.shards {
			if s.stop != nil && s.shard.Observed().Before(now) {
				return false, name + " at " + s.shard.Observed().Format(time.TimeOnly)
			}
		}
		return true, ""
	})
	r.trace.check(r.t)
}

// createLinks creates n links of one signer to n remotes; it returns their ledger keys by name.
func (r *ring) createLinks(n int) map[string]string {
	secret, did := signerSecret(r.t, r.ns, "signer")
	return r.createLinksOf(secret, did, n)
}

// createLinksOf is createLinks with the signer Secret given.
func (r *ring) createLinksOf(secret *corev1.Secret, did string, n int) map[string]string {
	return createSignedLinks(r.t, r.ns, secret, did, n, func(i int) *v1alpha1.ReplicationLink {
		return newLink(r.ns, fmt.Sprintf("l%03d", i), "", fmt.Sprintf("http://dwn%03d.test:3000", i), "signer")
	})
}

// fixedSignerSecret is a signer Secret "signer" whose key comes from seed: the same tenant DID,
// so the same ledger keys and the same shard for each link, in every run.
func fixedSignerSecret(t testing.TB, ns string, seed byte) (*corev1.Secret, string) {
	t.Helper()
	s, jwk, err := msg.SignerFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return labelledSignerSecret(ns, "signer", s.DID, jwk), s.DID
}

// createSignedLinks creates secret and n links made by mk (their tenant is set to did); it
// returns their ledger keys by name. A few creates are in flight: the benchmark creates 10,000.
func createSignedLinks(t testing.TB, ns string, secret *corev1.Secret, did string, n int, mk func(i int) *v1alpha1.ReplicationLink) map[string]string {
	t.Helper()
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		keys  = map[string]string{}
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, 8)
	)
	for i := range n {
		l := mk(i)
		l.Spec.Tenant = did
		key, err := linkconfig.Key(l)
		if err != nil {
			t.Fatal(err)
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			err := k8sClient.Create(context.Background(), l)
			mu.Lock()
			defer mu.Unlock()
			keys[l.Name] = key
			if err != nil {
				errs = append(errs, fmt.Errorf("create link %s: %w", l.Name, err))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return keys
}

// settled waits until every link is labelled for its rendezvous shard among live, is not
// draining, and runs there and nowhere else. It returns the owners by link name. The API server
// is listed only once the trace shows every link on its shard: a list of thousands of links
// every poll would load the API server whose pace the benchmark measures.
func (r *ring) settled(keys map[string]string, live ...string) map[string]string {
	var owners map[string]string
	within := 2*time.Minute + time.Duration(len(keys))*100*time.Millisecond
	eventually(r.t, within, fmt.Sprintf("every link on its shard among %v", live), func() (bool, string) {
		for name, key := range keys {
			if want, on := sharding.Owner(key, live), r.trace.runner(key); on != want {
				return false, fmt.Sprintf("%s runs on %q, want %q", name, on, want)
			}
		}
		var list v1alpha1.ReplicationLinkList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(r.ns)); err != nil {
			return false, err.Error()
		}
		owners = map[string]string{}
		for _, l := range list.Items {
			key, want := keys[l.Name], sharding.Owner(keys[l.Name], live)
			owner := l.Labels[sharding.OwnerLabel]
			switch {
			case owner != want:
				return false, fmt.Sprintf("%s labelled %q, want %q", l.Name, owner, want)
			case l.Labels[sharding.DrainLabel] != "":
				return false, l.Name + " still draining"
			case r.trace.runner(key) != want:
				return false, fmt.Sprintf("%s runs on %q, want %q", l.Name, r.trace.runner(key), want)
			}
			owners[l.Name] = owner
		}
		return len(owners) == len(keys), fmt.Sprintf("%d of %d links", len(owners), len(keys))
	})
	r.trace.check(r.t)
	return owners
}

// Two shards split the links; a third joins and takes exactly the links it scores highest on
// (about a third), each drained on its old shard before it starts on the new one.
func TestShardJoinMovesItsShareWithDrains(t *testing.T) {
	r := newRing(t)
	r.join("dwnsync-0")
	r.join("dwnsync-1")
	keys := r.createLinks(45)
	before := r.settled(keys, "dwnsync-0", "dwnsync-1")
	perShard := map[string]int{}
	for _, o := range before {
		perShard[o]++
	}
	if perShard["dwnsync-0"] == 0 || perShard["dwnsync-1"] == 0 {
		t.Fatalf("links per shard %v: one shard holds nothing", perShard)
	}

	// While an old shard is stopping a link, the link still names it, draining toward the
	// joiner: the old shard relabels it for the joiner only once it stopped it.
	gate := &removeGate{held: make(chan string, len(keys)), release: make(chan struct{})}
	for _, n := range []string{"dwnsync-0", "dwnsync-1"} {
		r.shards[n].engine.gate.Store(gate)
	}
	drainedBefore := metricSum(t, "dwnsync_shard_handovers_total", map[string]string{"kind": "drained"})
	timedBefore := metricSum(t, "dwnsync_shard_handover_duration_seconds", map[string]string{"kind": "drain"})
	r.join("dwnsync-2")
	select {
	case key := <-gate.held:
		for name, k := range keys {
			if k != key {
				continue
			}
			l := getLink(t, r.ns, name)
			if o := l.Labels[sharding.OwnerLabel]; o != before[name] || l.Labels[sharding.DrainLabel] != "dwnsync-2" {
				t.Errorf("%s is being stopped on %s but is labelled owner=%q drain=%q: it was handed on before its old shard let go",
					name, before[name], o, l.Labels[sharding.DrainLabel])
			}
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("no link left its old shard after a third joined")
	}
	close(gate.release)
	after := r.settled(keys, "dwnsync-0", "dwnsync-1", "dwnsync-2")
	moved := 0
	for name, o := range after {
		if o != before[name] {
			moved++
			if o != "dwnsync-2" {
				t.Errorf("%s moved from %s to %s, not to the joining shard", name, before[name], o)
			}
			if starts := r.trace.startsOf(keys[name]); starts != 2 {
				t.Errorf("%s started %d times, want 2 (once per shard)", name, starts)
			}
		}
	}
	// Which links move is checked exactly above (each is on its rendezvous shard); the share is
	// about a third (15 ± 3 of 45 with random tenants; the ring test measures it on 20,000 keys).
	if moved == 0 || moved > 2*len(keys)/3 {
		t.Errorf("%d of %d links moved to the third shard, want about a third", moved, len(keys))
	}
	t.Logf("links per shard before %v; %d moved to the third shard", perShard, moved)
	if d := metricSum(t, "dwnsync_shard_handovers_total", map[string]string{"kind": "drained"}) - drainedBefore; int(d) != moved {
		t.Errorf("dwnsync_shard_handovers_total{kind=drained} rose by %v, want %d", d, moved)
	}
	if d := metricSum(t, "dwnsync_shard_handover_duration_seconds", map[string]string{"kind": "drain"}) - timedBefore; int(d) != moved {
		t.Errorf("dwnsync_shard_handover_duration_seconds{kind=drain} counted %v hand-overs, want %d", d, moved)
	}
}

// A shard cut off from the API server (the process lives, its watches break) stops its
// links before its Lease could be declared dead; only then do they move. When it reconnects it
// finds its Lease declared dead, waits for the sharder to retire it, and joins afresh.
func TestPartitionedShardStopsBeforeItsLinksMove(t *testing.T) {
	r := newRing(t)
	for _, n := range []string{"dwnsync-0", "dwnsync-1", "dwnsync-2"} {
		r.join(n)
	}
	keys := r.createLinks(45)
	owners := r.settled(keys, "dwnsync-0", "dwnsync-1", "dwnsync-2")
	var cutLinks []string
	for name, o := range owners {
		if o == "dwnsync-2" {
			cutLinks = append(cutLinks, name)
		}
	}
	if len(cutLinks) == 0 {
		t.Fatal("the shard to cut off holds no link")
	}

	fencedBefore := metricSum(t, "dwnsync_shard_fencing_stops_total", map[string]string{"shard": "dwnsync-2"})
	takenBefore := metricSum(t, "dwnsync_shard_handover_duration_seconds", map[string]string{"kind": "takeover"})
	cut := r.shards["dwnsync-2"]
	cut.cut.Store(true)
	cutAt := r.clock.Now()
	fencedAt, movedAt := time.Time{}, time.Time{}
	for fencedAt.IsZero() || movedAt.IsZero() {
		r.step()
		now := r.clock.Now()
		if now.Sub(cutAt) > time.Minute {
			t.Fatalf("after %v: fenced at %v, links moved at %v", now.Sub(cutAt), fencedAt, movedAt)
		}
		if fencedAt.IsZero() && !cut.shard.Active() {
			fencedAt = now
			if n := len(cut.engine.keys()); n != 0 {
				t.Fatalf("the fenced shard still runs %d links", n)
			}
		}
		if movedAt.IsZero() && getLink(t, r.ns, cutLinks[0]).Labels[sharding.OwnerLabel] != "dwnsync-2" {
			movedAt = now
		}
	}
	tm := sharding.DefaultTiming
	if !fencedAt.Before(movedAt) {
		t.Fatalf("the cut shard stopped its links at +%v, but they moved at +%v", fencedAt.Sub(cutAt), movedAt.Sub(cutAt))
	}
	if movedAt.Sub(cutAt) < tm.LeaseDuration+tm.Margin-tm.RenewInterval {
		t.Fatalf("links moved %v after the last renewal, before leaseDuration+margin", movedAt.Sub(cutAt))
	}
	r.settled(keys, "dwnsync-0", "dwnsync-1")
	if d := metricSum(t, "dwnsync_shard_fencing_stops_total", map[string]string{"shard": "dwnsync-2"}) - fencedBefore; int(d) != len(cutLinks) {
		t.Errorf("dwnsync_shard_fencing_stops_total{shard=dwnsync-2} rose by %v, want %d", d, len(cutLinks))
	}
	if d := metricSum(t, "dwnsync_shard_handover_duration_seconds", map[string]string{"kind": "takeover"}) - takenBefore; int(d) != len(cutLinks) {
		t.Errorf("dwnsync_shard_handover_duration_seconds{kind=takeover} counted %v, want %d", d, len(cutLinks))
	}
	t.Logf("cut at +0: fenced at +%v, links moved at +%v", fencedAt.Sub(cutAt), movedAt.Sub(cutAt))

	// Reconnected: the shard may not take back its dead Lease; the sharder deletes it (no link
	// names the shard any more) and the shard joins under a new one, taking its share back.
	cut.cut.Store(false)
	for !cut.shard.Active() {
		r.step()
		if r.clock.Now().Sub(cutAt) > 3*time.Minute {
			t.Fatal("the reconnected shard never holds a Lease again")
		}
	}
	r.settled(keys, "dwnsync-0", "dwnsync-1", "dwnsync-2")
}

// A shard that dies without a word: its links stay put until leaseDuration+margin after its
// last renewal, then run on the others.
func TestDeadShardLinksMoveAfterFencingDelay(t *testing.T) {
	r := newRing(t)
	for _, n := range []string{"dwnsync-0", "dwnsync-1"} {
		r.join(n)
	}
	keys := r.createLinks(30)
	owners := r.settled(keys, "dwnsync-0", "dwnsync-1")
	held := 0
	for _, o := range owners {
		if o == "dwnsync-1" {
			held++
		}
	}
	lastRenewal := r.kill("dwnsync-1")
	tm := sharding.DefaultTiming
	for r.clock.Now().Before(tm.TakeableAt(lastRenewal)) {
		var l v1alpha1.ReplicationLinkList
		if err := k8sClient.List(context.Background(), &l, client.InNamespace(r.ns), client.MatchingLabels{sharding.OwnerLabel: "dwnsync-1"}); err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != held {
			t.Fatalf("the dead shard's links moved %v after its last renewal, before leaseDuration+margin", r.clock.Now().Sub(lastRenewal))
		}
		r.step()
	}
	r.step()
	r.settled(keys, "dwnsync-0")
}

// The operator with --sharding: both replicas run their engine (not only the leader), each runs
// exactly the links labelled for it, and the elected one assigns them.
func TestShardedOperatorReplicasRunTheirOwnLinks(t *testing.T) {
	ns := newNamespace(t)
	shards := []string{"dwnsync-0", "dwnsync-1"}
	replicas := map[string]*replica{}
	for _, name := range shards {
		replicas[name] = startReplicaWith(t, ns, func(o *operator.Options) {
			o.Sharding = operator.ShardingOptions{Enabled: true, ShardName: name, LeaseNamespace: ns, Ring: ns}
		})
	}
	secret, did := signerSecret(t, ns, "signer")
	keys := createSignedLinks(t, ns, secret, did, 12, func(i int) *v1alpha1.ReplicationLink {
		// Nothing listens there: the links run, and cannot reach their servers.
		l := newLink(ns, fmt.Sprintf("l%02d", i), "", fmt.Sprintf("http://127.0.0.1:9/%d", i), "signer")
		l.Spec.LocalEndpoint = "http://127.0.0.1:7"
		return l
	})
	for _, name := range shards {
		eventually(t, time.Minute, name+" ready (its engine runs)", replicas[name].ready)
	}
	eventually(t, 2*time.Minute, "every link labelled for its shard and running there only", func() (bool, string) {
		for name, key := range keys {
			l := getLink(t, ns, name)
			want := sharding.Owner(key, shards)
			if got := l.Labels[sharding.OwnerLabel]; got != want {
				return false, fmt.Sprintf("%s labelled %q, want %q", name, got, want)
			}
			for _, s := range shards {
				if _, running := replicas[s].op.Engine().Snapshot(key); running != (s == want) {
					return false, fmt.Sprintf("%s running on %s: %v", name, s, running)
				}
			}
		}
		return true, ""
	})
}

// Scaling 3 → 1 → 3: the removed shards' links run on the one left after the fencing delay;
// shards added again under the same names (a StatefulSet scaled back up) take their share back.
// 300 links over three shards: each shard runs within ±20% of a third, every link on exactly
// its rendezvous shard. The tenant's key is fixed, so the split is the same in every run (with a
// random tenant, one run in about 30 would fall outside ±20% by chance).
func TestThreeHundredLinksSpreadOverThreeShards(t *testing.T) {
	r := newRing(t)
	names := []string{"dwnsync-0", "dwnsync-1", "dwnsync-2"}
	for _, n := range names {
		r.join(n)
	}
	secret, did := fixedSignerSecret(t, r.ns, 7)
	keys := r.createLinksOf(secret, did, 300)
	perShard := map[string]int{}
	for _, o := range r.settled(keys, names...) {
		perShard[o]++
	}
	for _, n := range names {
		if got := perShard[n]; got < 80 || got > 120 {
			t.Errorf("%s runs %d of 300 links, want 100 ± 20 (all: %v)", n, got, perShard)
		}
		if got := len(r.shards[n].engine.keys()); got != perShard[n] {
			t.Errorf("%s's engine runs %d links, its labels say %d", n, got, perShard[n])
		}
	}
	t.Logf("links per shard: %v", perShard)
}

func TestScaleThreeToOneToThree(t *testing.T) {
	r := newRing(t)
	names := []string{"dwnsync-0", "dwnsync-1", "dwnsync-2"}
	for _, n := range names {
		r.join(n)
	}
	keys := r.createLinks(30)
	r.settled(keys, names...)
	for _, n := range names[1:] {
		r.kill(n)
	}
	// Past leaseDuration+margin the removed shards are declared dead and their links move.
	tm := sharding.DefaultTiming
	for end := r.clock.Now().Add(tm.LeaseDuration + tm.Margin + tm.RenewInterval); r.clock.Now().Before(end); {
		r.step()
	}
	r.settled(keys, "dwnsync-0")
	for _, n := range names[1:] {
		r.join(n)
	}
	r.settled(keys, names...)
}

// metricSum adds up, over the series of the operator's registry named name whose labels include
// match, the counter values and histogram sample counts.
func metricSum(t *testing.T, name string, match map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}
