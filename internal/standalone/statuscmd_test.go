package standalone_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/status"
)

// The PROGRESS cell shows the rate and the time left only while a pass copies at a known rate.
func TestProgressCellShowsRateAndETAWhileCopying(t *testing.T) {
	sample := metav1.NewTime(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	progress := func(applied, total, perMinute int64) *v1alpha1.Progress {
		p := &v1alpha1.Progress{Applied: applied, Total: total, Summary: status.ProgressSummary(applied, total), RatePerMinute: perMinute}
		if perMinute > 0 {
			p.SampleTime, p.SampleApplied = &sample, applied
		}
		return p
	}
	cases := []struct {
		p    *v1alpha1.Progress
		want string
	}{
		{progress(1234, 10000, 5100), "1234/10000 85/s ETA 103s"}, // 8766 left at 85/s
		{progress(100, 400, 90), "100/400 1.5/s ETA 3m20s"},
		{progress(10, 40, 6), "10/40 6/min ETA 5m"},
		{progress(120, 400, 0), "120/400"},       // stalled, or no rate measured yet
		{progress(400, 400, 0), "400/400"},       // finished
		{progress(120, 0, 0), "120"},             // total unknown
		{progress(9999, 9999, 600), "9999/9999"}, // done, an old rate left: no ETA
	}
	for _, c := range cases {
		if got := status.ProgressCell(c.p); got != c.want {
			t.Errorf("ProgressCell(%+v) = %q, want %q", *c.p, got, c.want)
		}
	}

	list := &v1alpha1.ReplicationLinkList{Items: []v1alpha1.ReplicationLink{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "alice"},
		Status:     v1alpha1.ReplicationLinkStatus{Phase: v1alpha1.PhaseInitializing, NeedsReconcile: true, Progress: cases[0].p},
	}}}
	var out bytes.Buffer
	if err := standalone.PrintLinks(&out, list, sample.Time, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1234/10000 85/s ETA 103s") {
		t.Errorf("dwnsync status lacks the rate and ETA:\n%s", out.String())
	}
}
