package dialect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// web5Tenant adapts TBD @web5/dwn-server 0.6.x (web5 spec).
//
// The server's feed is MessagesQuery returning *every* CID after a cursor in one reply, with a
// cursor {messageCid, value} for the LAST entry only; there is no page size, no drained flag,
// no fingerprint, no replay on subscribe. What this adapter does about it:
//
//   - Cursors. A server cursor maps onto Cursor{StreamID: stream id of the tenant, Epoch:
//     "web5", Position: JSON text of value, MessageCID: messageCid}. Only the last entry of a
//     server reply carries one (Entry.Cursor); the others have none and a checkpoint advances
//     at the next entry that has one. A web5 store that is wiped and restarted is not
//     detectable from its cursors (no epoch): reconcile catches that.
//   - Limit. The server cannot page, so a reply longer than `limit` is sliced here. The page
//     of a slice ends in a *resume cursor* (Position "resume:" + the server cursor the reply
//     started from, MessageCID = last CID handed out). Given back as `after`, it re-reads from
//     that server cursor and continues after that CID; if the CID has vanished meanwhile
//     (superseded messages are pruned from the log) it restarts at the reply's beginning, so
//     delivery is at-least-once, never lossy. The last reply is cached so slicing a long
//     backlog does not re-list it per slice.
//   - Entries carry only CIDs (Message nil); Read fetches message and data.
//   - Digest is a ListingDigest over ListCIDs; Subscribe is emulated (see subscribeByPolling).
//   - Messages* are signed with the singular permissionGrantId (payload only) = Grants[method]
//     when the signer is a delegate.
type web5Tenant struct {
	tenantBase
	cache *web5PageCache
}

func (t *web5Tenant) Dialect() dwn.Dialect { return dwn.DialectWeb5 }

// web5ServerCursor is the server's own cursor.
type web5ServerCursor struct {
	MessageCID string          `json:"messageCid"`
	Value      json.RawMessage `json:"value"`
}

const (
	web5ResumePrefix = "resume:"
)

// web5PageCache keeps the last server reply that had to be sliced.
type web5PageCache struct {
	mu     sync.Mutex
	key    string       // filters + base cursor
	cids   *msg.CIDList // indexed: shared lookups only read it
	cursor *web5ServerCursor
}

func (c *web5PageCache) get(key string) (*msg.CIDList, *web5ServerCursor, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != key || c.key == "" {
		return nil, nil, false
	}
	return c.cids, c.cursor, true
}

func (c *web5PageCache) put(key string, cids *msg.CIDList, cursor *web5ServerCursor) {
	c.mu.Lock()
	c.key, c.cids, c.cursor = key, cids, cursor
	c.mu.Unlock()
}

// decodeCursor splits `after` into the server cursor to send (nil = from the start) and the
// CID to continue after (resume cursors only). Foreign cursors are a gap.
func (t *web5Tenant) decodeCursor(after *dwn.Cursor) (*web5ServerCursor, string, error) {
	if after == nil {
		return nil, "", nil
	}
	if after.StreamID != streamID(t.did) {
		return nil, "", &dwn.GapError{Reason: "stream_mismatch", Requested: after}
	}
	if after.Epoch != dwn.Web5Epoch {
		return nil, "", &dwn.GapError{Reason: "epoch_mismatch", Requested: after}
	}
	if rest, ok := strings.CutPrefix(after.Position, web5ResumePrefix); ok {
		var base *web5ServerCursor
		if err := json.Unmarshal([]byte(rest), &base); err != nil {
			return nil, "", &dwn.GapError{Reason: "invalid_token", Requested: after}
		}
		return base, after.MessageCID, nil
	}
	if !json.Valid([]byte(after.Position)) || after.MessageCID == "" {
		return nil, "", &dwn.GapError{Reason: "invalid_token", Requested: after}
	}
	return &web5ServerCursor{MessageCID: after.MessageCID, Value: json.RawMessage(after.Position)}, "", nil
}

func (t *web5Tenant) serverCursor(sc *web5ServerCursor) *dwn.Cursor {
	if sc == nil {
		return nil
	}
	return &dwn.Cursor{StreamID: streamID(t.did), Epoch: dwn.Web5Epoch, Position: string(sc.Value), MessageCID: sc.MessageCID}
}

func (t *web5Tenant) resumeCursor(base *web5ServerCursor, lastCID string) *dwn.Cursor {
	b, _ := json.Marshal(base) // "null" for the start of the feed
	return &dwn.Cursor{StreamID: streamID(t.did), Epoch: dwn.Web5Epoch, Position: web5ResumePrefix + string(b), MessageCID: lastCID}
}

