package e2e

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// countingTransport counts the engine's HTTP requests (every JSON-RPC call and probe), per
// server host the requests of each DWN message kind ("MessagesQuery", "MessagesRead",
// "RecordsWrite"…), and per host how many times each message was written there (a
// dwn.processMessage of a RecordsWrite, RecordsDelete or ProtocolsConfigure, by the message's
// CID). holdQueries makes every MessagesQuery wait until releaseQueries: what crosses while
// queries are held crossed without one.
type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper

	mu      sync.Mutex
	writes  map[string]map[string]int // host → message CID → writes sent
	kinds   map[string]map[string]int // host → message kind → requests
	held    chan struct{}             // open while holding: queries wait for its close
	holding bool
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	kind := faulttest.RequestKind(r)
	cid, written := faulttest.WrittenCID(r)
	c.mu.Lock()
	addCount(c.kinds, r.URL.Host, kind)
	if written {
		addCount(c.writes, r.URL.Host, cid)
	}
	gate, hold := c.held, c.holding && kind == "MessagesQuery"
	c.mu.Unlock()
	if hold {
		select {
		case <-gate:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return c.base.RoundTrip(r)
}

func addCount(m map[string]map[string]int, host, key string) {
	if m[host] == nil {
		m[host] = map[string]int{}
	}
	m[host][key]++
}

// holdQueries makes every MessagesQuery wait until releaseQueries.
func (c *countingTransport) holdQueries() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held, c.holding = make(chan struct{}), true
}

func (c *countingTransport) releaseQueries() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		close(c.held)
		c.holding = false
	}
}

// writesOf is how many times the engine sent message cid to the server at serverURL.
func (c *countingTransport) writesOf(t *testing.T, serverURL, cid string) int {
	return c.lookup(t, c.writes, serverURL, cid)
}

// count is how many requests of kind the engine sent to the server at serverURL.
func (c *countingTransport) count(t *testing.T, serverURL, kind string) int {
	return c.lookup(t, c.kinds, serverURL, kind)
}

func (c *countingTransport) lookup(t *testing.T, m map[string]map[string]int, serverURL, key string) int {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[u.Host][key]
}

func newCountingPool() (*dialect.Pool, *countingTransport) {
	ct := &countingTransport{base: &http.Transport{ResponseHeaderTimeout: 30 * time.Second, MaxIdleConnsPerHost: 16},
		writes: map[string]map[string]int{}, kinds: map[string]map[string]int{}}
	return dialect.NewPool(dialect.Options{HTTPClient: &http.Client{Transport: ct}}), ct
}

// inventory lists a tenant's CIDs on a server and hashes each message's data.
func inventory(t *testing.T, tenant dwn.Tenant) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inv, err := faulttest.Inventory(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func listCIDs(t *testing.T, tenant dwn.Tenant) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cids, err := tenant.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		t.Fatalf("listing %s: %v", tenant.Endpoint(), err)
	}
	return cids
}

