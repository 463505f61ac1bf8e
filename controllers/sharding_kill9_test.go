package controllers_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// Three `dwnsync operator --sharding` processes (each its own --state-dir, as each pod has its
// own PVC) replicate tenants between two real @web5/dwn-server instances while records are
// written on both sides. The elected one, which also owns links, is killed with SIGKILL: no
// graceful stop, no Lease released, no ledger flushed. Then:
//   - its links stay labelled for it while its Lease could still be renewed, and no survivor
//     runs one before renewTime + leaseDuration + margin; only after its Lease is declared dead
//     are they assigned, by the new leader's sharder, to the survivors, where they go live;
//   - no link ever runs on two processes at once (every process's /metrics sampled together);
//   - the killed process started again on its own state dir joins under a new Lease and takes
//     back its share through drains;
//   - every record written on either side ends on both servers with the same data, and the
//     servers received at most 1.2 writes per record (counting proxies in front of both): a
//     moved link resumes with a bootstrap reconcile, it does not re-copy.
func TestShardKill9MovesItsLinksAndLosesNothing(t *testing.T) {
	bin := faulttest.BuildDwnsync(t)
	servers := dwnserver.Start(t, 2)
	a, b := servers[0], servers[1] // a: the cluster's own server, b: the remote
	// The operators reach the servers through counting proxies; the test writes directly.
	pa, pb := faulttest.StartProxy(t, a.URL), faulttest.StartProxy(t, b.URL)
	dwn := dwnserver.NewClient(t)
	ns := newNamespace(t)
	shards := []string{"dwnsync-0", "dwnsync-1", "dwnsync-2"}
	links := newRealShardLinks(t, dwn, ns, pb.URL, shards, 4)

	c := &shardProcs{t: t, bin: bin, ns: ns, local: pa.URL, dir: t.TempDir(),
		kubeconfig: kubeconfigFile(t, "dwnsync-shards"), procs: map[string]*shardProc{}}
	for _, s := range shards {
		c.start(s)
	}
	trace := c.sample(links)
	c.await(4*time.Minute, "each link live on its shard of three", c.runsOn(links, shards))
	for _, l := range links {
		waitLive(t, ns, l.name, 3*time.Minute)
	}

	// The victim: the elected replica (it runs the sharder too), which owns links as every
	// shard does here.
	var victim string
	c.await(time.Minute, "one elected replica", func() (bool, string) {
		victim = c.leader()
		return victim != "", "no replica reports leader_election_master_status 1"
	})
	survivors := slices.DeleteFunc(slices.Clone(shards), func(s string) bool { return s == victim })
	var victimLinks []realShardLink
	for _, l := range links {
		if sharding.Owner(l.key, shards) == victim {
			victimLinks = append(victimLinks, l)
		}
	}
	t.Logf("%d links; killing the leader %s, which owns %d", len(links), victim, len(victimLinks))

	w := startShardWriter(t, dwn, links, a.URL, b.URL)
	w.more(len(links) + 3) // a record of every tenant, the victim's among them
	// Kill right after a record of one of the victim's tenants was written: it is still on its
	// way to the other server.
	c.await(2*time.Minute, "a victim's record just written, after a few others", func() (bool, string) {
		last, n := w.last()
		fresh := n >= 3 && slices.ContainsFunc(victimLinks, func(l realShardLink) bool { return l.name == links[last.link].name })
		return fresh || w.failed(), fmt.Sprintf("%d records written", n)
	})
	killedAt := c.kill(victim)
	w.more(8) // written while the victim's links have no runner
	renewed := c.lastRenewal(victim)
	t.Logf("%s killed with %d records written; its Lease was last renewed at %s", victim, w.count(), renewed.Format(time.StampMilli))

	// Until the victim's Lease is declared dead (or already retired), its links must keep
	// their owner: read the links first, then the Lease, so a move seen before a live Lease
	// is a move that happened while the Lease was live.
	var early []string
	movedOn := c.runsOn(victimLinks, survivors)
	c.await(4*time.Minute, "the victim's links running on the survivors", func() (bool, string) {
		var list v1alpha1.ReplicationLinkList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		holder, renewTime, err := shardLeaseHolder(ns, victim)
		if err != nil {
			return false, err.Error()
		}
		if holder == victim {
			renewed = later(renewed, renewTime)
			for _, o := range list.Items {
				if slices.ContainsFunc(victimLinks, func(l realShardLink) bool { return l.name == o.Name }) && o.Labels[sharding.OwnerLabel] != victim {
					early = append(early, fmt.Sprintf("%s labelled %q while the Lease of %s was still held", o.Name, o.Labels[sharding.OwnerLabel], victim))
				}
			}
		}
		return movedOn()
	})
	if len(early) > 0 {
		t.Fatalf("links moved before their dead shard's Lease was declared dead:\n%s", strings.Join(early, "\n"))
	}
	takeable := sharding.DefaultTiming.TakeableAt(renewed)
	for _, s := range trace.sightings(killedAt) {
		if slices.ContainsFunc(victimLinks, func(l realShardLink) bool { return l.name == s.link }) && s.by.Before(takeable) {
			t.Fatalf("%s ran on %s by %s, before its dead owner's links could be taken (%s: last renewal %s + lease duration + margin)",
				s.link, s.shard, s.by.Format(time.StampMilli), takeable.Format(time.StampMilli), renewed.Format(time.StampMilli))
		}
	}
	taken := c.sumMetric(survivors, `dwnsync_shard_handovers_total{kind="takenOver",shard="`+victim+`"}`)
	if taken != float64(len(victimLinks)) {
		t.Fatalf("the new leader's sharder counted %v links taken over from %s, want %d", taken, victim, len(victimLinks))
	}
	t.Logf("the victim's %d links run on the survivors, with %d records written", len(victimLinks), w.count())
	w.more(8) // written with two shards
	c.await(2*time.Minute, "records written with two shards", w.atLeast(w.asked()-4))

	// The victim comes back on its own state dir: it joins under a new Lease once the sharder
	// retired the dead one, and its share is drained off the survivors before it starts there.
	drainedBefore := c.sumMetric(survivors, `dwnsync_shard_handovers_total{kind="drained"`)
	c.start(victim)
	w.more(8)
	c.await(4*time.Minute, "each link back on its shard of three", c.runsOn(links, shards))
	if drained := c.sumMetric(survivors, `dwnsync_shard_handovers_total{kind="drained"`) - drainedBefore; drained < float64(len(victimLinks)) {
		t.Fatalf("%v links drained by the survivors when %s rejoined, want at least its %d", drained, victim, len(victimLinks))
	}

	records := w.stop()
	for _, l := range links {
		waitLive(t, ns, l.name, 3*time.Minute)
	}
	checkShardedRecords(t, links, records, a, b)
	if overlaps := trace.stop(); len(overlaps) > 0 {
		t.Fatalf("links ran on two processes at once:\n%s", strings.Join(overlaps, "\n"))
	}
	writesA, _ := pa.Writes()
	writesB, _ := pb.Writes()
	t.Logf("%d records written on A and B; the operators wrote %d messages to A and %d to B", len(records), writesA, writesB)
	if len(records) < 24 {
		t.Fatalf("only %d records written: the test proved little", len(records))
	}
	if err := faulttest.WithinRewriteAllowance(writesA+writesB, len(records)); err != nil {
		for n, r := range records {
			if k := pa.WritesOf(r.cid) + pb.WritesOf(r.cid); k > 1 {
				t.Logf("record %d (%s, written on %s) was written %d times by the operators", n, links[r.link].name, r.on, k)
			}
		}
		t.Fatal(err)
	}
}

