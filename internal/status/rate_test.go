package status_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// step is one status computation: the engine's progress at t0+at, and the rate (messages a
// minute) and ETA the status must then hold (eta 0: none shown).
type step struct {
	at             time.Duration
	applied, total int64
	due            bool // a reconcile is due (the pass still runs)
	rate           int64
	eta            time.Duration
}

// run feeds the steps to FromSnapshot, each on the previous status read back from JSON (as
// the operator reads the status it wrote), and checks each step's rate and ETA.
func run(t *testing.T, steps []step) v1alpha1.ReplicationLinkStatus {
	t.Helper()
	var cur v1alpha1.ReplicationLinkStatus
	for _, s := range steps {
		snap := syncer.LinkStatus{Phase: "initializing", NeedsReconcile: s.due,
			Progress: syncer.Progress{Applied: s.applied, Total: s.total}}
		i := in(v1alpha1.DirectionPull)
		i.Now = t0.Add(s.at)
		next := status.FromSnapshot(roundTrip(t, cur), snap, i)
		p := next.Progress
		if p == nil || p.RatePerMinute != s.rate {
			t.Fatalf("at +%v (%d/%d): progress %+v, want a rate of %d/min", s.at, s.applied, s.total, p, s.rate)
		}
		eta, ok := status.ETA(p)
		if ok != (s.eta > 0) || eta != s.eta {
			t.Fatalf("at +%v (%d/%d, rate %d/min): ETA %v (%v), want %v", s.at, s.applied, s.total, p.RatePerMinute, eta, ok, s.eta)
		}
		// kubectl get rl's PROGRESS column is the summary: it shows the ETA exactly when there is one.
		if strings.Contains(p.Summary, " ETA ") != ok || p.Summary != status.ProgressCell(p) {
			t.Fatalf("at +%v: summary (the PROGRESS column) %q, want %q", s.at, p.Summary, status.ProgressCell(p))
		}
		if s.rate == 0 && s.eta == 0 && (!s.due || s.total <= s.applied) && p.SampleTime != nil {
			t.Fatalf("at +%v: not copying, but a rate sample is kept: %+v", s.at, p)
		}
		cur = next
	}
	return cur
}

func roundTrip(t *testing.T, s v1alpha1.ReplicationLinkStatus) v1alpha1.ReplicationLinkStatus {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out v1alpha1.ReplicationLinkStatus
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRateAndETAOfACopy(t *testing.T) {
	const total = 10000
	copying := []step{
		{at: 0, applied: 0, total: total, due: true},                 // the first sample: no rate yet
		{at: 5 * time.Second, applied: 500, total: total, due: true}, // under 10s since: kept
		// 1000 in 10s = 6000/min (100/s); 9000 left take 90s.
		{at: 10*time.Second + 700*time.Millisecond, applied: 1000, total: total, due: true, rate: 6000, eta: 90 * time.Second},
		// 1500 in 30s = 3000/min, weighed 1-e^-1: 6000 - 0.6321*3000 = 4104/min; 7500/4104 min = 110s.
		{at: 40 * time.Second, applied: 2500, total: total, due: true, rate: 4104, eta: 110 * time.Second},
	}
	last := run(t, copying)

	// A status read again soon after changes nothing: no extra status write.
	i := in(v1alpha1.DirectionPull)
	i.Now = t0.Add(45 * time.Second)
	again := status.FromSnapshot(last, syncer.LinkStatus{Phase: "initializing", NeedsReconcile: true,
		Progress: syncer.Progress{Applied: 2500, Total: total}}, i)
	if !status.Equal(last, again) {
		t.Fatalf("a read 5s later changed the status:\n%+v\n%+v", last.Progress, again.Progress)
	}

	t.Run("stalls", func(t *testing.T) {
		// Nothing in 30s: 4104 * e^-1 = 1510/min; 7500/1510 min = 298s.
		run(t, append(copying, step{at: 70 * time.Second, applied: 2500, total: total, due: true, rate: 1510, eta: 298 * time.Second}))
	})
	t.Run("finishes", func(t *testing.T) {
		run(t, append(copying, step{at: 60 * time.Second, applied: total, total: total, due: true}))
	})
	t.Run("ends short of the total", func(t *testing.T) {
		// A listed message turned out superseded: the pass is over (no reconcile due).
		run(t, append(copying, step{at: 60 * time.Second, applied: 9999, total: total}))
	})
	t.Run("a new pass counts from 0 again", func(t *testing.T) {
		run(t, append(copying,
			step{at: 60 * time.Second, applied: 50, total: 300, due: true}, // a fresh sample, no rate
			// 190 in 10s = 1140/min, the old pass's rate forgotten; 60/1140 min = 3s.
			step{at: 70 * time.Second, applied: 240, total: 300, due: true, rate: 1140, eta: 3 * time.Second}))
	})
}

func TestNoRateWithoutProgressOrTotal(t *testing.T) {
	t.Run("no progress", func(t *testing.T) {
		last := run(t, []step{{at: 0, applied: 100, total: 1000, due: true}, {at: 20 * time.Second, applied: 100, total: 1000, due: true},
			{at: 40 * time.Second, applied: 100, total: 1000, due: true}})
		// A stall at rate 0 keeps its first sample: the status does not change, so it is not
		// written again for as long as the stall lasts.
		if got := last.Progress.SampleTime; got == nil || !got.Time.Equal(t0) {
			t.Errorf("a stall moved the rate sample to %v, want it kept at %v", got, t0)
		}
	})
	t.Run("resumes after a stall", func(t *testing.T) {
		// 0/min since 0s; then 600 more by 60s: 600/min measured over the whole minute.
		run(t, []step{{at: 0, applied: 100, total: 1000, due: true}, {at: 30 * time.Second, applied: 100, total: 1000, due: true},
			{at: time.Minute, applied: 700, total: 1000, due: true, rate: 600, eta: 30 * time.Second}})
	})
	t.Run("total unknown", func(t *testing.T) {
		run(t, []step{{at: 0, applied: 100, due: true}, {at: 20 * time.Second, applied: 300, due: true}})
	})
	t.Run("sample from a clock ahead", func(t *testing.T) {
		// Another replica stamped the sample later than this one's now: start over.
		run(t, []step{{at: time.Minute, applied: 0, total: 100, due: true}, {at: 0, applied: 10, total: 100, due: true},
			{at: 10 * time.Second, applied: 20, total: 100, due: true, rate: 60, eta: 80 * time.Second}})
	})
}
