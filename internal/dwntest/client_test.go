package dwntest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// A deliberately raw client: the tests check the wire, not internal/dwn's adapters.

// rpcResp is one HTTP JSON-RPC exchange as the client saw it.
type rpcResp struct {
	HTTPStatus int
	Header     http.Header
	Envelope   map[string]any // the JSON-RPC response (from the body or the dwn-response header)
	Data       []byte         // the body when dwn-response carried the envelope
}

// Reply is result.reply (processMessage) as a map.
func (r rpcResp) Reply(t *testing.T) map[string]any {
	t.Helper()
	res, ok := r.Envelope["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result in %v (http %d)", r.Envelope, r.HTTPStatus)
	}
	rep, ok := res["reply"].(map[string]any)
	if !ok {
		t.Fatalf("no result.reply in %v", r.Envelope)
	}
	return rep
}

// Apply is result.result (applyReplicatedMessage).
func (r rpcResp) Apply(t *testing.T) map[string]any {
	t.Helper()
	res, ok := r.Envelope["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result in %v (http %d)", r.Envelope, r.HTTPStatus)
	}
	out, ok := res["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result.result in %v", r.Envelope)
	}
	return out
}

func (r rpcResp) ErrorCode() int {
	e, ok := r.Envelope["error"].(map[string]any)
	if !ok {
		return 0
	}
	c, _ := e["code"].(float64)
	return int(c)
}

func code(rep map[string]any) int {
	s, _ := rep["status"].(map[string]any)
	c, _ := s["code"].(float64)
	return int(c)
}

func detail(rep map[string]any) string {
	s, _ := rep["status"].(map[string]any)
	d, _ := s["detail"].(string)
	return d
}

// call sends a JSON-RPC request with the legacy header framing (data = body).
func call(t *testing.T, url, method, target string, message json.RawMessage, data []byte) rpcResp {
	t.Helper()
	resp, err := tryCall(url, method, target, message, data)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return resp
}

func tryCall(url, method, target string, message json.RawMessage, data []byte) (rpcResp, error) {
	env, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "1", "method": method,
		"params": map[string]any{"target": target, "message": message}})
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(data))
	req.Header.Set("dwn-request", string(env))
	if data != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return do(req)
}

// callBodyV1 sends the same request with body-v1 framing.
func callBodyV1(t *testing.T, url, method, target string, message json.RawMessage, data []byte) rpcResp {
	t.Helper()
	env, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "2", "method": method,
		"params": map[string]any{"target": target, "message": message}})
	var body bytes.Buffer
	flags := byte(0)
	if data != nil {
		flags = 1
	}
	body.WriteByte(flags)
	_ = binary.Write(&body, binary.BigEndian, uint32(len(env)))
	body.Write(env)
	body.Write(data)
	req, _ := http.NewRequest(http.MethodPost, url+"/", &body)
	req.Header.Set("Content-Type", "application/vnd.enbox.dwn-rpc; version=1")
	resp, err := do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return resp
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func do(req *http.Request) (rpcResp, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return rpcResp{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rpcResp{}, err
	}
	out := rpcResp{HTTPStatus: resp.StatusCode, Header: resp.Header}
	envelope := body
	if h := resp.Header.Get("dwn-response"); h != "" {
		envelope, out.Data = []byte(h), body
	}
	_ = json.Unmarshal(envelope, &out.Envelope)
	return out, nil
}

// process sends dwn.processMessage and returns the reply.
func process(t *testing.T, n *Node, target string, message json.RawMessage, data []byte) map[string]any {
	t.Helper()
	return call(t, n.URL(), "dwn.processMessage", target, message, data).Reply(t)
}

