package dialect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// smtTenant adapts seed-era enbox servers (docs/protocol-notes.md#smt-for-old-servers):
// MessagesSync over a sparse Merkle tree per tenant and per protocol, MessagesSubscribe with
// ProgressToken replay (no flow control), writes through dwn.processMessage. They have NO durable
// MessagesQuery feed (501), so:
//
//   - ListCIDs is MessagesSync leaves under the empty prefix; Digest is the SMT root.
//   - FeedPage is emulated with a short-lived replaying subscription: subscribe with `after`,
//     collect up to `limit` events, stop at eose (Drained) or at the limit, close. Each entry
//     carries its own cursor. With after == nil the feed's start is needed, and the only way
//     these servers reveal their epoch is a ProgressGap: we present a deliberately foreign
//     token and start from the gap's oldestAvailable.
//   - Subscribe is the real replaying subscription.
//   - Protocol-path scopes are not supported (the trees are per protocol only).
type smtTenant struct{ tenantBase }

func (t *smtTenant) Dialect() dwn.Dialect { return dwn.DialectEnboxSMT }

// sync sends one MessagesSync action and returns the reply.
func (t *smtTenant) sync(ctx context.Context, scope dwn.Scope, desc map[string]any) (json.RawMessage, error) {
	if len(scope.ProtocolPathPrefixes) > 0 {
		return nil, &dwn.Error{Op: "MessagesSync", Kind: dwn.Unsupported, Detail: "enbox-smt servers keep trees per protocol only; replicate the whole protocol"}
	}
	if scope.Protocol != "" {
		desc["protocol"] = scope.Protocol
	}
	msg, err := t.signMessages("Sync", desc)
	if err != nil {
		return nil, err
	}
	reply, _, err := t.process(ctx, "MessagesSync", msg, 200)
	if err != nil {
		return nil, err
	}
	return reply.Raw, nil
}

func (t *smtTenant) SMTRoot(ctx context.Context, scope dwn.Scope) (string, error) {
	raw, err := t.sync(ctx, scope, map[string]any{"action": "root"})
	if err != nil {
		return "", err
	}
	var r struct {
		Root string `json:"root"`
	}
	if json.Unmarshal(raw, &r) != nil || len(r.Root) != 64 {
		return "", &dwn.Error{Op: "MessagesSync", Kind: dwn.Transient, Detail: "root reply has no 64-hex root"}
	}
	return r.Root, nil
}

func (t *smtTenant) SMTSubtree(ctx context.Context, scope dwn.Scope, prefix string) (string, error) {
	raw, err := t.sync(ctx, scope, map[string]any{"action": "subtree", "prefix": prefix})
	if err != nil {
		return "", err
	}
	var r struct {
		Hash string `json:"hash"`
	}
	if json.Unmarshal(raw, &r) != nil || len(r.Hash) != 64 {
		return "", &dwn.Error{Op: "MessagesSync", Kind: dwn.Transient, Detail: "subtree reply has no 64-hex hash"}
	}
	return r.Hash, nil
}

func (t *smtTenant) SMTLeaves(ctx context.Context, scope dwn.Scope, prefix string) ([]string, error) {
	raw, err := t.sync(ctx, scope, map[string]any{"action": "leaves", "prefix": prefix})
	if err != nil {
		return nil, err
	}
	var r struct {
		Entries []string `json:"entries"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, &dwn.Error{Op: "MessagesSync", Kind: dwn.Transient, Detail: "leaves reply: " + err.Error()}
	}
	return r.Entries, nil
}

func (t *smtTenant) SMTDiff(ctx context.Context, scope dwn.Scope, hashes map[string]string, depth int) ([]dwn.Entry, []string, error) {
	if hashes == nil {
		hashes = map[string]string{}
	}
	raw, err := t.sync(ctx, scope, map[string]any{"action": "diff", "hashes": hashes, "depth": depth})
	if err != nil {
		return nil, nil, err
	}
	var r struct {
		OnlyRemote []struct {
			MessageCID  string          `json:"messageCid"`
			Message     json.RawMessage `json:"message"`
			EncodedData string          `json:"encodedData"`
		} `json:"onlyRemote"`
		OnlyLocal []string `json:"onlyLocal"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, nil, &dwn.Error{Op: "MessagesSync", Kind: dwn.Transient, Detail: "diff reply: " + err.Error()}
	}
	remote := make([]dwn.Entry, 0, len(r.OnlyRemote))
	for _, e := range r.OnlyRemote {
		entry := dwn.Entry{CID: e.MessageCID, Message: e.Message}
		if e.EncodedData != "" {
			data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e.EncodedData, "="))
			if err != nil {
				return nil, nil, &dwn.Error{Op: "MessagesSync", Kind: dwn.Permanent, Detail: "diff entry " + e.MessageCID + ": encodedData is not base64url"}
			}
			entry.InlineData = data
		}
		remote = append(remote, entry)
	}
	onlyLocal, err := checkOnlyLocal(r.OnlyLocal, hashes, depth)
	if err != nil {
		return nil, nil, &dwn.Error{Op: "MessagesSync", Kind: dwn.Transient, Detail: "diff reply: " + err.Error()}
	}
	return remote, onlyLocal, nil
}

