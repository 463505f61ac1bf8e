package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// JSON replies are decoded as a stream (json.Decoder tokens over the body), never read whole
// first: a web5 MessagesQuery lists a whole tenant in one reply, and reading, re-slicing and
// unmarshalling it in one piece cost 16× the reply in heap (a 64 MiB reply peaked at 1.1 GiB).
// The walker below copies everything except result.reply.entries into a small reduced reply;
// the entries go one at a time to the caller's callback (listings) or are kept (every other
// call, whose replies are bounded by MaxJSONReply).

const (
	// MaxJSONReply caps a JSON reply that is kept whole (every call but a streamed listing). The
	// largest legitimate ones are an enbox listing page (1,000 CIDs, ~100 KB) and a feed page or
	// dependency lookup of full messages (each a few KB plus ≤ 30 KB inline data). 16 MiB is
	// far above those; decoding one costs up to ~3× the cap in transient heap (the decoder's
	// buffer grows by doubling), so four calls at once stay well inside the chart's 512 MiB.
	MaxJSONReply = 16 << 20
	// maxListingReply caps a streamed listing. Streaming keeps its memory O(1) in the reply (the
	// caller keeps what it wants), so this only stops an endless body: 1 GiB is ~17M web5 CIDs
	// (~62 bytes each), far beyond any tenant we have seen, and reading it is bounded by time.
	maxListingReply = 1 << 30
	// maxReplyEntries caps the entries of one reply (one page, or a web5 tenant's whole listing):
	// the same ~17M as maxListingReply allows, so that a body of tiny bogus entries ("",…) is
	// refused too.
	maxReplyEntries = maxListingReply / 62
	// maxListingValue caps one value of a streamed listing (an entry, or the status before the
	// entries): the decoder holds a value whole, so without it one 1 GiB string inside an
	// otherwise streamed reply would be held whole. An entry is a CID, or an enbox entry with a
	// message and ≤ 30 KB of inline data; 1 MiB is far above both.
	maxListingValue = 1 << 20
	// nonDWNDrain is how much of a body that is not a DWN reply is read to report its size;
	// the rest is left unread.
	nonDWNDrain = 1 << 20
)

var (
	errReplyTooLarge = errors.New("reply too large")
	errNotDWNReply   = errors.New("not a JSON-RPC reply")
)

// listingPath is where a MessagesQuery reply's entries sit in the JSON-RPC answer.
var listingPath = []string{"result", "reply", "entries"}

// replyBody counts what is read of a reply, fails past its limit, and remembers whether the
// transport (not the JSON) failed.
type replyBody struct {
	r        io.Reader
	n, limit int64
	readErr  error // a transport error (not io.EOF)
	// window, when set, caps what is read between two marks (one streamed value, give or take
	// the decoder's read-ahead); since counts from the last mark.
	window, since int64
	// progress, when set, sees every read that returned bytes; its error fails the read.
	progress func(n int) error
}

// mark starts a new window (the walker calls it before each streamed entry).
func (b *replyBody) mark() { b.since = 0 }

func (b *replyBody) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		return 0, errReplyTooLarge
	}
	if b.window > 0 && b.since >= b.window {
		return 0, fmt.Errorf("%w: one value over %d bytes", errReplyTooLarge, b.window)
	}
	if rest := b.limit - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.since += int64(n)
	if n > 0 && b.progress != nil {
		if perr := b.progress(n); perr != nil {
			b.readErr = perr
			return n, perr
		}
	}
	if err != nil && err != io.EOF {
		b.readErr = err
	}
	return n, err
}

// replyWalker streams one JSON-RPC reply.
type replyWalker struct {
	dec     *json.Decoder
	body    *replyBody
	out     bytes.Buffer                // the reply without the streamed entries
	each    func(json.RawMessage) error // nil: keep entries in out
	entries int
	raw     json.RawMessage // reused for every entry: O(1) allocations per entry
}

