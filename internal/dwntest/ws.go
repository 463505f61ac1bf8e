package dwntest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

var upgrader = websocket.Upgrader{
	CheckOrigin:     func(*http.Request) bool { return true },
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
}

// wsConn is one client WebSocket: a reader goroutine answering requests, plus one pump
// goroutine per subscription writing its frames.
type wsConn struct {
	n    *Node
	conn *websocket.Conn

	writeMu sync.Mutex

	subs      map[string]*subscription // by client subscription id; guarded by Node.mu
	ponged    atomic.Bool              // a pong arrived since the last ping
	done      chan struct{}
	closeOnce sync.Once
}

func (n *Node) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(maxRequestData * 2)
	c := &wsConn{n: n, conn: conn, subs: map[string]*subscription{}, done: make(chan struct{})}
	c.ponged.Store(true)
	conn.SetPongHandler(func(string) error {
		c.ponged.Store(true)
		n.counter.add("websocket:pong")
		return nil
	})
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	go c.readLoop()
	if n.opts.PingInterval > 0 {
		go c.heartbeat(n.opts.PingInterval)
	}
}

// heartbeat pings the client every interval and drops the socket when the previous ping went
// unanswered.
func (c *wsConn) heartbeat(interval time.Duration) {
	for {
		timer := c.n.clock.NewTimer(interval)
		select {
		case <-c.done:
			timer.Stop()
			return
		case <-timer.C():
		}
		if !c.ponged.Swap(false) {
			c.n.counter.add("websocket:ping-timeout")
			c.drop()
			return
		}
		c.writeMu.Lock()
		err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
		c.writeMu.Unlock()
		if err != nil {
			c.drop()
			return
		}
	}
}

func (c *wsConn) readLoop() {
	defer c.drop()
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if kind != websocket.TextMessage {
			continue
		}
		var req rpcRequest
		if err := json.Unmarshal(data, &req); err != nil {
			c.n.counter.add("invalid")
			c.send(rpcErrorResponse(nil, codeParseError, "Parse error", nil))
			continue
		}
		c.n.counter.add(req.Method)
		c.handle(req)
	}
}

func (c *wsConn) handle(req rpcRequest) {
	switch req.Method {
	case "rpc.subscribe.dwn.processMessage":
		c.subscribe(req)
	case "rpc.ack":
		c.ack(req)
	case "rpc.subscribe.close":
		c.closeSubscription(req)
	default:
		rep, rerr := c.n.dispatch(req, nil, transportWS)
		if rerr != nil {
			c.send(rpcErrorResponse(req.ID, rerr.Code, rerr.Message, rerr.Data))
			return
		}
		result := map[string]any{"reply": rep.body} // data is never sent over WebSocket
		if req.Method == "dwn.applyReplicatedMessage" || req.Method == "rpc.ping" {
			result = rep.body
		}
		c.send(rpcResult(req.ID, result))
	}
}

// send writes one JSON frame; write errors end the connection through the reader.
func (c *wsConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.sendRaw(websocket.TextMessage, b)
}

func (c *wsConn) sendRaw(kind int, b []byte) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.conn.WriteMessage(kind, b); err != nil {
		_ = c.conn.NetConn().Close()
	}
}

// drop closes the socket without a close frame and ends every subscription on it.
func (c *wsConn) drop() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.conn.NetConn().Close()
		c.n.mu.Lock()
		delete(c.n.conns, c)
		for id, s := range c.subs {
			s.stop()
			delete(c.subs, id)
		}
		c.n.mu.Unlock()
	})
}

func (c *wsConn) sendGarbage() {
	c.sendRaw(websocket.TextMessage, []byte(`this is not JSON {`))
	c.sendRaw(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13, 0x37})
	c.send(rpcResult(json.RawMessage(`"`+randomID()+`"`), map[string]any{"reply": status(200, "OK")}))
	c.n.mu.Lock()
	ids := make([]string, 0, len(c.subs))
	for id := range c.subs {
		ids = append(ids, id)
	}
	c.n.mu.Unlock()
	for _, id := range ids {
		idJSON, _ := json.Marshal(id)
		c.send(rpcResult(idJSON, map[string]any{"subscription": map[string]any{"type": "event"}}))
	}
}

