package dialect

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/dwn/wire/wiretest"
)

// TestHostileServer is issue 10 §5's hostile server, on 127.0.0.1 only: a redirect to a fake
// metadata service, 100 MB replies (generated as streams), a trickle and a WebSocket frame
// flood. No secret text reaches an error, the heap stays bounded, and a client of a healthy
// server keeps working all the while.
func TestHostileServer(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MB")
	}
	meta, metaHits := fakeMetadata(t)
	const hundredMB = 100 << 20
	trickle := make(chan struct{})
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.Trim(r.URL.Path, "/") { // the client posts to <endpoint>/
		case "redirect":
			http.Redirect(w, r, meta.URL+"/latest/meta-data/iam/security-credentials/", http.StatusTemporaryRedirect)
		case "huge-value": // a listing whose status detail is one 100 MB string
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"`)
			_, _ = io.Copy(w, io.LimitReader(repeatReader(fakeSecret+" "), hundredMB))
			_, _ = io.WriteString(w, `"},"entries":[]}}}`)
		case "huge-junk": // 100 MB that is not JSON at all
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.Copy(w, io.LimitReader(repeatReader(fakeSecret+"\n"), hundredMB))
		case "trickle":
			wiretest.TrickleData(w, r, trickle)
		}
	}))
	defer hostile.Close()

	// The healthy server and its client, polled throughout.
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = wiretest.WriteListing(w, 3)
	}))
	defer healthy.Close()
	good := openTestTenant(t, healthy.URL, Options{})
	var goodCalls atomic.Int64
	stopGood := make(chan struct{})
	goodDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopGood:
				goodDone <- nil
				return
			default:
			}
			cids, err := good.ListCIDs(context.Background(), dwn.Scope{})
			if err != nil || len(cids) != 3 {
				goodDone <- fmt.Errorf("healthy listing: %v %v", cids, err)
				return
			}
			goodCalls.Add(1)
		}
	}()

	var errs []error
	heapBefore := heapInUse()
	stopPeak := make(chan struct{})
	peak := heapPeak(stopPeak)
	at := func(mode string) dwn.Tenant { return openTestTenant(t, hostile.URL+"/"+mode, Options{}) }

	_, err := at("redirect").ListCIDs(context.Background(), dwn.Scope{})
	errs = append(errs, err)
	if err == nil || !strings.Contains(err.Error(), "redirects are refused") {
		t.Errorf("redirect: %v", err)
	}
	_, err = at("huge-value").ListCIDs(context.Background(), dwn.Scope{})
	errs = append(errs, err)
	if err == nil || dwn.IsTransient(err) || !strings.Contains(err.Error(), "exceeds dwnsync's bound") {
		t.Errorf("a listing with a 100 MB value: %v, want a Permanent bound error", err)
	}
	_, err = at("huge-value").Read(context.Background(), wiretest.CID(1))
	errs = append(errs, err)
	if err == nil || dwn.IsTransient(err) || !strings.Contains(err.Error(), "exceeds dwnsync's bound") {
		t.Errorf("a 100 MB MessagesRead reply: %v, want a Permanent bound error", err)
	}
	_, err = at("huge-junk").ListCIDs(context.Background(), dwn.Scope{})
	errs = append(errs, err)
	if err == nil || !strings.Contains(err.Error(), "non-DWN reply: HTTP 200, content-type text/plain") {
		t.Errorf("100 MB of text: %v", err)
	}
	close(stopPeak)
	// A kept reply costs up to ~3× maxJSONReply while it decodes (the decoder's buffer doubles),
	// listings O(1); the rest is the GC's slack and the healthy client's garbage. Holding one
	// 100 MB reply would already exceed this.
	grew := int64(<-peak) - int64(heapBefore)
	t.Logf("heap grew by at most %d MiB while 100 MB replies were refused", grew>>20)
	if grew > 6*wire.MaxJSONReply {
		t.Errorf("the heap grew by %d MiB serving 100 MB replies; want under %d MiB", grew>>20, 6*wire.MaxJSONReply>>20)
	}

	errs = append(errs, hostileTrickle(t, hostile.URL+"/trickle", trickle))

	close(stopGood)
	if err := <-goodDone; err != nil {
		t.Fatal(err)
	}
	if goodCalls.Load() == 0 {
		t.Fatal("the healthy client made no call while the hostile server was served")
	}
	for i, err := range errs {
		if err != nil && (strings.Contains(err.Error(), "AccessKeyId") || strings.Contains(err.Error(), "SecretAccessKey")) {
			t.Errorf("error %d carries the metadata secret: %.300s", i, err)
		}
		if err != nil && len(err.Error()) > 2048 {
			t.Errorf("error %d is %d bytes long", i, len(err.Error()))
		}
	}
	if n := metaHits.Load(); n != 0 {
		t.Fatalf("the fake metadata service was reached %d times", n)
	}
}

// hostileTrickle reads a one-byte-per-59-s data stream on a fake clock until the rate floor
// ends it, and returns that error.
func hostileTrickle(t *testing.T, url string, next chan<- struct{}) error {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Now())
	c, err := Open(context.Background(), url, Options{Dialect: dwn.DialectWeb5, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.setInfo(ServerInfo{}) // no /info round trip on the fake clock
	_, body, err := c.rpc.ProcessMessage(context.Background(), "MessagesRead", "did:jwk:t", []byte(`{}`), nil, 0)
	if err != nil {
		t.Fatalf("trickle: %v", err)
	}
	defer body.Close()
	buf := make([]byte, 16)
	for i := 0; i < 5; i++ {
		clk.Step(59 * time.Second)
		select {
		case next <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("the trickle server is not streaming")
		}
		if _, err := body.Read(buf); err != nil {
			if !dwn.IsTransient(err) || !strings.Contains(err.Error(), "minimum") {
				t.Errorf("trickle ended with %v, want the Transient rate floor", err)
			}
			return err
		}
	}
	t.Error("a trickle of one byte per 59 s was never ended")
	return nil
}

// repeatReader repeats s forever (bound it with io.LimitReader).
type repeatReader string

func (r repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r)
	}
	return n, nil
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
