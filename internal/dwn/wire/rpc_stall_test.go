package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/wire/wiretest"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// Stall tests: a server that stops halfway must fail the call as Transient within the
// configured timeout. The timeouts are short (stallTimeout) so no test waits long. A test
// never measures how long the call took (a loaded machine stretches any duration): the
// *StallError the watchdog alone creates, carrying its timeout, shows the watchdog ended it.

const stallTimeout = 300 * time.Millisecond

func stallClient(url string, clk clock.Clock) *RPC {
	return &RPC{Endpoint: url, Shown: url, HTTP: NewHTTPClient(defaultEgress()), Clock: clk, Retries: DefaultRetries,
		CallTimeout: stallTimeout, IdleTimeout: stallTimeout}
}

// wantStall checks err is a Transient *Error caused by the watchdog at stage, armed with the
// configured stallTimeout (so the watchdog, not something else, ended the call).
func wantStall(t *testing.T, err error, stage string) {
	t.Helper()
	var s *StallError
	if !dwn.IsTransient(err) || !errors.As(err, &s) || s.Stage != stage {
		t.Fatalf("got %v, want a Transient error from the %q watchdog", err, stage)
	}
	if s.After != stallTimeout {
		t.Fatalf("the %q watchdog fired after %v, want the configured %v", stage, s.After, stallTimeout)
	}
}

func TestRPCStallNoReplyFailsAtCallTimeout(t *testing.T) {
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		wiretest.Hold(r, release) // never answers
	})
	c := stallClient(url, clock.RealClock{})
	_, _, err := c.ProcessMessage(context.Background(), "MessagesQuery", "did:jwk:t", []byte(`{}`), nil, 0)
	wantStall(t, err, stallReply)
}

func TestRPCStallHeadersThenNothingFailsAtCallTimeout(t *testing.T) {
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "500")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"reply":`)) // a JSON body cut short
		w.(http.Flusher).Flush()
		wiretest.Hold(r, release)
	})
	c := stallClient(url, clock.RealClock{})
	_, _, err := c.ProcessMessage(context.Background(), "MessagesQuery", "did:jwk:t", []byte(`{}`), nil, 0)
	wantStall(t, err, stallReply)
	if !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("error %q does not say it timed out", err)
	}
}

func TestRPCStallHalfADataBodyFailsTheRead(t *testing.T) {
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.Header().Set(headerDWNResponse, wiretest.StreamedReply)
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(make([]byte, 500))
		w.(http.Flusher).Flush()
		wiretest.Hold(r, release)
	})
	c := stallClient(url, clock.RealClock{})
	_, body, err := c.ProcessMessage(context.Background(), "MessagesRead", "did:jwk:t", []byte(`{}`), nil, 0)
	if err != nil || body == nil {
		t.Fatalf("err %v body %v", err, body)
	}
	defer body.Close()
	got, err := io.ReadAll(NewExactReader(body, 1000))
	wantStall(t, err, stallData)
	if len(got) != 500 {
		t.Fatalf("read %d bytes before the stall, want 500", len(got))
	}
}

func TestRPCStallServerStopsReadingUpload(t *testing.T) {
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		wiretest.Hold(r, release) // never reads the body: the socket buffers fill, then writes block
	})
	c := stallClient(url, clock.RealClock{})
	const size = 1 << 30 // far more than loopback socket buffers hold
	_, _, err := c.ProcessMessage(context.Background(), "RecordsWrite", "did:jwk:t", []byte(`{}`),
		io.LimitReader(zeros{}, size), size)
	wantStall(t, err, stallUpload)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A stream that keeps moving is never cut, however long it takes in total: the idle timer
// restarts with every chunk. Driven by a fake clock: 10 gaps of 3/4 of the idle timeout.
func TestRPCSlowSteadyStreamSurvivesIdleTimeout(t *testing.T) {
	next := make(chan struct{})
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.Header().Set(headerDWNResponse, wiretest.StreamedReply)
		w.Header().Set("Content-Length", "1000")
		w.(http.Flusher).Flush()
		for range 10 {
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	clk := waittest.NewClock(time.Now())
	c := stallClient(url, clk)
	_, body, err := c.ProcessMessage(context.Background(), "MessagesRead", "did:jwk:t", []byte(`{}`), nil, 0)
	if err != nil || body == nil {
		t.Fatalf("err %v body %v", err, body)
	}
	defer body.Close()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	progress := make(chan int, 16) // bytes read so far, after every Read that returned some
	go func() {
		total, buf := 0, make([]byte, 4096)
		for {
			n, err := body.Read(buf)
			total += n
			if n > 0 {
				progress <- total
			}
			if err != nil {
				done <- result{total, err}
				return
			}
		}
	}()
	for i := range 10 {
		// The reader is blocked in Read with its idle timer armed; time passes, then a chunk,
		// which the reader must have taken (so the next wait sees its next Read's timer).
		clk.AwaitTimer(t, stallTimeout, fmt.Sprintf("the idle timer armed by blocked Read %d", i))
		clk.Step(stallTimeout * 3 / 4)
		select {
		case next <- struct{}{}:
		case r := <-done:
			t.Fatalf("stream ended after %d bytes before chunk %d: %v", r.n, i, r.err)
		}
		for got := 0; got < (i+1)*100; {
			select {
			case got = <-progress:
			case r := <-done:
				if r.n < (i+1)*100 {
					t.Fatalf("stream ended after %d bytes at chunk %d: %v", r.n, i, r.err)
				}
				got = r.n
				done <- r
			}
		}
	}
	r := <-done
	if r.err != io.EOF || r.n != 1000 {
		t.Fatalf("read %d bytes, err %v; want all 1000 after %v of fake time", r.n, r.err, 10*stallTimeout*3/4)
	}
}