func (c *wsConn) subscribe(req rpcRequest) {
	n := c.n
	n.counter.add("MessagesSubscribe")
	if req.Subscription == nil || req.Subscription.ID == "" {
		c.send(rpcErrorResponse(req.ID, codeInvalidRequest, "subscribe methods must contain a subscriptionRequest context", nil))
		return
	}
	p, perr := parseParams(req.Params)
	if perr != nil {
		c.send(rpcErrorResponse(req.ID, perr.Code, perr.Message, nil))
		return
	}
	if messageKind(p.Message) != "MessagesSubscribe" {
		c.send(rpcErrorResponse(req.ID, codeInvalidRequest, "subscribe methods must contain a subscriptionRequest context", nil))
		return
	}
	r, rep, ok := parseRequest(p.Message)
	if !ok {
		c.send(rpcResult(req.ID, map[string]any{"reply": rep.body}))
		return
	}
	subCID, err := msg.MessageCID(p.Message)
	if err != nil {
		c.send(rpcResult(req.ID, map[string]any{"reply": status(400, "SchemaValidatorFailure: "+err.Error())}))
		return
	}
	n.mu.Lock()
	s, rep := c.openLocked(req.Subscription.ID, p.Target, r, subCID)
	n.mu.Unlock()
	if s == nil {
		if rep.body == nil {
			c.send(rpcErrorResponse(req.ID, codeInvalidParams, "the subscribe id: "+req.Subscription.ID+" is in use by an active subscription", nil))
			return
		}
		c.send(rpcResult(req.ID, map[string]any{"reply": rep.body}))
		return
	}
	replyFrame := rpcResult(req.ID, map[string]any{"reply": rep.body})
	if s.replyAfterFirstBatch {
		s.pendingReply = replyFrame
	} else {
		c.send(replyFrame)
	}
	go s.pump()
}

// openLocked validates a subscribe request and registers the subscription. A nil
// subscription with a nil reply body means the id is in use.
func (c *wsConn) openLocked(clientID, target string, r request, subCID string) (*subscription, reply) {
	n := c.n
	t := n.tenantLocked(target)
	if r.desc.Filters == nil {
		return nil, statusReply(400, "SchemaValidatorFailure: descriptor.filters is required")
	}
	if code, detail := n.authorizeMessagesLocked(t, r, "MessagesSubscribe", nil); code != 0 {
		return nil, statusReply(code, detail)
	}
	if _, inUse := c.subs[clientID]; inUse {
		return nil, reply{}
	}
	s := &subscription{
		c: c, id: clientID, t: t, req: r, filters: r.desc.Filters,
		kick: make(chan struct{}, 1), closed: make(chan struct{}),
		flowControl: n.opts.Mode == ModeEnbox, replyAfterFirstBatch: n.faults.replayFirst,
	}
	body := status(200, "OK")
	if cur := r.desc.Cursor; cur != nil {
		pos, g, err := n.checkCursorLocked(t, *cur)
		if err != nil {
			return nil, statusReply(400, err.Error())
		}
		if g != nil {
			return nil, gapReply(g)
		}
		s.next, s.replayTo, s.eosePending, s.eoseCursor = pos, t.head, true, *cur
	} else {
		s.next = t.head
		if n.opts.Mode == ModeEnbox {
			head := n.tokenLocked(t, t.head, "")
			if m := t.at(t.head); m != nil {
				head.MessageCID = m.cid
			}
			body["head"] = head
			if fingerprintable(s.filters) {
				body["fingerprint"] = fingerprintLocked(t, s.filters)
			}
		}
	}
	body["subscription"] = map[string]any{"id": subCID}
	c.subs[clientID] = s
	return s, reply{body: body}
}

func (c *wsConn) ack(req rpcRequest) {
	n := c.n
	ackReply := func(v map[string]any) {
		v["id"] = randomID() // acks are notifications; the server answers under a random id
		c.send(v)
	}
	if n.opts.Mode != ModeEnbox {
		ackReply(rpcErrorResponse(nil, codeMethodNotFound, "Method not found", nil))
		return
	}
	var p struct {
		Cursor *dwn.Cursor `json:"cursor"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil || p.Cursor == nil || req.Subscription == nil {
		ackReply(rpcErrorResponse(nil, codeInvalidParams, "rpc.ack needs params.cursor and subscription.id", nil))
		return
	}
	if n.opts.StrictAck && p.Cursor.MessageCID == "" {
		ackReply(rpcErrorResponse(nil, codeInvalidParams, "cursor.messageCid must be a non-empty string", nil))
		return
	}
	n.mu.Lock()
	s := c.subs[req.Subscription.ID]
	if s != nil {
		s.ackLocked(*p.Cursor)
	}
	n.mu.Unlock()
	if s == nil {
		ackReply(rpcErrorResponse(nil, codeInvalidParams, "subscription "+req.Subscription.ID+" does not exist.", nil))
		return
	}
	ackReply(rpcResult(nil, map[string]any{"reply": map[string]any{"status": 200, "detail": "OK"}}))
}

func (c *wsConn) closeSubscription(req rpcRequest) {
	n := c.n
	id := ""
	if req.Subscription != nil {
		id = req.Subscription.ID
	}
	n.mu.Lock()
	s := c.subs[id]
	delete(c.subs, id)
	n.mu.Unlock()
	if s == nil {
		c.send(rpcErrorResponse(req.ID, codeInvalidParams, "subscription "+id+" does not exist.", nil))
		return
	}
	s.stop()
	c.send(rpcResult(req.ID, map[string]any{"reply": map[string]any{"status": 200, "detail": "Accepted"}}))
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
