package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Helpers of the figures measured on in-process enbox nodes (internal/dwntest): P3, P4, P5
// and the memory figures. The nodes count every request they answer.

func launchNodes(n int, mode dwntest.Mode) ([]*dwntest.Node, func(), error) {
	var nodes []*dwntest.Node
	closeAll := func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}
	for range n {
		nd, err := dwntest.Launch(dwntest.Options{Mode: mode})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		nodes = append(nodes, nd)
	}
	return nodes, closeAll, nil
}

// nodeRequests sums the requests the nodes answered, keepalive (rpc.ping, pongs) apart. The
// nodes also count each DWN message kind of a request; only the request names are summed.
func nodeRequests(nodes []*dwntest.Node) (requests, keepalive int) {
	for _, nd := range nodes {
		for name, c := range nd.Counts() {
			switch {
			case name == "rpc.ping" || name == "websocket:pong":
				keepalive += c
			case strings.HasPrefix(name, "dwn.") || strings.HasPrefix(name, "rpc.") || strings.HasPrefix(name, "GET ") || name == "websocket":
				requests += c
			}
		}
	}
	return requests, keepalive
}

// mergedCounts adds up every count of the nodes (for the log).
func mergedCounts(nodes []*dwntest.Node) map[string]int {
	out := map[string]int{}
	for _, nd := range nodes {
		for k, v := range nd.Counts() {
			out[k] += v
		}
	}
	return out
}

func webSockets(nodes []*dwntest.Node) int {
	n := 0
	for _, nd := range nodes {
		n += nd.WebSockets()
	}
	return n
}

// seedNode stores count messages of id directly in the nodes (no HTTP, dwntest's Seed: no second
// derivation or signature check of what was just authored): a protocol-less mix of small records
// and 10% updates, so that the tenant is large without costing round trips.
func seedNode(id *dwntest.Identity, count int, nodes ...*dwntest.Node) error {
	const batch = 1000
	ws := make([]dwntest.Written, 0, batch)
	var prev dwntest.Written
	for i := range count {
		var w dwntest.Written
		var err error
		if i%10 == 9 {
			w, err = id.Update(prev, fmt.Appendf(nil, `{"seed":%d,"update":true}`, i))
		} else {
			w, err = id.Write(dwntest.WriteOpts{Data: fmt.Appendf(nil, `{"seed":%d}`, i), DataFormat: "application/json"})
		}
		if err != nil {
			return err
		}
		ws = append(ws, w)
		prev = w
		if len(ws) == batch || i == count-1 {
			for _, nd := range nodes {
				if err := nd.Seed(id.DID, ws...); err != nil {
					return fmt.Errorf("seed messages %d-%d: %w", i+1-len(ws), i, err)
				}
			}
			ws = ws[:0]
		}
	}
	return nil
}

// nodeLink is a `both` link of tenant id between two nodes.
func nodeLink(name string, id *dwntest.Identity, local, remote *dwntest.Node) syncer.LinkConfig {
	return urlLink(name, id.DID, id.Signer, local.URL(), remote.URL())
}

// urlLink is a `both` link of a tenant between two endpoints.
func urlLink(name, did string, signer *msg.Signer, local, remote string) syncer.LinkConfig {
	return syncer.LinkConfig{Name: name, Tenant: did, LocalEndpoint: local, RemoteEndpoint: remote,
		Direction: linkstate.Both, LocalSigner: signer, RemoteSigner: signer}
}

// allLive waits until every key is live with nothing left to reconcile. Each tick looks only at
// the links not seen live yet (10,000 snapshots ten times a second were a share of the CPU the
// engine was being measured on), then all of them once more before it returns.
func (r *runningEngine) allLive(ctx context.Context, keys []string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	pending := keys
	for {
		waiting := pending[:0:0]
		for _, k := range pending {
			if s, ok := r.Snapshot(k); !ok || s.Phase != "live" || s.NeedsReconcile {
				waiting = append(waiting, k)
			}
		}
		if pending = waiting; len(pending) == 0 {
			for _, k := range keys {
				if s, ok := r.Snapshot(k); !ok || s.Phase != "live" || s.NeedsReconcile {
					pending = append(pending, k)
				}
			}
			if len(pending) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d links not live: %w", len(pending), len(keys), ctx.Err())
		case <-tick.C:
		}
	}
}

// engineDir is a fresh directory for an engine's ledger under the work directory.
func engineDir(cfg config, figure string) (string, error) {
	dir := filepath.Join(cfg.workDir, figure)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, "engine-")
}

// rssBytes is the resident set of this process (VmRSS).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// peakSampler records the largest value of sample until stopped (every 20 ms).
type peakSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done sync.WaitGroup
}

func samplePeak(sample func() int64) *peakSampler {
	p := &peakSampler{stop: make(chan struct{})}
	p.peak.Store(sample())
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				if v := sample(); v > p.peak.Load() {
					p.peak.Store(v)
				}
			}
		}
	}()
	return p
}

func (p *peakSampler) end() int64 {
	close(p.stop)
	p.done.Wait()
	return p.peak.Load()
}

func heapAlloc() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func mib(b int64) float64 { return round(float64(b)/(1<<20), 1) }

// meter counts a pool's HTTP requests and the bytes of their bodies both ways.
type meter struct {
	base                     http.RoundTripper
	requests, sent, received atomic.Int64
}

func newMeteredPool() (*dialect.Pool, *meter) {
	m := &meter{base: &http.Transport{MaxIdleConnsPerHost: 16, ResponseHeaderTimeout: 60 * time.Second}}
	return dialect.NewPool(dialect.Options{HTTPClient: &http.Client{Transport: m}}), m
}

func (m *meter) RoundTrip(r *http.Request) (*http.Response, error) {
	m.requests.Add(1)
	m.sent.Add(max(r.ContentLength, 0) + int64(len(r.Header.Get("dwn-request"))))
	resp, err := m.base.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, m: m}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	m *meter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.m.received.Add(int64(n))
	return n, err
}

// snapshot is the meter's counts now.
func (m *meter) snapshot() [3]int64 {
	return [3]int64{m.requests.Load(), m.sent.Load(), m.received.Load()}
}
