// Package wiretest holds the fake-server pieces the transport's tests and the dialect
// adapters' tests share: distinct CIDs, streamed web5 listings of any size, and HTTP servers
// that stall or trickle on cue.
package wiretest

import (
	"bufio"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// CID is a distinct, valid dag-cbor CIDv1 (base32, 59 characters) for each i: the binary form
// (version 1, dag-cbor, sha2-256, 32 bytes) written out in base32.
func CID(i int) string {
	b := []byte{1, 0x71, 0x12, 32, 35: 0}
	binary.BigEndian.PutUint64(b[4:], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(b[28:], uint64(i))
	return "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// WriteListing writes a web5 MessagesQuery JSON-RPC reply of n CIDs to w as a stream (never
// held whole), ending with the cursor of the last one. It returns the bytes written.
func WriteListing(w io.Writer, n int) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	fmt.Fprint(cw, `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entries":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			cw.WriteString(",")
		}
		cw.WriteString(`"` + CID(i) + `"`)
	}
	fmt.Fprintf(cw, `],"cursor":{"messageCid":%q,"value":"v%d"}}}}`, CID(n-1), n)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func (c *countingWriter) WriteString(s string) { _, _ = c.Write([]byte(s)) }

// StreamedReply is a MessagesRead answer announcing 1000 bytes of data, sent in the
// dwn-response header so the body is the data stream.
const StreamedReply = `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200,"detail":"OK"},"entry":{"messageCid":"bafyx","message":{"descriptor":{"dataSize":1000}}}}}}`

// StallingServer runs handler on 127.0.0.1. Handlers block on release or their request's end;
// release is closed before the server so Close never waits for a stuck handler.
func StallingServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r, release) }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}

// Hold blocks a handler until release is closed or the request ends.
func Hold(r *http.Request, release <-chan struct{}) {
	select {
	case <-release:
	case <-r.Context().Done():
	}
}

// TrickleData answers a MessagesRead with data, then sends one byte each time next fires.
func TrickleData(w http.ResponseWriter, r *http.Request, next <-chan struct{}) {
	w.Header().Set("dwn-response", StreamedReply)
	w.Header().Set("Content-Length", "1000")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte{'x'})
		w.(http.Flusher).Flush()
	}
}