// checkOnlyLocal accepts the server's onlyLocal prefixes only as the diff defines them: bit
// strings of exactly depth characters among the prefixes the caller sent (only there can the
// caller hold something), each once. Anything else would make the caller list leaves a hostile
// server chose, as often as it repeated them.
func checkOnlyLocal(prefixes []string, sent map[string]string, depth int) ([]string, error) {
	seen := make(map[string]bool, len(prefixes))
	out := make([]string, 0, len(prefixes))
	for i, p := range prefixes {
		if len(p) != depth || strings.Trim(p, "01") != "" {
			return nil, fmt.Errorf("onlyLocal[%d] %q is not a %d-bit prefix", i, truncate(p, 40), depth)
		}
		if _, ok := sent[p]; !ok {
			return nil, fmt.Errorf("onlyLocal[%d] %q is not a prefix this side sent", i, p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func (t *smtTenant) ListCIDs(ctx context.Context, scope dwn.Scope) ([]string, error) {
	return t.SMTLeaves(ctx, scope, "")
}

func (t *smtTenant) Digest(ctx context.Context, scope dwn.Scope) (dwn.Digest, error) {
	root, err := t.SMTRoot(ctx, scope)
	if err != nil {
		return dwn.Digest{}, err
	}
	return dwn.Digest{Kind: dwn.DigestSMTRoot, Value: root}, nil
}

func (t *smtTenant) Apply(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	return t.applyViaProcess(ctx, message, data)
}

func (t *smtTenant) Dependency(ctx context.Context, ref dwn.DependencyRef) ([]dwn.Entry, error) {
	return t.dependency(ctx, ref, listerOf(t))
}

func (t *smtTenant) Subscribe(ctx context.Context, scope dwn.Scope, from *dwn.Cursor) (dwn.Subscription, error) {
	if len(scope.ProtocolPathPrefixes) > 0 {
		return nil, &dwn.Error{Op: "MessagesSubscribe", Kind: dwn.Unsupported, Detail: "enbox-smt: protocol-path scopes are not supported"}
	}
	return t.openReplay(ctx, scope, from)
}

func (t *smtTenant) openReplay(ctx context.Context, scope dwn.Scope, from *dwn.Cursor) (*feedSubscription, error) {
	filters, err := scopeFilters(scope, false)
	if err != nil {
		return nil, err
	}
	return t.openFeed(ctx, filters, from)
}

// FeedPage replays from `after` through a short-lived subscription (see the type comment).
func (t *smtTenant) FeedPage(ctx context.Context, scope dwn.Scope, after *dwn.Cursor, limit int, cidsOnly bool) (dwn.Page, error) {
	if after == nil {
		start, err := t.feedStart(ctx, scope)
		if err != nil {
			return dwn.Page{}, err
		}
		after = start
	}
	if limit <= 0 {
		limit = 100
	}
	sub, err := t.openReplay(ctx, scope, after)
	if err != nil {
		return dwn.Page{}, err
	}
	defer sub.Close()
	page := dwn.Page{}
	for ev := range sub.Events() {
		switch ev.Kind {
		case dwn.EventMessage:
			if cidsOnly {
				ev.Entry.Message, ev.Entry.InlineData, ev.Entry.InitialWrite = nil, nil, nil
			}
			page.Entries = append(page.Entries, ev.Entry)
			if ev.Cursor != nil {
				page.Cursor = ev.Cursor
			}
			if len(page.Entries) >= limit {
				return page, nil
			}
		case dwn.EventEOSE:
			page.Drained = true
			if page.Cursor == nil {
				page.Cursor = ev.Cursor
			}
			return page, nil
		case dwn.EventEnd:
			return dwn.Page{}, ev.Err
		}
	}
	return dwn.Page{}, &dwn.Error{Op: "MessagesSubscribe", Kind: dwn.Transient, Detail: "replay ended before eose"}
}

// feedStart finds the position-0 anchor of the tenant's feed from a ProgressGap.
func (t *smtTenant) feedStart(ctx context.Context, scope dwn.Scope) (*dwn.Cursor, error) {
	probe := &dwn.Cursor{StreamID: streamID(t.did), Epoch: "dwnsync-epoch-probe", Position: "0"}
	sub, err := t.openReplay(ctx, scope, probe)
	if err == nil {
		sub.Close()
		return probe, nil // the server accepted our made-up epoch: it does not check epochs
	}
	g, ok := dwn.AsGap(err)
	if !ok {
		return nil, err
	}
	if g.OldestAvailable != nil && g.OldestAvailable.Valid() {
		return g.OldestAvailable, nil
	}
	return nil, &dwn.Error{Op: "MessagesSubscribe", Kind: dwn.Unsupported, Detail: "the server reveals no feed start (ProgressGap without bounds)"}
}