// query is one MessagesQuery: every CID after base, and the cursor of the last one.
func (t *web5Tenant) query(ctx context.Context, filters []any, base *web5ServerCursor) ([]string, *web5ServerCursor, error) {
	var cids []string
	last, err := t.queryEach(ctx, filters, base, func(cid string) error {
		cids = append(cids, cid)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return cids, last, nil
}

// queryEach is one MessagesQuery streamed: fn gets every CID after base in order as the reply
// arrives (never held whole), and the reply's cursor comes back at the end.
func (t *web5Tenant) queryEach(ctx context.Context, filters []any, base *web5ServerCursor, fn func(cid string) error) (*web5ServerCursor, error) {
	desc := map[string]any{"filters": filters}
	if base != nil {
		desc["cursor"] = base
	}
	msg, err := t.signMessages("Query", desc)
	if err != nil {
		return nil, err
	}
	n := 0
	reply, err := t.processListing(ctx, "MessagesQuery", msg, func(raw json.RawMessage) error {
		cid, err := listingEntryCID(raw)
		if err != nil {
			return &dwn.Error{Op: "MessagesQuery", Kind: dwn.Transient, Detail: fmt.Sprintf("entry %d: %v", n, err)}
		}
		n++
		return fn(cid)
	}, 200)
	if err != nil {
		return nil, err
	}
	q, err := decodeQueryReply(reply.Raw)
	if err != nil {
		return nil, &dwn.Error{Op: "MessagesQuery", Kind: dwn.Transient, Detail: err.Error()}
	}
	var sc *web5ServerCursor
	if len(q.Cursor) > 0 && string(q.Cursor) != "null" {
		sc = new(web5ServerCursor)
		if err := json.Unmarshal(q.Cursor, sc); err != nil || sc.MessageCID == "" || len(sc.Value) == 0 {
			return nil, &dwn.Error{Op: "MessagesQuery", Kind: dwn.Transient, Detail: "reply cursor is not {messageCid, value}"}
		}
	}
	return sc, nil
}

// EachCID streams the scope's listing into fn (see CIDLister): web5 answers with the whole
// tenant in one reply, so this is the form that keeps memory flat in the tenant's size.
func (t *web5Tenant) EachCID(ctx context.Context, scope dwn.Scope, fn func(cid string) error) error {
	filters, err := scopeFilters(scope, false)
	if err != nil {
		return err
	}
	_, err = t.queryEach(ctx, filters, nil, fn)
	return err
}

func (t *web5Tenant) FeedPage(ctx context.Context, scope dwn.Scope, after *dwn.Cursor, limit int, cidsOnly bool) (dwn.Page, error) {
	filters, err := scopeFilters(scope, false)
	if err != nil {
		return dwn.Page{}, err
	}
	base, resumeAfter, err := t.decodeCursor(after)
	if err != nil {
		return dwn.Page{}, err
	}
	baseJSON, _ := json.Marshal(base)
	filtersJSON, _ := json.Marshal(filters)
	key := string(filtersJSON) + "|" + string(baseJSON)
	list, last, cached := (*msg.CIDList)(nil), (*web5ServerCursor)(nil), false
	if resumeAfter != "" {
		list, last, cached = t.cache.get(key)
	}
	if !cached {
		list = &msg.CIDList{}
		if last, err = t.queryEach(ctx, filters, base, func(cid string) error { list.Add(cid); return nil }); err != nil {
			return dwn.Page{}, err
		}
		list.BuildIndex() // before it is shared through the cache: lookups then only read
	}
	start := 0
	if resumeAfter != "" {
		if i := list.Index(resumeAfter); i >= 0 {
			start = i + 1
		}
	}
	rest := list.Len() - start
	if limit > 0 && rest > limit {
		t.cache.put(key, list, last)
		page := dwn.Page{Entries: listEntries(list, start, limit)}
		page.Cursor = t.resumeCursor(base, page.Entries[limit-1].CID)
		return page, nil
	}
	page := dwn.Page{Entries: listEntries(list, start, rest), Drained: true}
	if list.Len() > 0 && last != nil {
		page.Cursor = t.serverCursor(last)
		if rest > 0 {
			page.Entries[rest-1].Cursor = page.Cursor
		}
	}
	return page, nil
}

// listEntries is n entries of list from start on.
func listEntries(list *msg.CIDList, start, n int) []dwn.Entry {
	entries := make([]dwn.Entry, n)
	for i := range entries {
		entries[i] = dwn.Entry{CID: list.At(start + i)}
	}
	return entries
}

func (t *web5Tenant) ListCIDs(ctx context.Context, scope dwn.Scope) ([]string, error) {
	filters, err := scopeFilters(scope, false)
	if err != nil {
		return nil, err
	}
	cids, _, err := t.query(ctx, filters, nil)
	return cids, err
}

func (t *web5Tenant) Digest(ctx context.Context, scope dwn.Scope) (dwn.Digest, error) {
	list, err := dwn.ListCIDList(ctx, t, scope) // streamed: the listing is never held as text
	if err != nil {
		return dwn.Digest{}, err
	}
	return dwn.Digest{Kind: dwn.DigestListing, Value: list.ListingDigest()}, nil
}

func (t *web5Tenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	return t.applyViaProcess(ctx, message, data)
}

func (t *web5Tenant) Dependency(ctx context.Context, ref dwn.DependencyRef) ([]dwn.Entry, error) {
	return t.dependency(ctx, ref, listerOf(t))
}

func (t *web5Tenant) Subscribe(ctx context.Context, scope dwn.Scope, from *dwn.Cursor) (dwn.Subscription, error) {
	filters, err := scopeFilters(scope, false)
	if err != nil {
		return nil, err
	}
	return subscribeByPolling(ctx, &t.tenantBase, filters, t, scope, from)
}
