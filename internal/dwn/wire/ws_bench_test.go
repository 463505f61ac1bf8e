package wire

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// wsBenchMessage is a signed message of realistic shape and size (a RecordsWrite descriptor
// signed by a did:jwk signer: ~1.2 KB of JSON).
func wsBenchMessage(b *testing.B) json.RawMessage {
	b.Helper()
	signer, _, err := msg.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	msg, err := signer.SignDescriptor(map[string]any{
		"interface":        "Records",
		"method":           "Write",
		"protocol":         "https://dwnsync.test/protocols/seed",
		"protocolPath":     "note",
		"schema":           "https://dwnsync.test/schemas/note",
		"dataFormat":       "application/json",
		"dataCid":          "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
		"dataSize":         812,
		"dateCreated":      "2026-11-24T14:12:27.248547Z",
		"messageTimestamp": "2026-11-24T14:12:27.248547Z",
	})
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

func BenchmarkWSFrameDecode(b *testing.B) {
	msg := string(wsBenchMessage(b))
	inline := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 812)))
	frames := map[string]string{
		"web5-event": `{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"event":{"message":` + msg + `}}}`,
		"enbox-event-inline-data": `{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"subscription":{"type":"event",` +
			`"cursor":{"streamId":"6742201863cf8f21","epoch":"01JD6Z","position":"1234567","messageCid":"bafyreidzgkxq6o2byeaxm2pcc355xhbaapxwfnydalsenjkfdo4gov6y2u"},` +
			`"event":{"message":` + msg + `},"seq":"1234567","messageCid":"bafyreidzgkxq6o2byeaxm2pcc355xhbaapxwfnydalsenjkfdo4gov6y2u",` +
			`"isLatestBaseState":true,"protocol":"https://dwnsync.test/protocols/seed","encodedData":"` + inline + `"}}}`,
		"enbox-eose":      `{"jsonrpc":"2.0","id":"` + wsFuzzSubID + `","result":{"subscription":{"type":"eose","cursor":{"streamId":"6742201863cf8f21","epoch":"01JD6Z","position":"1234567"}}}}`,
		"subscribe-reply": `{"jsonrpc":"2.0","id":"70b7a0ad-601e-4caa-bc5d-d2516bf00557","result":{"reply":{"status":{"code":200,"detail":"OK"},"subscription":{"id":"bafyreiclpqwulns72edz2gkqditaowdkvcyvmgmhued6r33lslojfdb3km"}}}}`,
	}
	for _, name := range []string{"web5-event", "enbox-event-inline-data", "enbox-eose", "subscribe-reply"} {
		data := []byte(frames[name])
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeWSFrame(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWSFanIn1000 pushes events to 1,000 subscriptions multiplexed on one socket to a
// local server (round-robin, the way many tenants' events interleave) and measures delivered
// frames per second end to end: server write → socket → decode → demux → consumer goroutine.
func BenchmarkWSFanIn1000(b *testing.B) {
	const subs = 1000
	f := wsNewFake(b)
	f.setAuto(wsAutoOK)
	m, err := NewMux(f.srv.URL, MuxOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	msg := string(wsBenchMessage(b))
	frames := make([][]byte, subs)
	var received atomic.Int64
	all := make(chan struct{})
	var target atomic.Int64
	var consumers sync.WaitGroup
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range subs {
		s, _, err := m.Subscribe(ctx, wsTestParams(fmt.Sprintf("did:example:tenant%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		frames[i] = []byte(`{"jsonrpc":"2.0","id":"` + s.ID() + `","result":{"event":{"message":` + msg + `}}}`)
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			for range s.Frames() {
				if received.Add(1) == target.Load() {
					close(all)
				}
			}
		}()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if f.upgrades.Load() != 1 {
		b.Fatalf("%d sockets for %d subscriptions", f.upgrades.Load(), subs)
	}
	c := f.conn(0)
	target.Store(int64(b.N))
	b.SetBytes(int64(len(frames[0])))
	b.ResetTimer()
	start := time.Now()
	go func() {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		for i := range b.N {
			if err := c.ws.WriteMessage(1, frames[i%subs]); err != nil {
				return
			}
		}
	}()
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatalf("received %d of %d frames: %+v", received.Load(), b.N, m.Stats())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	// Heap per open subscription, client and fake server together (the server side is small).
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/subs, "heap-B/sub")
	if st := m.Stats(); st.Overflows != 0 || st.GarbageFrames != 0 {
		b.Fatalf("stats %+v: want no overflow, no garbage", st)
	}
	_ = m.Close()
	consumers.Wait()
}
