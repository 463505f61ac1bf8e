package wire

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/wire/wiretest"
)

// A server that sends one byte every 59 s never trips the 60 s idle timeout; the transfer-rate
// floor ends it as Transient once a window has passed. Driven by a fake clock: each byte is
// sent only after the clock moved 59 s, so the reader sees the time pass.
func TestRPCTrickleFailsAtMinimumRate(t *testing.T) {
	next := make(chan struct{})
	url := wiretest.StallingServer(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) { wiretest.TrickleData(w, r, next) })
	clk := clocktesting.NewFakeClock(time.Now())
	c := &RPC{Endpoint: url, Shown: url, HTTP: NewHTTPClient(defaultEgress()), Clock: clk, Retries: DefaultRetries,
		CallTimeout: DefaultCallTimeout, IdleTimeout: DefaultIdleTimeout, MinRate: DefaultMinTransferRate}
	_, body, err := c.ProcessMessage(context.Background(), "MessagesRead", "did:jwk:t", []byte(`{}`), nil, 0)
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
			if !dwn.IsTransient(err) || IsStall(err) || !strings.Contains(err.Error(), "below dwnsync's minimum of 4096 bytes/s") {
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
