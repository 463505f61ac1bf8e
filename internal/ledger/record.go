package ledger

import (
	"math/big"
	"strings"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Checkpoint is one direction's durable progress (docs/engine-behaviour.md#checkpoints). Contiguous
// is the resume point: every delivery up to it has been applied. Received is the highest position
// seen, for observability only.
type Checkpoint struct {
	Received   *dwn.Cursor `json:"received,omitempty"`
	Contiguous *dwn.Cursor `json:"contiguous,omitempty"`

	// reset marks an explicit Reset inside Store.Update, which may move the resume point back.
	reset bool
}

// Observe records a position as received when it is newer than the one held (or the domain
// changed, or the positions cannot be compared).
func (c *Checkpoint) Observe(cur dwn.Cursor) {
	if c.Received == nil || !positionNotAfter(cur, *c.Received) {
		c.Received = cursorPtr(cur)
	}
}

// Commit moves the resume point to cur unless that would move it backwards within the same cursor
// domain (which fixes docs/engine-behaviour.md#e3). It reports whether the checkpoint changed.
func (c *Checkpoint) Commit(cur dwn.Cursor) bool {
	if c.Contiguous != nil && positionNotAfter(cur, *c.Contiguous) {
		return false
	}
	c.Contiguous = cursorPtr(cur)
	c.Observe(cur)
	return true
}

// Reset sets both positions to to, or clears both (docs/engine-behaviour.md#checkpoint-reset).
// Inside Store.Update this is the one way to move the resume point backwards.
func (c *Checkpoint) Reset(to *dwn.Cursor) {
	c.reset = true
	if to == nil {
		c.Received, c.Contiguous = nil, nil
		return
	}
	c.Received, c.Contiguous = cursorPtr(*to), cursorPtr(*to)
}

// positionNotAfter reports whether a is in b's domain and at or before it. Cursors of different
// domains, or with positions we cannot order, are never "not after": the newer one wins.
func positionNotAfter(a, b dwn.Cursor) bool {
	if a.Domain() != b.Domain() {
		return false
	}
	cmp, ok := ComparePositions(a.Position, b.Position)
	return ok && cmp <= 0
}

// ComparePositions orders two positions of one cursor domain. enbox positions are decimal
// integers of any size (compared as big integers, never as strings or floats); web5 positions
// are the JSON text of the server's cursor value: an integer (SQL stores) or a quoted ULID
// (LevelDB), and ULIDs order lexicographically. ok is false when the two cannot be ordered.
func ComparePositions(a, b string) (cmp int, ok bool) {
	if x, okA := new(big.Int).SetString(a, 10); okA {
		if y, okB := new(big.Int).SetString(b, 10); okB {
			return x.Cmp(y), true
		}
		return 0, false
	}
	if isQuoted(a) && isQuoted(b) {
		return strings.Compare(a, b), true
	}
	return 0, false
}

func isQuoted(s string) bool { return len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' }

func cursorPtr(c dwn.Cursor) *dwn.Cursor { return &c }

// Counters count messages applied each way, and failures.
type Counters struct {
	Pulled int64 `json:"pulled"`
	Pushed int64 `json:"pushed"`
	Failed int64 `json:"failed"`
}

// DeadLetter is a message the link gave up on (Invalid, terminal dependency, CID mismatch).
type DeadLetter struct {
	CID       string    `json:"cid"`
	Direction ls.Dir    `json:"direction"` // written "pull" or "push"
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// Record is one link's durable state (docs/engine-behaviour.md#ledger-record, plus the push
// checkpoint of the durable-feed design). Connectivity is runtime-only and deliberately absent.
type Record struct {
	Key            string       `json:"key"`
	Tenant         string       `json:"tenant"`
	LocalEndpoint  string       `json:"localEndpoint,omitempty"`
	RemoteEndpoint string       `json:"remoteEndpoint"`
	ScopeID        string       `json:"scopeId"`
	Scope          dwn.Scope    `json:"scope"`
	Phase          ls.Phase     `json:"status"`
	NeedsReconcile bool         `json:"needsReconcile"`
	RepairAttempts int          `json:"repairAttempts,omitempty"`
	Pull           Checkpoint   `json:"pull"`
	Push           Checkpoint   `json:"push"`
	LastActivity   time.Time    `json:"lastActivity"`
	Counters       Counters     `json:"counters"`
	DeadLetters    []DeadLetter `json:"deadLetters,omitempty"`
	LastReconcile  time.Time    `json:"lastReconcile"`
	LastConverged  time.Time    `json:"lastConverged"`
	// OwnerUID is the UID of the ReplicationLink that runs this key (the oldest that claims it);
	// only that link's deletion removes the record. Empty for `dwnsync run` and older records.
	OwnerUID string `json:"ownerUID,omitempty"`
}

// Checkpoint returns the checkpoint of one direction.
func (r *Record) Checkpoint(d ls.Dir) *Checkpoint {
	if d == ls.Push {
		return &r.Push
	}
	return &r.Pull
}

// AddDeadLetter records a failure, replacing an older entry for the same message and
// direction. The store caps the list (oldest dropped first).
func (r *Record) AddDeadLetter(d DeadLetter) {
	kept := r.DeadLetters[:0]
	for _, old := range r.DeadLetters {
		if old.CID != d.CID || old.Direction != d.Direction {
			kept = append(kept, old)
		}
	}
	r.DeadLetters = append(kept, d)
}

// ClearDeadLetter drops the entry for a message that has since been applied.
func (r *Record) ClearDeadLetter(cid string, d ls.Dir) {
	kept := r.DeadLetters[:0]
	for _, old := range r.DeadLetters {
		if old.CID != cid || old.Direction != d {
			kept = append(kept, old)
		}
	}
	r.DeadLetters = kept
}

// clone deep-copies a record so callers never share memory with the store's cache.
func (r Record) clone() Record {
	out := r
	out.Scope.ProtocolPathPrefixes = append([]string(nil), r.Scope.ProtocolPathPrefixes...)
	out.Pull = r.Pull.clone()
	out.Push = r.Push.clone()
	out.DeadLetters = append([]DeadLetter(nil), r.DeadLetters...)
	return out
}

func (c Checkpoint) clone() Checkpoint {
	var out Checkpoint
	if c.Received != nil {
		out.Received = cursorPtr(*c.Received)
	}
	if c.Contiguous != nil {
		out.Contiguous = cursorPtr(*c.Contiguous)
	}
	return out
}
