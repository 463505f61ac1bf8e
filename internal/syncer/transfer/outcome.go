package transfer

import (
	"fmt"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// KindSourceGone is the outcome of an entry the source no longer holds (deleted or pruned as
// superseded between listing and reading it; docs/engine-behaviour.md#e16,
// docs/engine-behaviour.md#e17). Nothing is owed: whatever replaced it on the source is listed or
// delivered on its own. It counts as success. It is the copier's own verdict, which no server ever
// returns, so it lives here rather than among dwn's kinds.
const KindSourceGone dwn.ApplyKind = "SourceGone"

// Reasons this package sets on Invalid outcomes.
const (
	ReasonCIDMismatch      = "cid-mismatch"                // the source served a message whose CID differs from the one asked for
	ReasonUninspectable    = "uninspectable-message"       // not a DWN message we can read
	ReasonTerminalRef      = "terminal-dependency"         // the target says a dependency can never be satisfied
	ReasonBudgetExhausted  = "dependency-budget-exhausted" // more than MaxDependencyPasses rounds for one root
	ReasonUnresolvableDeps = "dependencies-not-on-source"  // Incomplete, and the source cannot supply what is missing
)

// Outcome is what happened to one entry.
type Outcome struct {
	CID    string
	Kind   dwn.ApplyKind // "" when Err is set
	Reason string
	// Err is a transport or server error (from reading the source or applying to the target);
	// the caller decides whether and when to retry.
	Err error
	// AncestryOnly: the target stored the message as history without data (DWN 204).
	AncestryOnly bool
	// Dependencies counts the messages newly applied (Applied, not Duplicate) to the target to
	// satisfy an Incomplete, recursively.
	Dependencies int
}

// Succeeded reports whether the target now holds the message (or something that supersedes it).
func (o Outcome) Succeeded() bool {
	return o.Err == nil && (o.Kind.Succeeded() || o.Kind == KindSourceGone)
}

// DeadLetter reports whether the caller should record the entry as a dead letter: Invalid, or
// (once the caller has given its retries) Incomplete with dependencies the source cannot
// supply — waiting on the same two servers will not change that, so the feed moves on and a
// later reconcile retries it.
func (o Outcome) DeadLetter() bool {
	return o.Err == nil && (o.Kind == dwn.Invalid || (o.Kind == dwn.Incomplete && strings.HasPrefix(o.Reason, ReasonUnresolvableDeps)))
}

// Retryable reports whether trying again later may succeed: transport errors, Deferred, and
// Incomplete whose dependencies could not be found yet. Invalid is permanent.
func (o Outcome) Retryable() bool {
	return o.Err != nil || o.Kind == dwn.Deferred || o.Kind == dwn.Incomplete
}

func (o Outcome) String() string {
	switch {
	case o.Err != nil:
		return fmt.Sprintf("%s: error: %v", o.CID, o.Err)
	case o.Reason != "":
		return fmt.Sprintf("%s: %s (%s)", o.CID, o.Kind, o.Reason)
	default:
		return fmt.Sprintf("%s: %s", o.CID, o.Kind)
	}
}

// Result holds one Outcome per input entry, in input order.
type Result struct {
	Outcomes []Outcome
}

// Succeeded lists the CIDs that succeeded, in input order.
func (r Result) Succeeded() []string {
	var out []string
	for _, o := range r.Outcomes {
		if o.Succeeded() {
			out = append(out, o.CID)
		}
	}
	return out
}

// FirstFailure is the index of the first entry that did not succeed, or -1. A feed checkpoint
// may advance up to (not including) it.
func (r Result) FirstFailure() int {
	for i, o := range r.Outcomes {
		if !o.Succeeded() {
			return i
		}
	}
	return -1
}

// Failed lists the outcomes that did not succeed.
func (r Result) Failed() []Outcome {
	var out []Outcome
	for _, o := range r.Outcomes {
		if !o.Succeeded() {
			out = append(out, o)
		}
	}
	return out
}

// Count is the number of outcomes of kind k (without a transport error).
func (r Result) Count(k dwn.ApplyKind) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Err == nil && o.Kind == k {
			n++
		}
	}
	return n
}
