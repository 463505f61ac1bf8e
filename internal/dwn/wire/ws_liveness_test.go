package wire

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

func TestWSBackoffSchedule(t *testing.T) {
	cases := []struct {
		jitter float64
		n      int
		want   time.Duration
	}{
		{0.5, 1, 1 * time.Second}, {0.5, 2, 2 * time.Second}, {0.5, 3, 4 * time.Second},
		{0.5, 5, 16 * time.Second}, {0.5, 6, 30 * time.Second}, {0.5, 60, 30 * time.Second},
		{0, 1, 800 * time.Millisecond}, {0, 6, 24 * time.Second},
		{0.9999999, 1, 1200 * time.Millisecond}, {0.9999999, 5, 19200 * time.Millisecond},
		{0.9999999, 6, 30 * time.Second}, // 36 s capped
	}
	for _, tc := range cases {
		m, err := NewMux("http://127.0.0.1:1", MuxOptions{Jitter: func() float64 { return tc.jitter }})
		if err != nil {
			t.Fatal(err)
		}
		got := m.backoff(tc.n)
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("backoff(%d) with jitter %v = %s, want %s", tc.n, tc.jitter, got, tc.want)
		}
		if got > wsBackoffMax {
			t.Errorf("backoff(%d) = %s exceeds the cap", tc.n, got)
		}
	}
}

// A lost socket ends every subscription on it with a transient disconnected error; the next
// Subscribe redials only after the backoff (fake clock), one dial for many callers, doubling on
// repeated failures and starting over after a stable connection.
func TestWSDisconnectAndBackoff(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	waits := make(chan time.Duration, 16)
	m := wsNewTestMux(t, f, MuxOptions{Clock: fc, Jitter: func() float64 { return 0.5 }, // factor exactly 1
		OnDialWait: func(d time.Duration) { waits <- d }})

	subscribe := func() (*Subscription, error) {
		s, _, err := m.Subscribe(wsCtx(t), wsTestParams("did:example:alice"))
		return s, err
	}
	nextWait := func(want time.Duration) {
		t.Helper()
		select {
		case got := <-waits:
			if got != want {
				t.Fatalf("dial waits %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no dial wait of %s within 10 s", want)
		}
	}

	s1, err := subscribe()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := subscribe()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-waits:
		t.Fatalf("first dial waited %s; want no wait", d)
	default:
	}

	// 1. the server drops the socket
	_ = f.conn(0).ws.Close()
	for _, s := range []*Subscription{s1, s2} {
		err, _ := wsWaitEnded(t, s)
		if !errors.Is(err, ErrDisconnected) || !dwn.IsTransient(err) {
			t.Fatalf("after loss: %v; want a transient ErrDisconnected", err)
		}
	}

	// 2. five callers resubscribe at once: one dial, after 1 s
	const callers = 5
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := subscribe()
			errs <- err
		}()
	}
	nextWait(time.Second)
	fc.Step(999 * time.Millisecond)
	if n := f.upgrades.Load(); n != 1 {
		t.Fatalf("%d dials before the backoff passed", n)
	}
	fc.Step(time.Millisecond)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.upgrades.Load(); n != 2 {
		t.Fatalf("%d sockets after reconnect, want 2 (one dial for %d callers)", n, callers)
	}

	// 3. lost again at once (unstable): 2 s; the dial is refused: 4 s next
	_ = f.conn(1).ws.Close()
	wsEventually(t, "loss noticed", func() bool { return m.Stats().ConnectionsLost == 2 })
	f.refuse.Store(true)
	errc := make(chan error, 1)
	go func() { _, err := subscribe(); errc <- err }()
	nextWait(2 * time.Second)
	fc.Step(2 * time.Second)
	if err := <-errc; !errors.Is(err, ErrDisconnected) || !dwn.IsTransient(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("refused dial: %v; want a transient error naming HTTP 503", err)
	}
	f.refuse.Store(false)
	go func() { _, err := subscribe(); errc <- err }()
	nextWait(4 * time.Second)
	fc.Step(4 * time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// 4. a socket that lived ≥ 30 s resets the schedule to 1 s
	fc.Step(31 * time.Second)
	_ = f.conn(2).ws.Close()
	wsEventually(t, "loss noticed", func() bool { return m.Stats().ConnectionsLost == 3 })
	go func() { _, err := subscribe(); errc <- err }()
	nextWait(time.Second)
	fc.Step(time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.Dials != 5 || st.DialFailures != 1 || f.upgrades.Load() != 4 {
		t.Fatalf("stats %+v, upgrades %d: want 5 dials, 1 failure, 4 sockets", st, f.upgrades.Load())
	}
}

// The client answers server pings, pings on its interval, and declares the socket dead when
// nothing came back for ReadTimeout (checked on the fake clock).
func TestWSPingAndReadDeadline(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	m := wsNewTestMux(t, f, MuxOptions{Clock: fc, PingInterval: 20 * time.Second}) // ReadTimeout 40 s
	s := wsMustSubscribe(t, m, "did:example:alice")
	c := f.conn(0)

	// Server ping → client pong.
	c.wmu.Lock()
	err := c.ws.WriteControl(websocket.PingMessage, []byte("srv"), time.Now().Add(5*time.Second))
	c.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.pongs:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not answer the server's ping")
	}

	// Healthy: after each tick the server pongs and then sends a marker frame, so seeing the
	// marker means the client has processed the pong.
	marker := []byte(wsWeb5Event(s.ID(), 1))
	c.afterPong.Store(&marker)
	for i := 1; i <= 2; i++ {
		fc.Step(20 * time.Second)
		if n := wsFrameN(t, wsRecvFrame(t, s)); n != 1 {
			t.Fatalf("marker n=%d", n)
		}
		wsEventually(t, "ping counted", func() bool { return m.Stats().PingsSent == int64(i) })
	}

	// Dead peer: pings go unanswered.
	c.stallPongs.Store(true)
	fc.Step(20 * time.Second) // 20 s of silence: still alive, one more ping
	wsEventually(t, "third ping sent", func() bool { return m.Stats().PingsSent == 3 })
	if s.Err() != nil {
		t.Fatalf("ended after 20 s of silence: %v", s.Err())
	}
	fc.Step(20 * time.Second) // 40 s of silence = ReadTimeout
	err, _ = wsWaitEnded(t, s)
	if !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "read deadline") {
		t.Fatalf("after 40 s of silence: %v; want ErrDisconnected naming the read deadline", err)
	}
	if st := m.Stats(); st.ConnectionsLost != 1 {
		t.Fatalf("stats %+v: want 1 loss", st)
	}
}
