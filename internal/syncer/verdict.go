package syncer

import (
	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// verdict is what one copier outcome means for its feed.
type verdict struct {
	outcome ls.Outcome
	reason  string
	errKind string
	// retry: try the entry again later; outcome is then OutcomeTransient.
	retry bool
}

// classify is the one reading of a copier outcome, for both feeds (docs/decisions.md D22).
// err is a failure before the copier gave an outcome (resolving a tenant, a short result).
// retriesLeft says whether the caller may still try the entry again: the pull worker counts
// its own attempts; push passes true, because the machine counts the batch's retries.
//
//   - the target holds it (or something newer), or the source no longer does: OK;
//   - refused for good (Invalid, or a kind no retry changes): dead letter (OutcomeDeadLetter);
//   - Unauthorized: repair (OutcomeRepair) in both directions, without retrying the entry —
//     the same request signed with the same grants is refused again;
//   - anything else (transport errors, Deferred, Incomplete) retries while retriesLeft;
//   - then: dead letter when the source cannot supply the dependencies, else repair.
func classify(o transfer.Outcome, err error, retriesLeft bool) verdict {
	switch {
	case err == nil && o.Succeeded():
		return verdict{outcome: ls.OutcomeOK}
	case err == nil && o.Kind == dwn.Invalid:
		return verdict{outcome: ls.OutcomeDeadLetter, reason: o.Reason}
	case err == nil && o.Err == nil && !o.Retryable():
		return verdict{outcome: ls.OutcomeDeadLetter, reason: o.String()}
	}
	if err == nil {
		err = o.Err
	}
	reason := o.String()
	if err != nil && err != o.Err {
		reason = err.Error()
	}
	switch {
	case dwn.IsUnauthorized(err):
		return verdict{outcome: ls.OutcomeRepair, reason: err.Error(), errKind: errorKind(err)}
	case retriesLeft:
		return verdict{outcome: ls.OutcomeTransient, reason: reason, errKind: errorKind(err), retry: true}
	case o.DeadLetter():
		return verdict{outcome: ls.OutcomeDeadLetter, reason: o.String()}
	}
	return verdict{outcome: ls.OutcomeRepair, reason: reason, errKind: errorKind(err)}
}
