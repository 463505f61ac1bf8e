package sharding

import (
	"fmt"
	"time"
)

// Timing is the shard Lease's timing. A shard renews every RenewInterval. It stops every link
// itself when it has not renewed for LeaseDuration-Margin; the sharder takes its links only
// after LeaseDuration+Margin without a renewal. The 2*Margin between the two covers the clock
// skew between the two pods and the time the shard takes to stop its links.
type Timing struct {
	LeaseDuration time.Duration
	RenewInterval time.Duration
	Margin        time.Duration
}

// DefaultTiming: a shard renews every 3 s, stops its links after 10 s without a renewal, and
// its links move after 20 s.
var DefaultTiming = Timing{LeaseDuration: 15 * time.Second, RenewInterval: 3 * time.Second, Margin: 5 * time.Second}

// Validate names the field at fault.
func (t Timing) Validate() error {
	switch {
	case t.LeaseDuration <= 0 || t.RenewInterval <= 0 || t.Margin <= 0:
		return fmt.Errorf("shard lease timing: leaseDuration (%v), renewInterval (%v) and margin (%v) must all be positive", t.LeaseDuration, t.RenewInterval, t.Margin)
	case 2*t.Margin >= t.LeaseDuration:
		return fmt.Errorf("shard lease timing: margin %v must be less than half of leaseDuration %v, or a shard stops its links before its first renewal is due", t.Margin, t.LeaseDuration)
	case t.RenewInterval >= t.LeaseDuration-t.Margin:
		return fmt.Errorf("shard lease timing: renewInterval %v must be shorter than leaseDuration-margin (%v), or a healthy shard fences itself between renewals", t.RenewInterval, t.LeaseDuration-t.Margin)
	}
	return nil
}

// MustStop tells a shard whose last successful renewal began at lastRenew that it must stop
// every link now: its Lease may expire before it can renew again. lastRenew is taken before
// the renewal request was sent, so it is never later than the renewTime the sharder reads.
func (t Timing) MustStop(lastRenew, now time.Time) bool {
	return !now.Before(lastRenew.Add(t.LeaseDuration - t.Margin))
}

// StopsBy is the time a shard that renewed at lastRenew has stopped its links by, at the latest.
func (t Timing) StopsBy(lastRenew time.Time) time.Time {
	return lastRenew.Add(t.LeaseDuration - t.Margin)
}

// TakeableAt is the time from which the sharder may declare dead a shard that renewed at
// renewTime and hand its links to others.
func (t Timing) TakeableAt(renewTime time.Time) time.Time {
	return renewTime.Add(t.LeaseDuration + t.Margin)
}
