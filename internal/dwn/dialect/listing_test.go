package dialect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/dwn/wire/wiretest"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// heapPeak samples the heap's object bytes until stop is closed; the result is the peak.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// A 64 MiB web5 listing (the whole tenant in one reply, ~1.1M CIDs) decoded into a CIDSet
// stays under twice its size in heap: the reply is never held, only the compact set.
func TestListingReplyHeapBound(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB")
	}
	const replyBytes = 64 << 20
	n := replyBytes / 62 // each entry is `"<59-char CID>",`
	var sent int64
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			_, _ = w.Write([]byte(`{"server":"@web5/dwn-server"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		written, _ := wiretest.WriteListing(w, n)
		mu.Lock()
		sent = written
		mu.Unlock()
	}))
	defer srv.Close()
	tn := openTestTenant(t, srv.URL, Options{})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := heapPeak(stop)
	set := &msg.CIDSet{}
	err := dwn.EachCID(context.Background(), tn, dwn.Scope{}, func(cid string) error { set.Add(cid); return nil })
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	grew := int64(<-peak) - int64(before.HeapAlloc)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("reply %d MiB, %d CIDs; heap grew by at most %d MiB; the set holds %d MiB", sent>>20, set.Len(), grew>>20, set.Bytes()>>20)
	if set.Len() != n || !set.Has(wiretest.CID(n-1)) {
		t.Fatalf("set has %d CIDs, want %d", set.Len(), n)
	}
	if grew > 2*sent {
		t.Fatalf("heap grew by %d MiB for a %d MiB reply: want under 2× the reply", grew>>20, sent>>20)
	}
}

// A kept (non-listing) reply over wire.MaxJSONReply, served as an endless stream, ends the call
// with a clear Permanent error, not the process.
func TestReplyBoundsEndTheCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = wiretest.WriteListing(w, wire.MaxJSONReply/62+1000)
	}))
	defer srv.Close()
	tn := openTestTenant(t, srv.URL, Options{CallTimeout: 10 * time.Minute}) // -race decodes slowly
	_, err := tn.Read(context.Background(), wiretest.CID(1))
	if err == nil || dwn.IsTransient(err) || !strings.Contains(err.Error(), "exceeds dwnsync's bound") {
		t.Fatalf("a %d MiB MessagesRead reply: %v, want a Permanent error naming the bound", wire.MaxJSONReply>>20, err)
	}
}

// A streamed listing that keeps moving may take longer than CallTimeout in total (a large web5
// tenant on a slow link): CallTimeout bounds each wait for bytes, not the whole reply. Fake
// clock: five chunks 20 s apart (100 s against a 30 s CallTimeout), each above the rate floor.
func TestListingSlowButSteadyOutlivesCallTimeout(t *testing.T) {
	const chunks, perChunk = 5, 1700 // 1,700 CIDs ≈ 105 KB a chunk: over 4 KiB/s for 20 s
	next := make(chan struct{})
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		if r.URL.Path == "/info" {
			_, _ = w.Write([]byte(`{"server":"@web5/dwn-server"}`))
			return
		}
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200},"entries":[`)
		for c := 0; c < chunks; c++ {
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			for i := c * perChunk; i < (c+1)*perChunk; i++ {
				_, _ = io.WriteString(w, `"`+wiretest.CID(i)+`"`)
				if i < chunks*perChunk-1 {
					_, _ = io.WriteString(w, ",") // the decoder needs the byte after an entry
				}
			}
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, `]}}}`)
	})
	clk := clocktesting.NewFakeClock(time.Now())
	tn := openTestTenant(t, url, Options{Clock: clk})
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- dwn.EachCID(context.Background(), tn, dwn.Scope{}, func(string) error { got.Add(1); return nil })
	}()
	for c := 0; c < chunks; c++ {
		if c > 0 {
			clk.Step(20 * time.Second)
		}
		next <- struct{}{}
		waittest.For(t, 30*time.Second, time.Millisecond, fmt.Sprintf("chunk %d decoded", c), func() bool { return got.Load() == int64((c+1)*perChunk) })
	}
	if err := <-done; err != nil || got.Load() != chunks*perChunk {
		t.Fatalf("listed %d of %d CIDs: %v", got.Load(), chunks*perChunk, err)
	}
}

// stallTimeout is short so that no test waits long for a watchdog.
const stallTimeout = 300 * time.Millisecond

// The options reach the client Open builds, and a shorter caller deadline still wins.
func TestOpenCallTimeoutOptionAndCallerDeadline(t *testing.T) {
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) { wiretest.Hold(r, release) })
	c, err := Open(context.Background(), url, Options{Dialect: dwn.DialectEnbox, CallTimeout: stallTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Info(context.Background())
	var stall *wire.StallError
	if !dwn.IsTransient(err) || !errors.As(err, &stall) || stall.After != stallTimeout {
		t.Fatalf("got %v, want a Transient error from the watchdog armed with the %v CallTimeout", err, stallTimeout)
	}

	c2, err := Open(context.Background(), url, Options{Dialect: dwn.DialectEnbox}) // default 30 s
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stallTimeout)
	defer cancel()
	_, err = c2.Info(ctx)
	if !dwn.IsTransient(err) || wire.IsStall(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the caller's deadline (not the watchdog) to end the call", err)
	}
}
