package dialect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCID is a distinct, valid dag-cbor CIDv1 (base32, 59 characters) for each i: the
// binary form (version 1, dag-cbor, sha2-256, 32 bytes) written out in base32.
func testCID(i int) string {
	b := []byte{1, 0x71, 0x12, 32, 27: 0, 35: 0}
	binary.BigEndian.PutUint64(b[4:], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(b[28:], uint64(i))
	return "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// writeListing writes a web5 MessagesQuery JSON-RPC reply of n CIDs to w as a stream (never
// held whole), ending with the cursor of the last one. It returns the bytes written.
func writeListing(w io.Writer, n int) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	fmt.Fprint(cw, `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entries":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			cw.WriteString(",")
		}
		cw.WriteString(`"` + testCID(i) + `"`)
	}
	fmt.Fprintf(cw, `],"cursor":{"messageCid":%q,"value":"v%d"}}}}`, testCID(n-1), n)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func (c *countingWriter) WriteString(s string) { _, _ = c.Write([]byte(s)) }

// A listing streams: decoding N more entries costs O(1) allocations each (the CID string the
// callback receives), whatever the reply's size.
func TestListingDecodeAllocsPerEntry(t *testing.T) {
	body := func(n int) []byte {
		var b bytes.Buffer
		if _, err := writeListing(&b, n); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	const n = 20000
	small, large := body(n), body(2*n)
	allocs := func(b []byte) float64 {
		var set msg.CIDSet
		return testing.AllocsPerRun(3, func() {
			set = msg.CIDSet{}
			reduced, err := readJSONReply(&replyBody{r: bytes.NewReader(b), limit: maxListingReply}, func(raw json.RawMessage) error {
				cid, err := listingEntryCID(raw)
				set.Add(cid)
				return err
			})
			if err != nil || bytes.Contains(reduced, []byte(testCID(1))) {
				t.Fatalf("decode: %v (reduced reply %d bytes must not hold entries)", err, len(reduced))
			}
		})
	}
	perEntry := (allocs(large) - allocs(small)) / n
	t.Logf("%.2f allocations per extra entry", perEntry)
	// One is the CID string handed to the callback; the rest are json.Decoder's fixed cost per
	// value (it builds an error value at the end of each one). What matters: a constant.
	if perEntry > 6 {
		t.Fatalf("%.2f allocations per entry beyond the first %d: a listing must decode as a stream", perEntry, n)
	}
}

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
		written, _ := writeListing(w, n)
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
	set, err := dwn.ListCIDSet(context.Background(), tn, dwn.Scope{})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	grew := int64(<-peak) - int64(before.HeapAlloc)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("reply %d MiB, %d CIDs; heap grew by at most %d MiB; the set holds %d MiB", sent>>20, set.Len(), grew>>20, set.Bytes()>>20)
	if set.Len() != n || !set.Has(testCID(n-1)) {
		t.Fatalf("set has %d CIDs, want %d", set.Len(), n)
	}
	if grew > 2*sent {
		t.Fatalf("heap grew by %d MiB for a %d MiB reply: want under 2× the reply", grew>>20, sent>>20)
	}
}

// Going over a bound ends the call with a clear Permanent error, not the process.
func TestReplyBoundsEndTheCall(t *testing.T) {
	var b bytes.Buffer
	if _, err := writeListing(&b, 1000); err != nil {
		t.Fatal(err)
	}
	_, err := readJSONReply(&replyBody{r: bytes.NewReader(b.Bytes()), limit: 10000}, func(json.RawMessage) error { return nil })
	if !errors.Is(err, errReplyTooLarge) {
		t.Fatalf("over the size cap: %v", err)
	}
	// A kept (non-listing) reply over maxJSONReply, served as an endless stream.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = writeListing(w, maxJSONReply/62+1000)
	}))
	defer srv.Close()
	tn := openTestTenant(t, srv.URL, Options{CallTimeout: 10 * time.Minute}) // -race decodes slowly
	_, err = tn.Read(context.Background(), testCID(1))
	if err == nil || dwn.IsTransient(err) || !strings.Contains(err.Error(), "exceeds dwnsync's bound") {
		t.Fatalf("a %d MiB MessagesRead reply: %v, want a Permanent error naming the bound", maxJSONReply>>20, err)
	}
}