// newRealShardLinks creates tenants and their links (to remote) in ns until there are at least
// atLeast and each of shards owns one by rendezvous.
func newRealShardLinks(t *testing.T, dwn *dwnserver.Client, ns, remote string, shards []string, atLeast int) []realShardLink {
	t.Helper()
	var links []realShardLink
	perShard := map[string]int{}
	for i := 0; len(links) < atLeast || len(perShard) < len(shards); i++ {
		if i == 24 {
			t.Fatalf("24 tenants, none on one of the shards: %v", perShard)
		}
		id, err := dwn.NewTenant()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("t%02d", i)
		if err := k8sClient.Create(context.Background(), labelledSignerSecret(ns, name+"-signer", id.DID, id.PrivateJWK)); err != nil {
			t.Fatal(err)
		}
		l := newLink(ns, name, id.DID, remote, name+"-signer")
		key, err := linkconfig.Key(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := k8sClient.Create(context.Background(), l); err != nil {
			t.Fatal(err)
		}
		links = append(links, realShardLink{name: name, key: key, id: id})
		perShard[sharding.Owner(key, shards)]++
	}
	t.Logf("%d links; rendezvous owners: %v", len(links), perShard)
	return links
}

// shardProc is one `dwnsync operator --sharding` process.
type shardProc struct {
	name    string
	metrics string // host:port of its /metrics
	p       *faulttest.Process
}

// shardProcs runs the shard processes of one test against envtest.
type shardProcs struct {
	t                          *testing.T
	bin, kubeconfig, ns, local string
	dir                        string // one state dir per shard below it, kept across restarts

	mu     sync.Mutex
	procs  map[string]*shardProc // the running ones
	starts int
}

// start runs shard name's process on its state dir and returns once its /metrics answers. A
// metrics port taken between freeAddr and the bind is tried again with another.
func (c *shardProcs) start(name string) {
	c.t.Helper()
	for try := 1; ; try++ {
		c.mu.Lock()
		c.starts++
		n := c.starts
		c.mu.Unlock()
		addr := freeAddr(c.t)
		p := faulttest.StartProcess(c.t, filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, n)), []string{"KUBECONFIG=" + c.kubeconfig}, c.bin, "operator",
			"--local-endpoint", c.local, "--state-dir", filepath.Join(c.dir, name), "--watch-namespaces", c.ns,
			"--leader-elect", "--leader-election-namespace", c.ns,
			"--sharding", "--shard-name", name, "--shard-lease-namespace", c.ns, "--shard-ring", c.ns,
			"--status-counter-interval", "1s", "--metrics-bind-address", addr, "--health-probe-bind-address", "0", "--zap-log-level", "info")
		var exited bool
		faulttest.Await(c.t, 2*time.Minute, name+"'s /metrics", nil, func() (bool, string) {
			select {
			case <-p.Exited():
				exited = true
				return true, ""
			default:
			}
			_, err := getMetrics(addr)
			return err == nil, fmt.Sprint(err)
		})
		if !exited {
			c.mu.Lock()
			c.procs[name] = &shardProc{name: name, metrics: addr, p: p}
			c.mu.Unlock()
			return
		}
		if try == 3 || !strings.Contains(p.LogTail(5), "address already in use") {
			c.t.Fatalf("%s exited at start (%v)\n--- tail of %s ---\n%s", name, p.Err(), p.Log, p.LogTail(40))
		}
	}
}

