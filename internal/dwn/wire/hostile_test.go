package wire

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestHostileFrameFlood is the WebSocket part of issue 10 §5's hostile server (the HTTP parts
// are dialect's TestHostileServer): each flood ends with a short error naming its bound.
func TestHostileFrameFlood(t *testing.T) {
	if err := hostileFrameFlood(t); err != nil && len(err.Error()) > 2048 {
		t.Errorf("the flood's error is %d bytes long", len(err.Error()))
	}
}

// hostileFrameFlood floods one subscription with frames its consumer never reads, and sends
// one over-sized frame on another socket: each ends with an error naming its bound, and a
// subscription on a healthy socket keeps receiving.
func hostileFrameFlood(t *testing.T) error {
	t.Helper()
	flood, calm := wsNewFake(t), wsNewFake(t)
	flood.setAuto(wsAutoOK)
	calm.setAuto(wsAutoOK)
	fm := wsNewTestMux(t, flood, MuxOptions{})
	cm := wsNewTestMux(t, calm, MuxOptions{})
	victim := wsMustSubscribe(t, fm, "did:example:flooded")
	steady := wsMustSubscribe(t, cm, "did:example:steady")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := flood.conn(0)
		for k := range 400 { // 400 × 64 KB = 25 MB at a consumer that reads nothing
			c.sendRaw(wsPaddedEvent(victim.ID(), k, 64<<10))
			if victim.Err() != nil {
				return
			}
		}
	}()
	for k := range 20 {
		calm.conn(0).sendRaw(wsWeb5Event(steady.ID(), k))
		f := wsRecvFrame(t, steady)
		steady.Release(&f)
		if n := wsFrameN(t, f); n != k {
			t.Fatalf("steady frame %d: n=%d", k, n)
		}
	}
	floodErr, kept := wsWaitEnded(t, victim)
	wg.Wait()
	if !errors.Is(floodErr, errWSOverflow) || kept*(64<<10) > 2*wsDefaultBufferBytes {
		t.Errorf("flood: %v after %d buffered frames, want an overflow within the byte budget", floodErr, kept)
	}
	big := wsMustSubscribe(t, fm, "did:example:big")
	flood.conn(0).sendRaw(wsPaddedEvent(big.ID(), 1, 4<<20))
	bigErr, _ := wsWaitEnded(t, big)
	if !strings.Contains(fmt.Sprint(bigErr), "exceeded dwnsync's bound") {
		t.Errorf("a 4 MiB frame: %v", bigErr)
	}
	calm.conn(0).sendRaw(wsWeb5Event(steady.ID(), 99))
	if n := wsFrameN(t, wsRecvFrame(t, steady)); n != 99 {
		t.Fatalf("steady after the flood: n=%d", n)
	}
	return errors.Join(floodErr, bigErr)
}
