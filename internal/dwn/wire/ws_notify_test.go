package wire

import (
	"fmt"
	"testing"
	"time"
)

// A consumer that drains on notify finds every frame in Frames by the time it is told, and is
// told once more when the subscription ends: it needs no goroutine waiting on Frames.
func TestWSNotifyFollowsEveryFrameAndTheEnd(t *testing.T) {
	f := wsNewFake(t)
	f.setAuto(wsAutoOK)
	m := wsNewTestMux(t, f, MuxOptions{})
	s := wsMustSubscribe(t, m, "did:example:a")

	told := make(chan struct{}, 64)
	wait := func(what string) {
		t.Helper()
		select {
		case <-told:
		case <-time.After(10 * time.Second):
			t.Fatalf("no notify for %s within 10 s", what)
		}
	}
	s.SetNotify(func() { told <- struct{}{} })
	wait("registration") // called once right away, so earlier frames are not missed

	c := f.conn(0)
	for pos := 1; pos <= 3; pos++ {
		c.sendRaw(wsEnboxEvent(s.ID(), pos))
		wait(fmt.Sprintf("frame %d", pos))
		select { // already there: the notify follows the frame, never precedes it
		case fr := <-s.Frames():
			if fr == nil || wsFrameN(t, *fr) != pos {
				t.Fatalf("after notify %d: got %+v", pos, fr)
			}
			s.Release(fr)
		default:
			t.Fatalf("notified of frame %d before it was in Frames", pos)
		}
	}
	c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"type":"error","error":{"code":"SubscriptionBufferOverflow","detail":"too slow"}}}}`, s.ID()))
	wait("the end")
	select {
	case fr, ok := <-s.Frames():
		if ok {
			t.Fatalf("want Frames closed after the end notify, got %+v", fr)
		}
	default:
		t.Fatal("notified of the end before Frames was closed")
	}
	if s.Err() == nil {
		t.Fatal("ended subscription has no Err")
	}
}