// kill sends SIGKILL to shard name's process and returns once it is gone.
func (c *shardProcs) kill(name string) time.Time {
	c.t.Helper()
	c.mu.Lock()
	sp := c.procs[name]
	c.mu.Unlock()
	if err := sp.p.Kill(); err != nil {
		c.t.Fatalf("kill %s: %v", name, err)
	}
	c.mu.Lock()
	delete(c.procs, name)
	c.mu.Unlock()
	return time.Now()
}

func (c *shardProcs) running() []*shardProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*shardProc, 0, len(c.procs))
	for _, sp := range c.procs {
		out = append(out, sp)
	}
	return out
}

func (c *shardProcs) get(name string) *shardProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name]
}

// await is eventually, failing at once (with its log's tail) when a process exits by itself.
func (c *shardProcs) await(within time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	eventuallyEvery(c.t, 100*time.Millisecond, within, what, func() (bool, string) {
		for _, sp := range c.running() {
			select {
			case <-sp.p.Exited():
				c.t.Fatalf("waiting for %s: %s exited (%v)\n--- tail of %s ---\n%s", what, sp.name, sp.p.Err(), sp.p.Log, sp.p.LogTail(40))
			default:
			}
		}
		return cond()
	})
}

// runsOn says whether each link is labelled for, and running on, its rendezvous owner among
// shards.
func (c *shardProcs) runsOn(links []realShardLink, shards []string) func() (bool, string) {
	return func() (bool, string) {
		for _, l := range links {
			want := sharding.Owner(l.key, shards)
			got := &v1alpha1.ReplicationLink{}
			if err := k8sClient.Get(context.Background(), keyOf(c.ns, l.name), got); err != nil {
				return false, err.Error()
			}
			if owner := got.Labels[sharding.OwnerLabel]; owner != want {
				return false, fmt.Sprintf("%s labelled %q, want %q", l.name, owner, want)
			}
			sp := c.get(want)
			if sp == nil {
				return false, want + " is not running"
			}
			on, err := scrapeShard(sp.metrics)
			if err != nil || !on.links[l.name] {
				return false, fmt.Sprintf("%s not running on %s (%v)", l.name, want, err)
			}
		}
		return true, ""
	}
}