// apply sends dwn.applyReplicatedMessage and returns result.result.
func apply(t *testing.T, n *Node, target string, w Written) map[string]any {
	t.Helper()
	return call(t, n.URL(), "dwn.applyReplicatedMessage", target, w.Message, w.Data).Apply(t)
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// query sends a signed MessagesQuery.
func query(t *testing.T, n *Node, id *Identity, target string, desc map[string]any, grants ...string) map[string]any {
	t.Helper()
	desc["interface"], desc["method"] = "Messages", "Query"
	if _, ok := desc["filters"]; !ok {
		desc["filters"] = []any{}
	}
	msg := must[json.RawMessage](t)(id.Sign(desc, grants...))
	return process(t, n, target, msg, nil)
}

func entries(rep map[string]any) []map[string]any {
	raw, _ := rep["entries"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, e := range raw {
		out = append(out, e.(map[string]any))
	}
	return out
}

func cursorOf(t *testing.T, v any) dwn.Cursor {
	t.Helper()
	b, _ := json.Marshal(v)
	var c dwn.Cursor
	if err := json.Unmarshal(b, &c); err != nil || !c.Valid() {
		t.Fatalf("not a progress token: %s", b)
	}
	return c
}

// seed writes messages straight into the node's store.
func seed(t *testing.T, n *Node, tenant string, ws ...Written) {
	t.Helper()
	for _, w := range ws {
		if r := n.Write(tenant, w.Message, w.Data); !r.Kind.Succeeded() {
			t.Fatalf("seed %s: %+v", w, r)
		}
	}
}

// wsClient is a raw WebSocket JSON-RPC client.
type wsClient struct {
	t       *testing.T
	conn    *websocket.Conn
	pending []map[string]any // subscription frames read while looking for an ack answer
}

func dialWS(t *testing.T, n *Node) *wsClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(strings.Replace(n.URL(), "http://", "ws://", 1), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &wsClient{t: t, conn: conn}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

// next reads one frame (guarded by a deadline so a broken node fails the test, never hangs it).
func (c *wsClient) next() (int, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c.conn.ReadMessage()
}

func (c *wsClient) nextJSON() map[string]any {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f
	}
	return c.readJSON()
}

func (c *wsClient) readJSON() map[string]any {
	c.t.Helper()
	kind, b, err := c.next()
	if err != nil {
		c.t.Fatalf("ws read: %v", err)
	}
	var m map[string]any
	if kind != websocket.TextMessage || json.Unmarshal(b, &m) != nil {
		c.t.Fatalf("not a JSON text frame: %q", b)
	}
	return m
}

func (c *wsClient) subscribe(id *Identity, target, subID string, desc map[string]any, grants ...string) map[string]any {
	c.t.Helper()
	desc["interface"], desc["method"] = "Messages", "Subscribe"
	if _, ok := desc["filters"]; !ok {
		desc["filters"] = []any{}
	}
	msg, err := id.Sign(desc, grants...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "id": "req-" + subID, "method": "rpc.subscribe.dwn.processMessage",
		"params": map[string]any{"target": target, "message": msg}, "subscription": map[string]any{"id": subID}})
	f := c.nextJSON()
	if f["id"] != "req-"+subID {
		c.t.Fatalf("want the subscribe reply first, got %v", f)
	}
	return f["result"].(map[string]any)["reply"].(map[string]any)
}

// subFrame reads the next frame and returns its subscription body (type event/eose/error).
func (c *wsClient) subFrame(subID string) map[string]any {
	c.t.Helper()
	f := c.nextJSON()
	if f["id"] != subID {
		c.t.Fatalf("want a frame of subscription %s, got %v", subID, f)
	}
	return f["result"].(map[string]any)["subscription"].(map[string]any)
}

func (c *wsClient) ack(subID string, cursor any) {
	c.t.Helper()
	c.send(map[string]any{"jsonrpc": "2.0", "method": "rpc.ack", "params": map[string]any{"cursor": cursor},
		"subscription": map[string]any{"id": subID}})
	// The answer carries a random id; subscription frames may overtake it (kept for later).
	var f map[string]any
	for {
		f = c.readJSON()
		if res, _ := f["result"].(map[string]any); res != nil && res["subscription"] != nil {
			c.pending = append(c.pending, f)
			continue
		}
		break
	}
	res, _ := f["result"].(map[string]any)
	if res == nil {
		c.t.Fatalf("ack rejected: %v", f)
	}
}

// ping proves nothing else is queued: the pong must be the very next frame.
func (c *wsClient) ping() {
	c.t.Helper()
	c.send(map[string]any{"jsonrpc": "2.0", "id": "ping", "method": "rpc.ping"})
	f := c.nextJSON()
	if f["id"] != "ping" {
		c.t.Fatalf("want the pong, got %v", f)
	}
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getInfo(t *testing.T, n *Node) map[string]any {
	t.Helper()
	resp, err := httpClient.Get(n.URL() + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info
}
