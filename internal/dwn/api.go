// Package dwn is the contract between dwnsync's engine and DWN servers: a Tenant (one tenant on
// one endpoint, signed for by one signer) that can page its feed, subscribe to it, read one
// message with its data, apply a foreign message, and report a scope digest; the Opener that
// resolves tenants; and the error kinds callers retry on. The engine (internal/syncer) sees
// only this package and msg; the adapters behind Tenant live in dialect, their transport in
// wire, messages and signing in msg.
package dwn

import (
	"context"
	"encoding/json"
	"io"
	"strconv"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// Dialect names the protocol family an endpoint speaks.
type Dialect string

const (
	DialectAuto     Dialect = "auto"      // detect from GET /info and probing
	DialectWeb5     Dialect = "web5"      // TBD @web5/dwn-server 0.6.x: no durable feed, no replay
	DialectEnbox    Dialect = "enbox"     // enbox durable feed + dwn.applyReplicatedMessage
	DialectEnboxSMT Dialect = "enbox-smt" // seed-era enbox: MessagesSync over a sparse Merkle tree
)

// Cursor is a position in one server's feed for one tenant. It is only meaningful on the server
// that issued it. For enbox it is the ProgressToken; the web5 adapter maps the server's
// {messageCid, value} cursor onto it (StreamID = derived stream id, Epoch = "web5", Position =
// the JSON text of value). The engine treats Position as opaque and compares only domains.
type Cursor struct {
	StreamID   string `json:"streamId"`
	Epoch      string `json:"epoch"`
	Position   string `json:"position"`
	MessageCID string `json:"messageCid,omitempty"`
}

// Web5Epoch is the Epoch of every web5 cursor: their Position is a store-wide watermark, not a
// count of one tenant's feed (see Sequence).
const Web5Epoch = "web5"

// Domain is the part of a cursor that must match for two cursors to be comparable.
func (c Cursor) Domain() string { return c.StreamID + "/" + c.Epoch }

// Valid reports whether every required field is set (the engine discards invalid cursors).
func (c Cursor) Valid() bool { return c.StreamID != "" && c.Epoch != "" && c.Position != "" }

// Sequence returns the position as a number counting this tenant's feed, when the dialect has
// one (enbox ProgressTokens: canonical decimal positions per tenant). It reports false for web5
// cursors, whose value is a store-wide watermark shared by every tenant, and for anything that
// is not a canonical decimal, so a difference of two sequences is a count of feed positions.
func (c Cursor) Sequence() (uint64, bool) {
	if c.Epoch == Web5Epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(c.Position, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != c.Position {
		return 0, false
	}
	return n, true
}

// Scope selects what a link replicates: the whole tenant (Protocol == "") or one protocol,
// optionally narrowed to protocol paths.
type Scope struct {
	Protocol             string   `json:"protocol,omitempty"`
	ProtocolPathPrefixes []string `json:"protocolPathPrefixes,omitempty"`
}

// Entry is one message of a feed, an event, a diff or a dependency lookup.
type Entry struct {
	CID string
	// Cursor is the feed position of this entry, or nil when the dialect cannot tell it (web5
	// lists a cursor only for the last entry of a page); a checkpoint then advances at the next
	// entry that has one.
	Cursor *Cursor
	// Message is the signed message exactly as the source stored it (no encodedData), or nil
	// when only the CID is known (cidsOnly pages, web5 feeds): Read fetches it.
	Message json.RawMessage
	// InlineData is the record data when the source sent it inline (≤ 30,000 bytes); nil
	// otherwise. A RecordsWrite with dataSize > 0 and no InlineData needs a Read for its data.
	InlineData []byte
	// InitialWrite is the record's initial RecordsWrite when the source attached it (events of
	// updates and deletes); useful to satisfy an Incomplete without another round trip.
	InitialWrite json.RawMessage
	// Repeat marks a position-only entry: the subscription already delivered this message
	// (from the doorbell event that carried it) and now only tells where it lies in the feed.
	// Nothing is to be applied; a checkpoint may advance to its Cursor once the first
	// delivery is done.
	Repeat bool
}

// Page is one MessagesQuery page of a feed.
type Page struct {
	Entries []Entry
	Cursor  *Cursor // high-water mark of the scan; nil when nothing was scanned (web5 empty page)
	Drained bool    // the scan reached the head captured when the read began
	// Fingerprint is the server's digest of the scope when it reports one ("" otherwise).
	Fingerprint string
}

// ReadResult is a message fetched with MessagesRead. Data is nil when the source holds no data
// for it; otherwise the caller must Close it. Data is streamed, never buffered whole.
type ReadResult struct {
	CID     string
	Message json.RawMessage
	Data    io.ReadCloser
}

// EventKind says what a subscription delivered.
type EventKind int

const (
	EventMessage EventKind = iota // Entry is set; Cursor is its position when known
	EventEOSE                     // replay done; everything after is live. Cursor may be set
	EventEnd                      // terminal: Err says why (gap, disconnect, server error)
)

// Event is one delivery of a subscription.
type Event struct {
	Kind   EventKind
	Entry  Entry
	Cursor *Cursor
	Err    error // EventEnd only; a *GapError for a 410
}

// Subscription is a live tail of one tenant's feed. Events ends with exactly one EventEnd (or
// is closed after Close). Ack tells the server the engine durably handled everything up to c
// (flow control where the dialect has it; a no-op otherwise).
type Subscription interface {
	Events() <-chan Event
	Ack(c Cursor)
	Close() error
}

// EventPuller is a Subscription that can also hand out its events one at a time on the
// consumer's goroutine, with no pump goroutine or event buffer of its own: what a consumer
// holding thousands of idle subscriptions wants. Next returns the events Events would carry,
// in the same order, and false once the subscription is closed or ctx ends. A consumer uses
// either Next or Events, never both, and must Close the subscription when done.
type EventPuller interface {
	Next(ctx context.Context) (Event, bool)
}

// EventNotifier is an EventPuller that can also say when an event is ready, so that a
// consumer needs no goroutine of its own while the feed is idle: it registers a callback with
// Notify and drains with TryNext when called. The engine holds two feeds per link; with
// 10,000 idle links, one waiting reader goroutine per feed was 160 MiB of stacks.
type EventNotifier interface {
	EventPuller
	// Notify registers fn, which is called whenever an event may have become ready (a frame
	// arrived, or the subscription ended), and once right away. fn runs on the producer's
	// goroutine: it must return at once (start a drain; never take events inside it).
	Notify(fn func())
	// TryNext returns the next event without waiting: ok is false when none is ready yet,
	// and open is false once the subscription is closed and everything was handed out (the
	// same events, in the same order, as Next).
	TryNext() (ev Event, ok, open bool)
}

// NextEvents is how to take sub's events one at a time: its Next when it is an EventPuller,
// else a receive from Events (false when Events is closed or ctx ends).
func NextEvents(sub Subscription) func(ctx context.Context) (Event, bool) {
	if p, ok := sub.(EventPuller); ok {
		return p.Next
	}
	events := sub.Events()
	return func(ctx context.Context) (Event, bool) {
		select {
		case <-ctx.Done():
			return Event{}, false
		case ev, ok := <-events:
			return ev, ok
		}
	}
}

// ApplyKind is the outcome of applying a foreign message to a server.
type ApplyKind string

const (
	Applied    ApplyKind = "Applied"
	Duplicate  ApplyKind = "Duplicate"
	Superseded ApplyKind = "Superseded"
	Incomplete ApplyKind = "Incomplete" // Missing lists what the target lacks
	Invalid    ApplyKind = "Invalid"    // permanent; Reason says why
	Deferred   ApplyKind = "Deferred"   // retry later; Reason says why
)

// Succeeded reports whether the target now holds the message (or something newer).
func (k ApplyKind) Succeeded() bool { return k == Applied || k == Duplicate || k == Superseded }

// ApplyResult is what the target said about one applied message.
type ApplyResult struct {
	Kind         ApplyKind
	AncestryOnly bool // stored as history without data (DWN 204)
	Missing      []DependencyRef
	Reason       string
}

// DependencyRef names something the target lacks before it can accept a message.
type DependencyRef struct {
	Type            string `json:"type"` // Protocol, InitialWrite, Parent, Ancestor, Grant, RecordData, ...
	MessageCID      string `json:"messageCid,omitempty"`
	Protocol        string `json:"protocol,omitempty"`
	RecordID        string `json:"recordId,omitempty"`
	PermissionGrant string `json:"permissionGrantId,omitempty"`
	Terminal        bool   `json:"terminal,omitempty"`
}

// DigestKind says how a scope digest was obtained. Two digests are comparable only when their
// kinds are equal; otherwise the engine computes ListingDigest on both sides.
type DigestKind string

const (
	DigestFingerprint DigestKind = "fingerprint" // enbox feed fingerprint
	DigestSMTRoot     DigestKind = "smt-root"    // enbox-smt MessagesSync root
	DigestListing     DigestKind = "listing"     // XOR of SHA-256(cid) over a full CID listing
)

// Digest summarises the set of messages of a scope on one server.
type Digest struct {
	Kind  DigestKind
	Value string
}

// Tenant is one tenant on one endpoint, authorised by one signer. Every dialect implements it;
// a capability a server lacks is emulated here, never faked (each adapter documents how).
type Tenant interface {
	Endpoint() string
	Dialect() Dialect
	DID() string

	// FeedPage returns messages admitted after `after` (nil = from the start), in feed order.
	FeedPage(ctx context.Context, scope Scope, after *Cursor, limit int, cidsOnly bool) (Page, error)
	// ListCIDs returns the CIDs of every message of the scope (the inventory).
	ListCIDs(ctx context.Context, scope Scope) ([]string, error)
	// Subscribe tails the feed: replay after `from` (nil = live only), EOSE, then live events.
	Subscribe(ctx context.Context, scope Scope, from *Cursor) (Subscription, error)
	// Read fetches one message and its data stream.
	Read(ctx context.Context, cid string) (ReadResult, error)
	// Apply writes a foreign signed message (and its data, or nil) to this server.
	Apply(ctx context.Context, message json.RawMessage, data io.Reader) (ApplyResult, error)
	// Digest summarises the scope (fingerprint, SMT root or listing digest).
	Digest(ctx context.Context, scope Scope) (Digest, error)
	// Dependency fetches from this server the messages that satisfy ref (for Incomplete).
	Dependency(ctx context.Context, ref DependencyRef) ([]Entry, error)
}

// SMTTenant is implemented by enbox-smt tenants: the seed-era MessagesSync primitives.
type SMTTenant interface {
	Tenant
	SMTRoot(ctx context.Context, scope Scope) (string, error)
	SMTSubtree(ctx context.Context, scope Scope, prefix string) (string, error)
	SMTLeaves(ctx context.Context, scope Scope, prefix string) ([]string, error)
	// SMTDiff sends this side's subtree hashes at depth and returns the server's leaves that
	// differ (onlyRemote, with messages when the server includes them) and the prefixes where
	// the caller holds something the server lacks (onlyLocal).
	SMTDiff(ctx context.Context, scope Scope, hashes map[string]string, depth int) (onlyRemote []Entry, onlyLocal []string, err error)
}

// Opener resolves a tenant on an endpoint, signed for by signer (the tenant itself or a
// delegate with Messages grants). The engine is handed one: dialect.Pool in production, a
// failing one in tests.
type Opener interface {
	Tenant(ctx context.Context, endpoint string, dialect Dialect, did string, signer *msg.Signer) (Tenant, error)
}