// leader is the shard whose process leads (it runs the sharder), "" when none reports it.
func (c *shardProcs) leader() string {
	for _, sp := range c.running() {
		if on, err := scrapeShard(sp.metrics); err == nil && on.leader {
			return sp.name
		}
	}
	return ""
}

// sumMetric adds up, over the running processes of shards, the samples whose series starts
// with series (a name and its first labels, as /metrics prints them: sorted by label name).
func (c *shardProcs) sumMetric(shards []string, series string) float64 {
	c.t.Helper()
	sum := 0.0
	for _, s := range shards {
		sp := c.get(s)
		if sp == nil {
			c.t.Fatalf("%s is not running", s)
		}
		body, err := getMetrics(sp.metrics)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, line := range strings.Split(body, "\n") {
			if rest, ok := strings.CutPrefix(line, series); ok {
				v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
				if err != nil {
					c.t.Fatalf("%s: %q: %v", s, line, err)
				}
				sum += v
			}
		}
	}
	return sum
}

// lastRenewal is the renewTime of shard's Lease (held by the shard).
func (c *shardProcs) lastRenewal(shard string) time.Time {
	c.t.Helper()
	holder, renewed, err := shardLeaseHolder(c.ns, shard)
	if err != nil || holder != shard {
		c.t.Fatalf("the Lease of %s: holder %q, err %v", shard, holder, err)
	}
	return renewed
}

// shardLeaseHolder reads shard's Lease: its holder ("" when there is no Lease) and renewTime.
func shardLeaseHolder(ns, shard string) (string, time.Time, error) {
	var lease coordinationv1.Lease
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: controllers.ShardLeaseName(shard)}, &lease)
	switch {
	case apierrors.IsNotFound(err):
		return "", time.Time{}, nil
	case err != nil:
		return "", time.Time{}, err
	}
	var renewed time.Time
	if lease.Spec.RenewTime != nil {
		renewed = lease.Spec.RenewTime.Time
	}
	return ptr.Deref(lease.Spec.HolderIdentity, ""), renewed, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// shardView is what one scrape of a shard process's /metrics shows.
type shardView struct {
	links  map[string]bool // names of the links its engine runs (dwnsync_link_phase)
	leader bool
}

var (
	linkPhaseLine = regexp.MustCompile(`^dwnsync_link_phase\{[^}]*\bname="([^"]*)"`)
	leaderLine    = regexp.MustCompile(`^leader_election_master_status\{[^}]*\} 1$`)
)

func getMetrics(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func scrapeShard(addr string) (shardView, error) {
	body, err := getMetrics(addr)
	if err != nil {
		return shardView{}, err
	}
	v := shardView{links: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if m := linkPhaseLine.FindStringSubmatch(sc.Text()); m != nil {
			v.links[m[1]] = true
		} else if leaderLine.MatchString(sc.Text()) {
			v.leader = true
		}
	}
	return v, sc.Err()
}

// sighting: link ran on shard at some instant before by (the end of the scrape that saw it).
type sighting struct {
	link, shard string
	from, by    time.Time // the scrape's start and end
}

// shardTrace samples every running process's /metrics together, every 50 ms: a link seen on
// two processes in one round ran on both at once (a hand-over takes several API round trips,
// far longer than the rounds' scrapes are apart).
type shardTrace struct {
	mu       sync.Mutex
	seen     []sighting
	overlaps []string
	cancel   context.CancelFunc
	done     chan struct{}
}

func (c *shardProcs) sample(links []realShardLink) *shardTrace {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &shardTrace{cancel: cancel, done: make(chan struct{})}
	c.t.Cleanup(func() { tr.stop() })
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tr.round(c.running())
		}
	}()
	return tr
}

