package dialect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// A server that sends one byte every 59 s never trips the 60 s idle timeout; the transfer-rate
// floor ends it as Transient once a window has passed. Driven by a fake clock: each byte is
// sent only after the clock moved 59 s, so the reader sees the time pass.
func TestRPCTrickleFailsAtMinimumRate(t *testing.T) {
	next := make(chan struct{})
	url := stallingServer(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) { trickleData(w, r, next) })
	clk := clocktesting.NewFakeClock(time.Now())
	c := &rpcClient{endpoint: url, shown: url, http: newHTTPClient(defaultEgress()), clock: clk, retries: defaultRetries,
		callTimeout: defaultCallTimeout, idleTimeout: defaultIdleTimeout, minRate: defaultMinTransferRate}
	_, body, err := c.processMessage(context.Background(), "MessagesRead", "did:jwk:t", []byte(`{}`), nil, 0)
	if err != nil || body == nil {
		t.Fatalf("err %v body %v", err, body)
	}
	defer body.Close()
	buf := make([]byte, 64)
	for i := 1; i <= 5; i++ {
		clk.Step(59 * time.Second) // under the idle timeout: only the rate floor can end this
		next <- struct{}{}
		n, err := body.Read(buf)
		if err != nil {
			if !dwn.IsTransient(err) || isStall(err) || !strings.Contains(err.Error(), "below dwnsync's minimum of 4096 bytes/s") {
				t.Fatalf("byte %d: %v, want a Transient error naming the rate floor", i, err)
			}
			if i != 2 {
				t.Fatalf("the floor fired at byte %d (after %d s), want byte 2: the first full window", i, 59*i)
			}
			return
		}
		if n != 1 {
			t.Fatalf("byte %d: read %d bytes", i, n)
		}
	}
	t.Fatal("a stream of one byte per 59 s lived on for 5 bytes")
}

// The floor spares a stream that is slow but above it, over many windows.
func TestRateFloorSparesASteadyStream(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	f := newRateFloor(clk, 4096)
	for i := 0; i < 100; i++ {
		clk.Step(10 * time.Second)
		if err := f.add(50 << 10); err != nil { // 5 KiB/s
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if newRateFloor(clk, 0).add(1) != nil || newRateFloor(clk, -1) != nil {
		t.Fatal("a zero or negative floor must be off")
	}
	clk.Step(61 * time.Second)
	if err := f.add(1); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("a window with 1 byte: %v", err)
	}
}

// trickleData answers a MessagesRead with data, then sends one byte each time next fires.
func trickleData(w http.ResponseWriter, r *http.Request, next <-chan struct{}) {
	w.Header().Set(headerDWNResponse, streamedReply)
	w.Header().Set("Content-Length", "1000")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte{'x'})
		w.(http.Flusher).Flush()
	}
}

// A streamed listing that keeps moving may take longer than CallTimeout in total (a large web5
// tenant on a slow link): CallTimeout bounds each wait for bytes, not the whole reply. Fake
// clock: five chunks 20 s apart (100 s against a 30 s CallTimeout), each above the rate floor.
func TestListingSlowButSteadyOutlivesCallTimeout(t *testing.T) {
	const chunks, perChunk = 5, 1700 // 1,700 CIDs ≈ 105 KB a chunk: over 4 KiB/s for 20 s
	next := make(chan struct{})
	url := stallingServer(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
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
				_, _ = io.WriteString(w, `"`+testCID(i)+`"`)
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
