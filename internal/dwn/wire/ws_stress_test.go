package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// Many goroutines subscribe, read, ack and close while the server drops the socket every few
// subscriptions. Nothing may panic or deadlock (run with -race), every failure must be one the
// engine can classify, frames never cross subscriptions and stay in order, and closing the mux
// ends everything.
func TestWSStress(t *testing.T) {
	const workers, rounds, events, dropEvery = 8, 40, 3, 23
	f := wsNewFake(t)
	var subscribes atomic.Int64
	f.setAuto(func(c *fakeWSConn, r fakeWSRequest) bool {
		switch r.Method {
		case wsMethodSubscribe:
			c.replyStatus(r.ID, 200)
			for k := 1; k <= events; k++ {
				c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"event":{"message":{"descriptor":{"n":%d,"sub":%q}}}}}`, r.SubID, k, r.SubID))
			}
			if subscribes.Add(1)%dropEvery == 0 {
				_ = c.ws.Close()
			}
		case wsMethodClose:
			c.replyClose(r.ID)
		}
		return true // acks: no answer
	})
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	m := wsNewTestMux(t, f, MuxOptions{Clock: fc, MaxInFlight: 32,
		OnDialWait: func(d time.Duration) { fc.Step(d) }}) // backoff passes at once

	var wg sync.WaitGroup
	var opened, received, failedSub atomic.Int64
	var mu sync.Mutex
	var leftover []*Subscription
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				s, _, err := m.Subscribe(ctx, wsTestParams(fmt.Sprintf("did:example:w%d", w)))
				if err != nil {
					cancel()
					if !dwn.IsTransient(err) {
						t.Errorf("worker %d round %d: subscribe: %v (not transient)", w, i, err)
					}
					failedSub.Add(1)
					continue
				}
				opened.Add(1)
				last := 0
			read:
				for last < events {
					select {
					case fr, ok := <-s.Frames():
						if !ok {
							break read
						}
						var msg struct {
							Descriptor struct {
								N   int    `json:"n"`
								Sub string `json:"sub"`
							} `json:"descriptor"`
						}
						if err := json.Unmarshal(fr.Message, &msg); err != nil || msg.Descriptor.Sub != s.ID() || msg.Descriptor.N != last+1 {
							t.Errorf("subscription %s got %s after n=%d", s.ID(), fr.Message, last)
						}
						last = msg.Descriptor.N
						received.Add(1)
						_ = s.Ack(json.RawMessage(`{"streamId":"s","epoch":"e","position":"1"}`))
					case <-ctx.Done():
						t.Errorf("subscription %s: stuck after %d frames", s.ID(), last)
						break read
					}
				}
				if err := s.Err(); err != nil && !dwn.IsTransient(err) {
					t.Errorf("subscription ended with %v (not transient)", err)
				}
				if i%2 == 0 {
					_ = s.Close(ctx) // the other half is left for mux.Close
				} else {
					mu.Lock()
					leftover = append(leftover, s)
					mu.Unlock()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	_ = m.Close()
	for _, s := range leftover {
		if err, _ := wsWaitEnded(t, s); err == nil {
			t.Fatalf("subscription %s has no terminal error after mux Close", s.ID())
		}
	}
	st := m.Stats()
	t.Logf("opened %d, subscribe failures %d, frames %d, stats %+v", opened.Load(), failedSub.Load(), received.Load(), st)
	if opened.Load() < workers*rounds/2 || st.ConnectionsLost == 0 || st.GarbageFrames != 0 {
		t.Fatalf("opened %d of %d, %d losses, %d garbage: the stress did not exercise what it should", opened.Load(), workers*rounds, st.ConnectionsLost, st.GarbageFrames)
	}
	if _, _, err := m.Subscribe(wsCtx(t), wsTestParams("did:example:late")); !errors.Is(err, errWSMuxClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
