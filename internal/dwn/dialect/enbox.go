package dialect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// enboxTenant adapts current enbox servers (docs/protocol-notes.md#durable-feed): MessagesQuery is
// a durable feed (ProgressToken cursors, limit, cidsOnly, drained, fingerprint), MessagesSubscribe
// replays from a cursor then tails live with rpc.ack flow control, and dwn.applyReplicatedMessage
// reports structured outcomes. Messages* are signed with permissionGrantIds (descriptor and
// payload, sorted) when the signer is a delegate.
type enboxTenant struct{ tenantBase }

func (t *enboxTenant) Dialect() dwn.Dialect { return dwn.DialectEnbox }

// listPageLimit is the page size of inventory listings (one stored schema caps limit at 1000).
const listPageLimit = 1000

// feedQuery is one MessagesQuery page of the durable feed.
func (t *tenantBase) feedQuery(ctx context.Context, filters []any, after *dwn.Cursor, limit int, cidsOnly bool) (dwn.Page, error) {
	desc := map[string]any{"filters": filters}
	if after != nil {
		desc["cursor"] = after
	}
	if limit > 0 {
		desc["limit"] = limit
	}
	if cidsOnly {
		desc["cidsOnly"] = true
	}
	signed, err := t.signMessages("Query", desc)
	if err != nil {
		return dwn.Page{}, err
	}
	reply, _, err := t.process(ctx, "MessagesQuery", signed, 200)
	if err != nil {
		return dwn.Page{}, err
	}
	q, err := decodeQueryReply(reply.Raw)
	if err != nil {
		return dwn.Page{}, &dwn.Error{Op: "MessagesQuery", Kind: dwn.Transient, Detail: err.Error()}
	}
	cursor, err := decodeProgressToken(q.Cursor)
	if err != nil {
		// A server that hands out malformed tokens cannot be resumed from: treat it as a gap.
		return dwn.Page{}, &dwn.GapError{Reason: "invalid_token", Requested: after}
	}
	page := dwn.Page{Cursor: cursor, Drained: q.Drained != nil && *q.Drained, Fingerprint: q.Fingerprint,
		Entries: make([]dwn.Entry, 0, len(q.Entries))}
	for _, e := range q.Entries {
		entry := dwn.Entry{CID: e.MessageCID, Message: e.Message}
		if e.EncodedData != "" {
			data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e.EncodedData, "="))
			if err != nil {
				return dwn.Page{}, &dwn.Error{Op: "MessagesQuery", Kind: dwn.Permanent, Detail: "entry " + e.MessageCID + ": encodedData is not base64url"}
			}
			entry.InlineData = data
		}
		if len(entry.Message) > 0 {
			if entry.Message, err = msg.StripForApply(entry.Message); err != nil {
				return dwn.Page{}, &dwn.Error{Op: "MessagesQuery", Kind: dwn.Permanent, Detail: err.Error()}
			}
		}
		page.Entries = append(page.Entries, entry)
	}
	// The feed gives positions per entry only through `seq` (the row's original sequence), not
	// as tokens; the page cursor is the checkpoint, so it goes on the last entry.
	if n := len(page.Entries); n > 0 && cursor != nil {
		page.Entries[n-1].Cursor = cursor
	}
	return page, nil
}

func (t *enboxTenant) FeedPage(ctx context.Context, scope dwn.Scope, after *dwn.Cursor, limit int, cidsOnly bool) (dwn.Page, error) {
	filters, err := scopeFilters(scope, true)
	if err != nil {
		return dwn.Page{}, err
	}
	if limit <= 0 {
		limit = 100 // always send a limit: the server's default is not pinned
	}
	return t.feedQuery(ctx, filters, after, limit, cidsOnly)
}

