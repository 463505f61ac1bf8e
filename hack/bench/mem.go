package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// Issue 12's memory limits.
const (
	bootstrapRSSLimit   = 256 << 20
	listingHeapPerReply = 2.0 // a listing reply may cost ~2× its size
)

// benchMemory measures the peak RSS while one link bootstraps a tenant of cfg.memMessages
// from an in-process enbox node into an empty one, and the heap a web5 listing reply of
// cfg.memListingMiB costs to decode.
func benchMemory(ctx context.Context, cfg config) error {
	if err := bootstrapRSS(ctx, cfg); err != nil {
		return err
	}
	return listingHeap(ctx, cfg)
}

// bootstrapRSS reports the peak RSS of this process during the bootstrap, and the same minus
// the RSS before the engine started (the seeded nodes live in this process too: the second
// figure is the engine's share).
func bootstrapRSS(ctx context.Context, cfg config) error {
	nodes, closeNodes, err := launchNodes(2, dwntest.ModeEnbox)
	if err != nil {
		return err
	}
	defer closeNodes()
	id, err := dwntest.NewIdentity()
	if err != nil {
		return err
	}
	if err := seedNode(id, cfg.memMessages, nodes[1]); err != nil {
		return err
	}
	dir, err := engineDir(cfg, "mem")
	if err != nil {
		return err
	}
	runtime.GC()
	before := rssBytes()
	peak := samplePeak(rssBytes)
	start := time.Now()
	eng, err := startEngine(ctx, dir)
	if err != nil {
		peak.end()
		return err
	}
	defer eng.stop()
	key, err := eng.Apply(nodeLink("bench/bootstrap", id, nodes[0], nodes[1]))
	if err == nil {
		err = eng.waitLive(ctx, key)
	}
	top := peak.end()
	if err != nil {
		return err
	}
	if got := len(nodes[0].CIDs(id.DID)); got != len(nodes[1].CIDs(id.DID)) {
		return fmt.Errorf("bootstrap ended with %d of %d messages", got, len(nodes[1].CIDs(id.DID)))
	}
	logf("memory: bootstrap of %d messages in %v, RSS %.1f MiB before, peak %.1f MiB", cfg.memMessages, time.Since(start), mib(before), mib(top))
	sizes := map[string]int{"messages": cfg.memMessages}
	emit(figure{Figure: "Memory", Metric: "bootstrap_peak_rss_mib", Unit: "MiB", Dwnsync: mib(top), Baseline: mib(bootstrapRSSLimit),
		Ratio: round(float64(top)/bootstrapRSSLimit, 2), Meaning: "dwnsync/limit (≤ 1 meets it); includes both in-process nodes holding the tenant", Sizes: sizes})
	emit(figure{Figure: "Memory", Metric: "bootstrap_engine_rss_mib", Unit: "MiB", Dwnsync: mib(top - before), Baseline: mib(bootstrapRSSLimit),
		Ratio: round(float64(top-before)/bootstrapRSSLimit, 2), Meaning: "dwnsync/limit: peak RSS minus the RSS before the engine started, which still includes the local node filling up with the tenant (≤ 1 meets it)", Sizes: sizes})
	return nil
}

// listingHeap serves one canned web5 MessagesQuery reply of about cfg.memListingMiB and
// measures the peak heap growth while the web5 client lists it (ListCIDs), against the
// reply's size.
func listingHeap(ctx context.Context, cfg config) error {
	reply, entries := cannedQueryReply(cfg.memListingMiB << 20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(reply)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	pool := dialect.NewPool(dialect.Options{})
	defer pool.Close()
	c, err := pool.Get(ctx, "http://"+ln.Addr().String(), dwn.DialectWeb5)
	if err != nil {
		return err
	}
	id, err := dwntest.NewIdentity()
	if err != nil {
		return err
	}
	tenant := c.Tenant(id.DID, id.Signer)
	runtime.GC()
	base := heapAlloc()
	peak := samplePeak(heapAlloc)
	cids, err := tenant.ListCIDs(ctx, dwn.Scope{})
	top := peak.end()
	if err != nil {
		return err
	}
	if len(cids) != entries {
		return fmt.Errorf("listed %d CIDs of %d", len(cids), entries)
	}
	grew := top - base
	logf("memory: listing of %d entries (%.1f MiB reply): heap +%.1f MiB at its peak", entries, mib(int64(len(reply))), mib(grew))
	ratio := float64(grew) / float64(len(reply))
	emit(figure{Figure: "Memory", Metric: "listing_heap_per_reply_byte", Unit: "bytes/byte", Dwnsync: round(ratio, 2), Baseline: listingHeapPerReply,
		Ratio: round(ratio/listingHeapPerReply, 2), Meaning: "peak heap growth while listing, per byte of the reply, over the limit of ~2 (≤ 1 meets it)",
		Sizes: map[string]int{"entries": entries, "reply_bytes": len(reply)}})
	return nil
}

// cannedQueryReply is a JSON-RPC answer to MessagesQuery with as many entries (CID-sized
// strings) as fit in about size bytes.
func cannedQueryReply(size int) ([]byte, int) {
	var b bytes.Buffer
	b.Grow(size + 256)
	b.WriteString(`{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entries":[`)
	n := 0
	for b.Len() < size {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"messageCid":"bafyreig%051d"}`, n)
		n++
	}
	b.WriteString(`]}}}`)
	return b.Bytes(), n
}
