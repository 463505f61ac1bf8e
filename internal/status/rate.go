package status

import (
	"math"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

const (
	// RateSampleEvery is the shortest time between two rate samples: closer ones (the
	// operator's coalesced writes, each `dwnsync status` call) keep the previous sample, so a
	// burst of status reads neither skews the rate nor adds a status write.
	RateSampleEvery = 10 * time.Second
	// rateSmoothing is the EWMA time constant: a sample dt after the previous one weighs
	// 1-exp(-dt/rateSmoothing), whatever the spacing of the samples.
	rateSmoothing = 30 * time.Second
)

// sampleRate fills next's rate record from prev's (the status last computed or written) at
// now. Pure: the same sequence of snapshots and times gives the same rates. The times are
// whole seconds, as the API server stores them, so a status read back samples alike.
func sampleRate(prev, next *v1alpha1.Progress, copying bool, now time.Time) {
	if next == nil || !copying {
		return // not copying: no rate, and a later pass starts from a fresh sample
	}
	now = now.UTC().Truncate(time.Second)
	fresh := func() {
		t := metav1.NewTime(now)
		next.RatePerMinute, next.SampleTime, next.SampleApplied = 0, &t, next.Applied
	}
	if prev == nil || prev.SampleTime == nil || next.Applied < prev.SampleApplied {
		fresh() // the first sample of a pass, or a new pass counting from 0 again
		return
	}
	dt := now.Sub(prev.SampleTime.Time)
	if dt < 0 {
		fresh() // a sample from the future: another replica's clock; start over
		return
	}
	next.RatePerMinute, next.SampleTime, next.SampleApplied = prev.RatePerMinute, prev.SampleTime.DeepCopy(), prev.SampleApplied
	if dt < RateSampleEvery || (next.Applied == prev.SampleApplied && prev.RatePerMinute == 0) {
		// Too soon; or stalled with the rate already down to 0, where a new sample would
		// write the status every interval for as long as the stall lasts, and change nothing.
		return
	}
	measured := float64(next.Applied-prev.SampleApplied) * float64(time.Minute) / float64(dt)
	rate := measured
	if prev.RatePerMinute > 0 {
		w := 1 - math.Exp(-float64(dt)/float64(rateSmoothing))
		rate = float64(prev.RatePerMinute) + w*(measured-float64(prev.RatePerMinute))
	}
	t := metav1.NewTime(now)
	next.RatePerMinute, next.SampleTime, next.SampleApplied = int64(math.Round(rate)), &t, next.Applied
}

// ETA is the time the copy still needs at its current rate; false when it is not copying, its
// total is unknown or it makes no progress.
func ETA(p *v1alpha1.Progress) (time.Duration, bool) {
	if p == nil || p.RatePerMinute <= 0 || p.Total <= p.Applied {
		return 0, false
	}
	left := float64(p.Total-p.Applied) / float64(p.RatePerMinute) * float64(time.Minute)
	return time.Duration(left).Round(time.Second), true
}

// ProgressCell is the PROGRESS cell of `kubectl get rl` and `dwnsync status` (the status's
// progress.summary): applied/total, and while the pass copies its rate and the time left at
// that rate ("120/400 85/s ETA 3s"). It is computed from the fields, so a status written by an
// older operator shows alike.
func ProgressCell(p *v1alpha1.Progress) string {
	cell := ProgressSummary(p.Applied, p.Total)
	if eta, ok := ETA(p); ok {
		cell += " " + Rate(p.RatePerMinute) + " ETA " + duration.HumanDuration(max(eta, time.Second))
	}
	return cell
}

// Rate is a messages-per-minute rate the short way: per second from 1/s up ("85/s", "2.5/s"),
// per minute below.
func Rate(perMinute int64) string {
	switch {
	case perMinute >= 600:
		return strconv.FormatInt((perMinute+30)/60, 10) + "/s"
	case perMinute >= 60:
		return strconv.FormatFloat(float64(perMinute)/60, 'f', 1, 64) + "/s"
	}
	return strconv.FormatInt(perMinute, 10) + "/min"
}
