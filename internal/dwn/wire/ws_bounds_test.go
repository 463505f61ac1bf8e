package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// wsPaddedEvent is a web5 event frame carrying n whose message is padded to about size bytes.
func wsPaddedEvent(subID string, n, size int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"event":{"message":{"descriptor":{"interface":"Records","method":"Write","n":%d},"pad":%q}}}}`,
		subID, n, strings.Repeat("x", size))
}

// A frame over MaxFrameBytes (default 1 MiB) ends the socket with an error naming the bound;
// the mux redials and a new subscription works.
func TestWSFrameOverBoundEndsSocket(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	m := wsNewTestMux(t, f, MuxOptions{})
	if m.opts.MaxFrameBytes != 1<<20 {
		t.Fatalf("default MaxFrameBytes %d, want 1 MiB", m.opts.MaxFrameBytes)
	}
	sub := wsMustSubscribe(t, m, "did:example:big")
	f.conn(0).sendRaw(wsPaddedEvent(sub.ID(), 1, 2<<20))
	err, _ := wsWaitEnded(t, sub)
	if !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "exceeded dwnsync's bound of 1048576 bytes") {
		t.Fatalf("a 2 MiB frame ended the subscription with %v, want a lost socket naming the bound", err)
	}
	again := wsMustSubscribe(t, m, "did:example:big")
	f.conn(1).sendRaw(wsPaddedEvent(again.ID(), 2, 30000)) // the largest real event fits
	if n := wsFrameN(t, wsRecvFrame(t, again)); n != 2 {
		t.Fatalf("after the redial: n=%d", n)
	}
}

// A subscription whose consumer holds more than BufferBytes of frames ends alone, with an error
// naming the byte bound, even though its frame count is far below Buffer; its neighbour, which
// consumes (and releases) as it goes, keeps working.
func TestWSSubscriptionByteBudget(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	const budget = 256 << 10
	m := wsNewTestMux(t, f, MuxOptions{Buffer: 128, BufferBytes: budget})
	slow := wsMustSubscribe(t, m, "did:example:slow")
	fast := wsMustSubscribe(t, m, "did:example:fast")
	c := f.conn(0)
	for k := range 8 { // 8 × 64 KB = 512 KB, twice the budget, in 8 of 128 frame slots
		c.sendRaw(wsPaddedEvent(slow.ID(), k, 64<<10))
	}
	for k := range 8 {
		c.sendRaw(wsPaddedEvent(fast.ID(), k, 64<<10))
		got := wsRecvFrame(t, fast)
		fast.Release(&got)
		if n := wsFrameN(t, got); n != k {
			t.Fatalf("fast frame %d: n=%d", k, n)
		}
	}
	err, drained := wsWaitEnded(t, slow)
	if !errors.Is(err, errWSOverflow) || !dwn.IsTransient(err) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes", budget)) {
		t.Fatalf("slow ended with %v; want a transient overflow naming the byte bound", err)
	}
	if drained < 1 || drained > 4 {
		t.Fatalf("slow kept %d frames of 64 KB under a 256 KB budget", drained)
	}
	if st := m.Stats(); st.ActiveSubscriptions != 1 {
		t.Fatalf("stats %+v: want fast still subscribed", st)
	}
}