func (tr *shardTrace) round(procs []*shardProc) {
	var wg sync.WaitGroup
	round := make([]sighting, 0, 8)
	var mu sync.Mutex
	for _, sp := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := time.Now()
			v, err := scrapeShard(sp.metrics)
			if err != nil {
				return // not up yet, or just killed: it runs nothing a scrape could see
			}
			by := time.Now()
			mu.Lock()
			for name := range v.links {
				round = append(round, sighting{link: name, shard: sp.name, from: from, by: by})
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seen = append(tr.seen, round...)
	on := map[string][]string{}
	for _, s := range round {
		on[s.link] = append(on[s.link], s.shard)
	}
	for link, shards := range on {
		if len(shards) > 1 {
			tr.overlaps = append(tr.overlaps, fmt.Sprintf("%s ran on %v at %s", link, shards, time.Now().Format(time.StampMilli)))
		}
	}
}

// sightings are those of scrapes started after since.
func (tr *shardTrace) sightings(since time.Time) []sighting {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []sighting
	for _, s := range tr.seen {
		if s.from.After(since) {
			out = append(out, s)
		}
	}
	return out
}

// stop ends the sampling and returns the overlaps seen.
func (tr *shardTrace) stop() []string {
	tr.cancel()
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.overlaps
}

// shardRecord is one record the test wrote.
type shardRecord struct {
	link int    // index into the links
	cid  string // its message CID
	on   string // the server it was written on
}

// shardWriter writes records on the links' tenants in turn, on A and B in turn, 200 ms apart,
// as many as it was asked for.
type shardWriter struct {
	t       *testing.T
	mu      sync.Mutex
	records []shardRecord
	err     error
	total   int // asked for
	ask     chan int
	done    chan struct{}
}

func startShardWriter(t *testing.T, dwn *dwnserver.Client, links []realShardLink, a, b string) *shardWriter {
	w := &shardWriter{t: t, ask: make(chan int, 16), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		pace := time.NewTicker(200 * time.Millisecond) // a bounded load, spread over the phases
		defer pace.Stop()
		n := 0
		for more := range w.ask {
			for ; more > 0; more-- {
				<-pace.C
				i, url := n%len(links), a
				if n%2 == 1 {
					url = b
				}
				rec, err := dwn.Write(url, links[i].id, dwnserver.WriteOpts{Data: []byte(fmt.Sprintf("record %d around a kill -9", n)), DataFormat: "text/plain"})
				w.mu.Lock()
				if err != nil {
					w.err = fmt.Errorf("write %d on %s: %w", n, url, err)
					w.mu.Unlock()
					return
				}
				w.records = append(w.records, shardRecord{link: i, cid: rec.CID, on: url})
				w.mu.Unlock()
				n++
			}
		}
	}()
	return w
}

func (w *shardWriter) more(n int) {
	w.mu.Lock()
	w.total += n
	w.mu.Unlock()
	w.ask <- n
}

func (w *shardWriter) asked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

func (w *shardWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.records)
}

// last is the newest record written, and how many were.
func (w *shardWriter) last() (shardRecord, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.records) == 0 {
		return shardRecord{}, 0
	}
	return w.records[len(w.records)-1], len(w.records)
}

func (w *shardWriter) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

func (w *shardWriter) atLeast(n int) func() (bool, string) {
	return func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.records) >= n || w.err != nil, fmt.Sprintf("%d records written", len(w.records))
	}
}

// stop waits for every record asked for and returns them.
func (w *shardWriter) stop() []shardRecord {
	w.t.Helper()
	close(w.ask)
	<-w.done
	if w.err != nil {
		w.t.Fatal(w.err)
	}
	if len(w.records) != w.total {
		w.t.Fatalf("%d records written of %d", len(w.records), w.total)
	}
	return w.records
}

// checkShardedRecords waits until each tenant lists the same CIDs on both servers, then checks
// that every record written is on both with the same data.
func checkShardedRecords(t *testing.T, links []realShardLink, records []shardRecord, a, b *dwnserver.Server) {
	t.Helper()
	for i, l := range links {
		signer, err := msg.NewSigner(l.id.DID, l.id.PrivateJWK)
		if err != nil {
			t.Fatal(err)
		}
		tenants := faulttest.TenantsOf(t, l.id.DID, signer, a.URL, b.URL)
		var want []string
		for _, r := range records {
			if r.link == i {
				want = append(want, r.cid)
			}
		}
		eventually(t, 3*time.Minute, l.name+": both servers list the same CIDs", func() (bool, string) {
			return faulttest.SameListing(tenants[0], tenants[1], len(want))
		})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		ia, ib, err := faulttest.Inventories(ctx, tenants[0], tenants[1])
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := faulttest.SameInventory(ia, ib); err != nil {
			t.Fatalf("%s: the servers differ: %v", l.name, err)
		}
		for _, cid := range want {
			if _, ok := ia[cid]; !ok {
				t.Errorf("%s: record %s is lost", l.name, cid)
			}
		}
	}
}