// End to end on two real @web5/dwn-server instances: seeded A and B converge through a
// `both` link to identical CID sets and data; then a live write on either side reaches the
// other, without an echo storm.
func TestEngineWeb5EndToEnd(t *testing.T) {
	a, b, client, id := twoServersOneTenant(t)
	seedStart := time.Now()
	// One seed at a time: the client drives both through one Node process, and on two cores
	// sequential seeding measured faster than parallel.
	sa, err := client.Seed(a.URL, id, dwnserver.SeedSpec{Records: 300, Large: 20, Updates: 50, Deletes: 20, Prefix: "a"})
	if err != nil {
		t.Fatalf("seeding A: %v", err)
	}
	sb, err := client.Seed(b.URL, id, dwnserver.SeedSpec{Records: 300, Large: 20, Updates: 50, Deletes: 20, Prefix: "b"})
	if err != nil {
		t.Fatalf("seeding B: %v", err)
	}
	seedTime := time.Since(seedStart)
	t.Logf("seeded A with %d messages (%d CIDs), B with %d (%d CIDs) in %v", sa.Messages, sa.ExpectedCIDs, sb.Messages, sb.ExpectedCIDs, seedTime)
	// The copy writes what the seed wrote, each way, on the same servers: the seed's time
	// measures what this machine allows right now (1 write/s at a load average of 30, where a
	// fixed 3 minutes ran out), so the deadline scales with it.
	convergeWithin := 3*time.Minute + 3*seedTime

	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	pool, counter := newCountingPool()
	te := startEngine(t, engineOpts{pool: pool})
	ctx := context.Background()
	ta, tb := tenantsOn(t, id.DID, signer, a.URL, b.URL)

	start := time.Now()
	key, err := te.Apply(syncer.LinkConfig{Name: "e2e/web5", Tenant: id.DID, LocalEndpoint: a.URL, RemoteEndpoint: b.URL,
		Direction: linkstate.Both, LocalSigner: signer, RemoteSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, convergeWithin, "both servers list the same CIDs", func() bool {
		s, _ := te.Snapshot(key)
		if s.Phase != "live" || s.NeedsReconcile {
			return false
		}
		la, lb := listCIDs(t, ta), listCIDs(t, tb)
		return len(la) >= sa.ExpectedCIDs && sameSet(la, lb)
	})
	converge := time.Since(start)
	ia, ib := inventory(t, ta), inventory(t, tb)
	if len(ia) != len(ib) {
		t.Fatalf("A holds %d messages, B %d", len(ia), len(ib))
	}
	withData := 0
	for cid, h := range ia {
		if ib[cid] != h {
			t.Fatalf("message %s: data %s on A, %s on B", cid, h, ib[cid])
		}
		if h != faulttest.NoData {
			withData++
		}
	}
	s, _ := te.Snapshot(key)
	t.Logf("converged in %v: %d CIDs on each side (%d with data, identical hashes); %d engine HTTP requests; progress %+v; pulled %d pushed %d",
		converge, len(ia), withData, counter.n.Load(), s.Progress, s.Pull.Applied, s.Push.Applied)
	if s.Progress.Applied == 0 || s.Progress.Applied != s.Progress.Total {
		t.Errorf("progress after a converged bootstrap: %+v, want n of n (what was not copied needed no copy)", s.Progress)
	}

	// Live, both ways.
	before := counter.n.Load()
	liveStart := time.Now()
	wa, err := client.Write(a.URL, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"live":"on A"}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "A's live write readable on B", func() bool { return readable(ctx, tb, wa.CID) })
	aToB := time.Since(liveStart)
	liveStart = time.Now()
	wb, err := client.Write(b.URL, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"live":"on B"}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "B's live write readable on A", func() bool { return readable(ctx, ta, wb.CID) })
	bToA := time.Since(liveStart)
	eventually(t, 30*time.Second, "feeds drained", func() bool {
		s, _ := te.Snapshot(key)
		return s.Pull.Pending == 0 && s.Push.Pending == 0
	})
	liveReqs := counter.n.Load() - before
	// No echo: each live write was sent once to the other server and never back to its own.
	// A marker on A, then a closer on B: the pull feed is ordered, so once the closer is on A,
	// B's event for the marker has been handled too (an echo would have been sent by then).
	wm, err := client.Write(a.URL, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"live":"marker"}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "marker on B", func() bool { return contains(listCIDs(t, tb), wm.CID) })
	wc, err := client.Write(b.URL, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"live":"closer"}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "closer on A", func() bool { return contains(listCIDs(t, ta), wc.CID) })
	eventually(t, 30*time.Second, "feeds drained", func() bool {
		s, _ := te.Snapshot(key)
		return s.Pull.Pending == 0 && s.Push.Pending == 0
	})
	t.Logf("live: A→B %v, B→A %v; engine requests for 2 live writes %d", aToB, bToA, liveReqs)
	for _, w := range []struct {
		what, cid, from, to string
	}{{"A's live write", wa.CID, a.URL, b.URL}, {"B's live write", wb.CID, b.URL, a.URL},
		{"the marker", wm.CID, a.URL, b.URL}, {"the closer", wc.CID, b.URL, a.URL}} {
		if n := counter.writesOf(t, w.to, w.cid); n != 1 {
			t.Errorf("%s was written to the other server %d times, want 1", w.what, n)
		}
		if n := counter.writesOf(t, w.from, w.cid); n != 0 {
			t.Errorf("echo: %s was written back to the server it came from %d times", w.what, n)
		}
	}
	la, lb := listCIDs(t, ta), listCIDs(t, tb)
	if !sameSet(la, lb) {
		t.Fatalf("after live writes: A %d CIDs, B %d", len(la), len(lb))
	}
}
