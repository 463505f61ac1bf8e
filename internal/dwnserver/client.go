package dwnserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// CallTimeout bounds one client request (Seed gets more, in proportion to its size).
const CallTimeout = 2 * time.Minute

// Client drives hack/dwn-server/client.mjs: one long-lived Node process that makes real
// dwn-sdk-js 0.5.2 messages and posts them to servers. Safe for concurrent use; requests
// run concurrently inside the process.
type Client struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *ringBuffer

	writeMu sync.Mutex // one request line at a time on stdin

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan response
	dead    error // set once the process is gone; fails every later call

	exited    chan struct{}
	closeOnce sync.Once
}

type response struct {
	ID     int64           `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
}

// NewClient starts the client for a test and closes it when the test ends.
func NewClient(t testing.TB) *Client {
	t.Helper()
	c, err := NewClientProcess(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("dwn client: %v", err)
		}
	})
	return c
}

// NewClientProcess starts the client; it runs until Close or until ctx is done.
func NewClientProcess(ctx context.Context) (*Client, error) {
	h, err := locateHarness()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", h.clientScript())
	cmd.Dir = h.dir
	cmd.SysProcAttr = serverProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cmd:     cmd,
		stdin:   stdin,
		stderr:  newRingBuffer(8 << 10),
		pending: map[int64]chan response{},
		exited:  make(chan struct{}),
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s: %w", h.clientScript(), err)
	}
	readerDone := make(chan struct{})
	go func() {
		c.readResponses(stdout)
		close(readerDone)
	}()
	go func() {
		<-readerDone // Wait closes stdout: read it to the end first
		err := cmd.Wait()
		c.fail(fmt.Errorf("dwn client process exited (%v); stderr:\n%s", err, c.stderr.String()))
		close(c.exited)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Close()
		case <-c.exited:
		}
	}()
	return c, nil
}

func (c *Client) readResponses(stdout io.Reader) {
	scanner := bufio.NewScanner(stdout)
	scanner.Buffer(make([]byte, 64<<10), 256<<20) // seed results and read data can be large
	for scanner.Scan() {
		var r response
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
			continue // not ours (a library printing to stdout); answers are always JSON
		}
		c.mu.Lock()
		ch, ok := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if ok {
			ch <- r
		}
	}
}

// fail ends every pending and future call with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == nil {
		c.dead = err
	}
	for id, ch := range c.pending {
		ch <- response{ID: id, Error: ptr(c.dead.Error())}
		delete(c.pending, id)
	}
}

// Close ends the process (stdin closed: it finishes running requests and exits).
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.writeMu.Lock()
		c.stdin.Close()
		c.writeMu.Unlock()
		select {
		case <-c.exited:
		case <-time.After(StopTimeout):
			_ = c.cmd.Process.Kill()
			<-c.exited
			err = fmt.Errorf("dwn client did not exit within %s of closing stdin; killed", StopTimeout)
		}
	})
	return err
}

// call sends one request and decodes its result into out.
func (c *Client) call(cmd string, params map[string]any, timeout time.Duration, out any) error {
	c.mu.Lock()
	if c.dead != nil {
		err := c.dead
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan response, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	request := map[string]any{}
	for k, v := range params {
		request[k] = v
	}
	request["id"] = id
	request["cmd"] = cmd
	line, err := json.Marshal(request)
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: encode request: %w", cmd, err)
	}
	c.writeMu.Lock()
	_, err = c.stdin.Write(append(line, '\n'))
	c.writeMu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: write to dwn client: %w", cmd, err)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s", cmd, *r.Error)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(r.Result, out); err != nil {
			return fmt.Errorf("%s: decode result: %w", cmd, err)
		}
		return nil
	case <-timer.C:
		c.forget(id)
		return fmt.Errorf("%s: no answer from the dwn client within %s", cmd, timeout)
	}
}

func (c *Client) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func ptr[T any](v T) *T { return &v }

// ringBuffer keeps the last bytes written to it (the client's stderr, for error messages).
type ringBuffer struct {
	mu   sync.Mutex
	max  int
	data []byte
}

func newRingBuffer(max int) *ringBuffer { return &ringBuffer{max: max} }

func (b *ringBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.data = append(b.data, p...)
	if over := len(b.data) - b.max; over > 0 {
		b.data = append([]byte(nil), b.data[over:]...)
	}
	return len(p), nil
}

func (b *ringBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.data)
}