// readJSONReply decodes a JSON-RPC reply from body. With each set, every element of
// result.reply.entries goes to each (in order) and the returned reply has an empty entries
// array; otherwise the reply comes back whole. Errors: errReplyTooLarge, errNotDWNReply (the
// body is not JSON-RPC), the transport's error, or each's error.
func readJSONReply(body *replyBody, each func(json.RawMessage) error) ([]byte, error) {
	w := &replyWalker{dec: json.NewDecoder(body), body: body, each: each}
	if each != nil {
		body.window = maxListingValue
	}
	w.dec.UseNumber() // numbers are copied as written
	err := w.value(0)
	switch {
	case err == nil:
		return w.out.Bytes(), nil
	case errors.Is(err, errReplyTooLarge), body.readErr != nil:
		if body.readErr != nil && !errors.Is(err, errReplyTooLarge) {
			return nil, body.readErr
		}
		return nil, errReplyTooLarge
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errNotDWNReply) {
		return nil, errNotDWNReply
	}
	return nil, err // each refused an entry
}

// value copies the next value; depth says how far along listingPath it sits.
func (w *replyWalker) value(depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	if depth == 0 {
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return errNotDWNReply
		}
	}
	d, ok := tok.(json.Delim)
	switch {
	case !ok:
		return w.scalar(tok)
	case d == '[' && depth == len(listingPath):
		return w.entryArray()
	case d == '[':
		return w.array()
	case d == '{':
		return w.object(depth)
	}
	return errNotDWNReply
}

// object copies an object whose '{' was read; a key on listingPath is walked into.
func (w *replyWalker) object(depth int) error {
	w.out.WriteByte('{')
	for first := true; w.dec.More(); first = false {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if !first {
			w.out.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		w.out.Write(k)
		w.out.WriteByte(':')
		if depth < len(listingPath) && key == listingPath[depth] {
			err = w.value(depth + 1)
		} else {
			err = w.keep()
		}
		if err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // '}'
		return err
	}
	w.out.WriteByte('}')
	return nil
}

// array copies an array (off listingPath) whose '[' was read.
func (w *replyWalker) array() error {
	w.out.WriteByte('[')
	for first := true; w.dec.More(); first = false {
		if !first {
			w.out.WriteByte(',')
		}
		if err := w.keep(); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // ']'
		return err
	}
	w.out.WriteByte(']')
	return nil
}

// entryArray streams (or keeps) result.reply.entries, whose '[' was read.
func (w *replyWalker) entryArray() error {
	w.out.WriteByte('[')
	for w.dec.More() {
		w.body.mark()
		w.raw = w.raw[:0]
		if err := w.dec.Decode(&w.raw); err != nil {
			return err
		}
		if w.entries++; w.entries > maxReplyEntries {
			return fmt.Errorf("%w: more than %d entries", errReplyTooLarge, maxReplyEntries)
		}
		if w.each != nil {
			if err := w.each(w.raw); err != nil {
				return err
			}
			continue
		}
		if w.entries > 1 {
			w.out.WriteByte(',')
		}
		w.out.Write(w.raw)
	}
	if _, err := w.dec.Token(); err != nil { // ']'
		return err
	}
	w.out.WriteByte(']')
	return nil
}

// keep copies the next value as it is.
func (w *replyWalker) keep() error {
	w.raw = w.raw[:0]
	if err := w.dec.Decode(&w.raw); err != nil {
		return err
	}
	w.out.Write(w.raw)
	return nil
}

func (w *replyWalker) scalar(tok json.Token) error {
	b, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	w.out.Write(b)
	return nil
}

// nonDWNReply describes a body that is not a DWN reply without echoing a byte of it: such a
// body may be anything a redirect or a proxy reached (an internal service's credentials were
// once echoed into status this way). It reads on (up to nonDWNDrain) to report the size.
func nonDWNReply(status int, contentType string, body *replyBody) string {
	n, _ := io.Copy(io.Discard, io.LimitReader(body.r, nonDWNDrain))
	size := fmt.Sprintf("%d bytes", body.n+n)
	if n == nonDWNDrain {
		size = fmt.Sprintf("more than %d bytes", body.n+n)
	}
	return describeNonDWN(status, contentType, size)
}

func describeNonDWN(status int, contentType, size string) string {
	if contentType == "" {
		contentType = "none"
	}
	return fmt.Sprintf("non-DWN reply: HTTP %d, content-type %s, %s", status, dwn.RemoteText(clip(contentType, 64)), size)
}

// clip cuts s to at most n bytes for an error message, marking the cut.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
