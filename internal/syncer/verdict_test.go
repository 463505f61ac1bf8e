package syncer

import (
	"errors"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

// One classifier reads the copier's outcomes for both feeds; the pull worker passes whether it
// has attempts left, push always passes true (its machine counts the batch's retries). The
// directions differ only through that argument, so each row is checked both ways.
func TestClassifyOutcomes(t *testing.T) {
	unauthorized := &dwn.Error{Op: "apply", Kind: dwn.Unauthorized, Detail: "grant missing"}
	transient := &dwn.Error{Op: "apply", Kind: dwn.Transient, Detail: "503"}
	type want struct {
		outcome ls.Outcome
		retry   bool
	}
	for _, c := range []struct {
		name     string
		o        transfer.Outcome
		err      error
		left     want // retries left (push, or a pull attempt before the last)
		lastPull want // the pull worker's last attempt
	}{
		{"applied", transfer.Outcome{CID: "c", Kind: dwn.Applied}, nil, want{ls.OutcomeOK, false}, want{ls.OutcomeOK, false}},
		{"duplicate", transfer.Outcome{CID: "c", Kind: dwn.Duplicate}, nil, want{ls.OutcomeOK, false}, want{ls.OutcomeOK, false}},
		{"source gone", transfer.Outcome{CID: "c", Kind: transfer.KindSourceGone}, nil, want{ls.OutcomeOK, false}, want{ls.OutcomeOK, false}},
		{"invalid", transfer.Outcome{CID: "c", Kind: dwn.Invalid, Reason: "bad"}, nil, want{ls.OutcomeDeadLetter, false}, want{ls.OutcomeDeadLetter, false}},
		{"unauthorized", transfer.Outcome{CID: "c", Err: unauthorized}, nil, want{ls.OutcomeRepair, false}, want{ls.OutcomeRepair, false}},
		{"unauthorized before the copy", transfer.Outcome{}, unauthorized, want{ls.OutcomeRepair, false}, want{ls.OutcomeRepair, false}},
		{"transient", transfer.Outcome{CID: "c", Err: transient}, nil, want{ls.OutcomeTransient, true}, want{ls.OutcomeRepair, false}},
		{"dial failed", transfer.Outcome{}, errors.New("no route"), want{ls.OutcomeTransient, true}, want{ls.OutcomeRepair, false}},
		{"deferred", transfer.Outcome{CID: "c", Kind: dwn.Deferred}, nil, want{ls.OutcomeTransient, true}, want{ls.OutcomeRepair, false}},
		{"incomplete", transfer.Outcome{CID: "c", Kind: dwn.Incomplete}, nil, want{ls.OutcomeTransient, true}, want{ls.OutcomeRepair, false}},
		{"incomplete, source lacks the deps", transfer.Outcome{CID: "c", Kind: dwn.Incomplete, Reason: transfer.ReasonUnresolvableDeps + ": x"}, nil,
			want{ls.OutcomeTransient, true}, want{ls.OutcomeDeadLetter, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, w := range []struct {
				left bool
				want want
			}{{true, c.left}, {false, c.lastPull}} {
				v := classify(c.o, c.err, w.left)
				if v.outcome != w.want.outcome || v.retry != w.want.retry {
					t.Errorf("retries left %v: outcome %d retry %v, want %d %v", w.left, v.outcome, v.retry, w.want.outcome, w.want.retry)
				}
				if v.outcome != ls.OutcomeOK && v.reason == "" {
					t.Errorf("retries left %v: a failure without a reason", w.left)
				}
			}
		})
	}
	if v := classify(transfer.Outcome{CID: "c", Err: unauthorized}, nil, true); v.errKind != string(dwn.Unauthorized) {
		t.Errorf("unauthorized error kind %q", v.errKind)
	}
}
