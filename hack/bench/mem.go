package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// Issue 12's memory limits.
const (
	bootstrapRSSLimit   = 256 << 20
	listingHeapPerReply = 2.0 // a listing reply may cost ~2× its size
)

// benchMemory measures the peak RSS while one link bootstraps a tenant of cfg.memMessages
// from an enbox node into an empty one (the nodes in a child process), and the heap a web5 listing reply of
// cfg.memListingMiB costs to decode.
func benchMemory(ctx context.Context, cfg config) error {
	if err := bootstrapRSS(ctx, cfg); err != nil {
		return err
	}
	return listingHeap(ctx, cfg)
}

// bootstrapRSS reports the peak RSS of this process while one engine bootstraps a tenant of
// cfg.memMessages from a seeded enbox node into an empty one. Both nodes run in a child process
// (nodeschild.go), so the figure is the engine's own (with the bench's small share).
func bootstrapRSS(ctx context.Context, cfg config) error {
	logf("memory: seeding %d messages in the child's node", cfg.memMessages)
	child, err := startNodesChild(ctx, 2, cfg.memMessages)
	if err != nil {
		return err
	}
	defer child.stop()
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
	key, err := eng.Apply(urlLink("bench/bootstrap", child.DID, child.signer, child.URLs[0], child.URLs[1]))
	if err == nil {
		err = eng.waitLive(ctx, key)
	}
	took := time.Since(start)
	top := peak.end()
	if err != nil {
		return err
	}
	counts, err := child.counts()
	if err != nil {
		return err
	}
	if len(counts.CIDs) != 2 || counts.CIDs[0] != counts.CIDs[1] {
		return fmt.Errorf("bootstrap ended with %v messages on the (local, remote) nodes", counts.CIDs)
	}
	logf("memory: bootstrap of %d messages in %v, RSS %.1f MiB before, peak %.1f MiB (VmHWM %.1f MiB)", cfg.memMessages, took, mib(before), mib(top), mib(peakRSS()))
	sizes := map[string]int{"messages": cfg.memMessages, "seconds": int(took.Seconds())}
	emit(figure{Figure: "Memory", Metric: "bootstrap_peak_rss_mib", Unit: "MiB", Dwnsync: mib(top), Baseline: mib(bootstrapRSSLimit),
		Ratio: round(float64(top)/bootstrapRSSLimit, 2), Meaning: "dwnsync/limit (≤ 1 meets it): peak RSS of the engine's process, the nodes in a child process", Sizes: sizes})
	emit(figure{Figure: "Memory", Metric: "bootstrap_engine_rss_mib", Unit: "MiB", Dwnsync: mib(top - before), Baseline: mib(bootstrapRSSLimit),
		Ratio: round(float64(top-before)/bootstrapRSSLimit, 2), Meaning: "dwnsync/limit: the same peak minus the RSS before the engine started (≤ 1 meets it)", Sizes: sizes})
	return nil
}

// listingHeap serves one canned web5 MessagesQuery reply of about cfg.memListingMiB and
// measures the peak heap growth while the web5 client lists it, against the reply's size: once
// as the engine's reconcile lists (dwn.ListCIDList: the streamed reply into a CIDList), once as
// ListCIDs (a []string, what dependency lookups and the fault tests use).
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
	sizes := map[string]int{"entries": entries, "reply_bytes": len(reply)}
	for _, l := range []struct {
		metric, meaning string
		list            func() (int, error)
	}{
		{"listing_heap_per_reply_byte", "the reconcile's listing (dwn.ListCIDList: streamed into a CIDList)", func() (int, error) {
			l, err := dwn.ListCIDList(ctx, tenant, dwn.Scope{})
			if err != nil {
				return 0, err
			}
			return l.Len(), nil
		}},
		{"listing_heap_per_reply_byte_strings", "ListCIDs (streamed into a []string: only tests and fault tools list this way; the reconcile and the delegate dependency scan list into a CIDList)", func() (int, error) {
			cids, err := tenant.ListCIDs(ctx, dwn.Scope{})
			return len(cids), err
		}},
	} {
		runtime.GC()
		base := heapAlloc()
		peak := samplePeak(heapAlloc)
		n, err := l.list()
		top := peak.end()
		if err != nil {
			return err
		}
		if n != entries {
			return fmt.Errorf("%s: listed %d CIDs of %d", l.metric, n, entries)
		}
		grew := top - base
		logf("memory: %s of %d entries (%.1f MiB reply): heap +%.1f MiB at its peak", l.metric, entries, mib(int64(len(reply))), mib(grew))
		ratio := float64(grew) / float64(len(reply))
		emit(figure{Figure: "Memory", Metric: l.metric, Unit: "bytes/byte", Dwnsync: round(ratio, 2), Baseline: listingHeapPerReply,
			Ratio: round(ratio/listingHeapPerReply, 2), Meaning: "peak heap growth while listing, per byte of the reply, over the limit of ~2 (≤ 1 meets it); " + l.meaning,
			Sizes: sizes})
	}
	return nil
}

// cannedQueryReply is a JSON-RPC answer to MessagesQuery with as many entries (distinct real
// CIDv1s, as a server lists them) as fit in about size bytes.
func cannedQueryReply(size int) ([]byte, int) {
	var b bytes.Buffer
	b.Grow(size + 256)
	b.WriteString(`{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entries":[`)
	n := 0
	for b.Len() < size {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"messageCid":"%s"}`, msg.RawDataCID(strconv.AppendInt(nil, int64(n), 10)))
		n++
	}
	b.WriteString(`]}}}`)
	return b.Bytes(), n
}
