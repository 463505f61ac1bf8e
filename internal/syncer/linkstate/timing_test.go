package linkstate

import (
	"testing"
	"time"
)

func TestDefaultTimingMatchesSpec(t *testing.T) {
	d := DefaultTiming()
	checks := []struct {
		name      string
		got, want time.Duration
	}{
		{"PUSH_DEBOUNCE_MS", d.PushDebounce, 100 * time.Millisecond},
		{"echo TTL", d.EchoTTL, 60 * time.Second},
		{"degraded-poll base", d.DegradedPollBase, 15 * time.Second},
		{"degraded-poll jitter", d.DegradedPollJitter, 15 * time.Second},
		{"reconcile default", d.ReconcileDefault, 1500 * time.Millisecond},
		{"reconcile start-up dirty", d.ReconcileStartupDirty, 1000 * time.Millisecond},
		{"reconcile EOSE dirty", d.ReconcileEOSEDirty, 500 * time.Millisecond},
		{"reconcile post-repair", d.ReconcilePostRepair, 500 * time.Millisecond},
		{"reconcile retry", d.ReconcileRetry, 5000 * time.Millisecond},
		{"live interval", d.VerifyInterval, 5 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if d.EchoCap != 10000 || d.MaxUncommitted != 100 || d.MaxRepairAttempts != 3 {
		t.Errorf("caps: echo %d uncommitted %d repairs %d", d.EchoCap, d.MaxUncommitted, d.MaxRepairAttempts)
	}
	if got := d.PushRetryBackoff; len(got) != 4 || got[1] != 250*time.Millisecond || got[2] != time.Second || got[3] != 2*time.Second {
		t.Errorf("PUSH_RETRY_BACKOFF_MS = %v", got)
	}
	if got := d.RepairBackoff; len(got) != 3 || got[0] != time.Second || got[1] != 3*time.Second || got[2] != 10*time.Second {
		t.Errorf("REPAIR_BACKOFF_MS = %v", got)
	}
}