// ListCIDs pages the feed from the start with cidsOnly until drained.
func (t *enboxTenant) ListCIDs(ctx context.Context, scope dwn.Scope) ([]string, error) {
	filters, err := scopeFilters(scope, true)
	if err != nil {
		return nil, err
	}
	var cids []string
	var after *dwn.Cursor
	for {
		p, err := t.feedQuery(ctx, filters, after, listPageLimit, true)
		if err != nil {
			return nil, err
		}
		for _, e := range p.Entries {
			cids = append(cids, e.CID)
		}
		if p.Drained || p.Cursor == nil || len(p.Entries) == 0 && after != nil && p.Cursor.Position == after.Position {
			return cids, nil
		}
		after = p.Cursor
	}
}

// Digest is the server's fingerprint when the filter set has one (whole tenant or protocol
// only), otherwise a listing digest.
func (t *enboxTenant) Digest(ctx context.Context, scope dwn.Scope) (dwn.Digest, error) {
	filters, err := scopeFilters(scope, true)
	if err != nil {
		return dwn.Digest{}, err
	}
	p, err := t.feedQuery(ctx, filters, nil, 1, true)
	if err != nil {
		return dwn.Digest{}, err
	}
	if p.Fingerprint != "" {
		return dwn.Digest{Kind: dwn.DigestFingerprint, Value: p.Fingerprint}, nil
	}
	cids, err := t.ListCIDs(ctx, scope)
	if err != nil {
		return dwn.Digest{}, err
	}
	return dwn.Digest{Kind: dwn.DigestListing, Value: msg.ListingDigest(cids)}, nil
}

// Apply uses dwn.applyReplicatedMessage; a server without it (-32601) is remembered and served
// through dwn.processMessage from then on. If the refused call carried data, that stream is
// spent, so the message is Deferred for the caller to retry with fresh data.
func (t *enboxTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	if t.c.applyUnsupported() {
		return t.applyViaProcess(ctx, message, data)
	}
	in, invalid := prepareApply(message, data)
	if invalid != nil {
		return *invalid, nil
	}
	t.c.ensureInfo(ctx)
	res, err := applyReplicated(ctx, t.c.rpc, t.did, in.message, in.data, in.dataLen)
	if dwn.IsUnsupported(err) {
		t.c.markApplyUnsupported()
		if in.data == nil {
			return t.applyViaProcess(ctx, in.message, nil)
		}
		return dwn.ApplyResult{Kind: dwn.Deferred, Reason: "server lacks dwn.applyReplicatedMessage; retry (will use dwn.processMessage)"}, nil
	}
	return res, err
}

func (t *enboxTenant) Dependency(ctx context.Context, ref dwn.DependencyRef) ([]dwn.Entry, error) {
	return t.dependency(ctx, ref, listerOf(t))
}

// Subscribe opens MessagesSubscribe on the endpoint's shared WebSocket: replay after `from`,
// eose, then live events; Ack sends rpc.ack (the server's flow-control window).
func (t *enboxTenant) Subscribe(ctx context.Context, scope dwn.Scope, from *dwn.Cursor) (dwn.Subscription, error) {
	filters, err := scopeFilters(scope, true)
	if err != nil {
		return nil, err
	}
	return t.openFeed(ctx, filters, from)
}

// openFeed sends a signed MessagesSubscribe for filters (replay after from, when set) on the
// endpoint's shared WebSocket. enbox and enbox-smt differ only in the filters they may send.
func (t *tenantBase) openFeed(ctx context.Context, filters []any, from *dwn.Cursor) (*feedSubscription, error) {
	mux, err := t.c.mux(ctx)
	if err != nil {
		return nil, err
	}
	desc := map[string]any{"filters": filters}
	if from != nil {
		desc["cursor"] = from
	}
	signed, err := t.signMessages("Subscribe", desc)
	if err != nil {
		return nil, err
	}
	params, _ := json.Marshal(map[string]any{"target": t.did, "message": signed})
	sub, reply, err := mux.Subscribe(ctx, params)
	if err != nil {
		return nil, err
	}
	return newFeedSubscription(ctx, sub, liveOnlyEOSE(from, reply)), nil
}
