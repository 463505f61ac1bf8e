package wire

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dwnsync/dwnsync/internal/waittest"
)

// fakeWS is a scriptable JSON-RPC WebSocket server on 127.0.0.1 (httptest binds loopback). By
// default every inbound frame goes to Requests for the test to answer; Auto, when set, answers
// frames itself (returning true) before they reach Requests.
type fakeWS struct {
	t        testing.TB
	srv      *httptest.Server
	upgrades atomic.Int64
	refuse   atomic.Bool
	requests chan fakeWSRequest
	auto     atomic.Pointer[func(*fakeWSConn, fakeWSRequest) bool]

	mu    sync.Mutex
	conns []*fakeWSConn
}

type fakeWSConn struct {
	ws         *websocket.Conn
	wmu        sync.Mutex
	stallPongs atomic.Bool
	pings      atomic.Int64
	pongs      chan struct{}
	// afterPong, when set, is written right after answering a client ping (lets a test know
	// the client has processed that pong once it sees this frame).
	afterPong atomic.Pointer[[]byte]
}

type fakeWSRequest struct {
	Conn   *fakeWSConn
	Raw    []byte
	ID     json.RawMessage // absent for notifications
	Method string
	Params json.RawMessage
	SubID  string
}

func (r fakeWSRequest) id() string { return wsFrameID(r.ID) }

func wsNewFake(t testing.TB) *fakeWS {
	t.Helper()
	f := &fakeWS{t: t, requests: make(chan fakeWSRequest, 4096)}
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.refuse.Load() {
			http.Error(w, "refusing (test)", http.StatusServiceUnavailable)
			return
		}
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.upgrades.Add(1)
		c := &fakeWSConn{ws: ws, pongs: make(chan struct{}, 16)}
		ws.SetPingHandler(func(data string) error {
			c.pings.Add(1)
			if c.stallPongs.Load() {
				return nil // a dead peer: never answers
			}
			c.wmu.Lock()
			err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
			if p := c.afterPong.Load(); p != nil && err == nil {
				err = ws.WriteMessage(websocket.TextMessage, *p)
			}
			c.wmu.Unlock()
			return err
		})
		ws.SetPongHandler(func(string) error {
			select {
			case c.pongs <- struct{}{}:
			default:
			}
			return nil
		})
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		defer ws.Close()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var env struct {
				ID           json.RawMessage `json:"id"`
				Method       string          `json:"method"`
				Params       json.RawMessage `json:"params"`
				Subscription *struct {
					ID string `json:"id"`
				} `json:"subscription"`
			}
			if err := json.Unmarshal(data, &env); err != nil {
				t.Errorf("fake server got a frame that is not JSON: %q", data)
				continue
			}
			req := fakeWSRequest{Conn: c, Raw: data, ID: env.ID, Method: env.Method, Params: env.Params}
			if env.Subscription != nil {
				req.SubID = env.Subscription.ID
			}
			if a := f.auto.Load(); a != nil && (*a)(c, req) {
				continue
			}
			f.requests <- req
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWS) setAuto(fn func(*fakeWSConn, fakeWSRequest) bool) { f.auto.Store(&fn) }

// next returns the next request that Auto did not handle, failing the test after 10 s.
func (f *fakeWS) next() fakeWSRequest {
	f.t.Helper()
	select {
	case r := <-f.requests:
		return r
	case <-time.After(10 * time.Second):
		f.t.Fatal("fake server: no request within 10 s")
		return fakeWSRequest{}
	}
}

func (f *fakeWS) conn(i int) *fakeWSConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[i]
}

func (c *fakeWSConn) sendRaw(frame string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(frame))
}

func (c *fakeWSConn) sendBinary(frame []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.BinaryMessage, frame)
}

func (c *fakeWSConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	c.sendRaw(string(b))
}

// replyStatus answers a subscribe request with a DWN status (object form, as subscribe replies do).
func (c *fakeWSConn) replyStatus(id json.RawMessage, code int) {
	c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":{"code":%d,"detail":"test"},"subscription":{"id":"bafyfake"}}}}`, id, code))
}

// replyClose answers rpc.subscribe.close the way both servers do: a bare-number status.
func (c *fakeWSConn) replyClose(id json.RawMessage) {
	c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"reply":{"status":200,"detail":"Accepted"}}}`, id))
}

// wsWeb5Event is a web5-style event frame whose message carries n (to check order and routing).
func wsWeb5Event(subID string, n int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"event":{"message":{"descriptor":{"interface":"Records","method":"Write","n":%d}}}}}`, subID, n)
}

// wsEnboxEvent is an enbox-style event frame at feed position pos.
func wsEnboxEvent(subID string, pos int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"subscription":{"type":"event","cursor":{"streamId":"6742201863cf8f21","epoch":"e1","position":"%d","messageCid":"bafy%d"},"event":{"message":{"descriptor":{"n":%d}}},"seq":"%d","messageCid":"bafy%d"}}}`, subID, pos, pos, pos, pos, pos)
}

// wsAutoOK answers every subscribe with 200 and every close with the bare-number reply.
func wsAutoOK(c *fakeWSConn, r fakeWSRequest) bool {
	if r.Method == wsMethodClose {
		c.replyClose(r.ID)
		return true
	}
	return wsAutoSubscribeOK(c, r)
}

// wsAutoSubscribeOK accepts subscribes only (a test answers the closes itself).
func wsAutoSubscribeOK(c *fakeWSConn, r fakeWSRequest) bool {
	if r.Method == wsMethodSubscribe {
		c.replyStatus(r.ID, 200)
		return true
	}
	return false
}

// wsFrameN extracts descriptor.n from a test frame's message.
func wsFrameN(t testing.TB, f Frame) int {
	t.Helper()
	var m struct {
		Descriptor struct {
			N int `json:"n"`
		} `json:"descriptor"`
	}
	if err := json.Unmarshal(f.Message, &m); err != nil {
		t.Fatalf("frame message %s: %v", f.Message, err)
	}
	return m.Descriptor.N
}

// wsRecvFrame reads one frame or fails after 10 s.
func wsRecvFrame(t testing.TB, s *Subscription) Frame {
	t.Helper()
	select {
	case f, ok := <-s.Frames():
		if !ok {
			t.Fatalf("subscription %s ended early: %v", s.ID(), s.Err())
		}
		return *f
	case <-time.After(10 * time.Second):
		t.Fatalf("subscription %s: no frame within 10 s", s.ID())
	}
	return Frame{}
}

// wsWaitEnded drains s until Frames is closed (10 s limit) and returns Err and the drained count.
func wsWaitEnded(t testing.TB, s *Subscription) (error, int) {
	t.Helper()
	n := 0
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.Frames():
			if !ok {
				return s.Err(), n
			}
			n++
		case <-deadline:
			t.Fatalf("subscription %s did not end within 10 s", s.ID())
		}
	}
}

// wsEventually polls cond until it holds or 10 s pass (a condition wait, not a sleep).
func wsEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, 10*time.Second, time.Millisecond, what, cond)
}

func wsTestParams(tenant string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"target":%q,"message":{"descriptor":{"interface":"Messages","method":"Subscribe","filters":[]}}}`, tenant))
}
