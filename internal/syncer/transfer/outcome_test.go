package transfer

import (
	"errors"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

func TestOutcomeDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Outcome
		want bool
	}{
		{"invalid", Outcome{Kind: dwn.Invalid, Reason: ReasonCIDMismatch}, true},
		{"dependencies the source lacks", Outcome{Kind: dwn.Incomplete, Reason: ReasonUnresolvableDeps + ": Protocol p"}, true},
		{"incomplete still being resolved", Outcome{Kind: dwn.Incomplete}, false},
		{"deferred", Outcome{Kind: dwn.Deferred, Reason: "storage"}, false},
		{"transport error", Outcome{Err: errors.New("connection refused")}, false},
		{"applied", Outcome{Kind: dwn.Applied}, false},
		{"source gone", Outcome{Kind: KindSourceGone}, false},
	} {
		if got := tc.o.DeadLetter(); got != tc.want {
			t.Errorf("%s: DeadLetter() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
