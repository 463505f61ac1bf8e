package linkstate

import (
	"testing"
	"time"
)

// One pull delivery through the machine: Delivered → ApplyPull, DeliveryDone → CommitCheckpoint.
func BenchmarkPullDeliveryStep(b *testing.B) {
	m := New(Config{Mode: ModeLive, Pull: true, Push: true}, testTiming())
	env := Env{Now: t0}
	m.Step(env, Start{})
	m.Step(env, FeedOpened{Dir: Pull, Epoch: m.Epoch(Pull)})
	m.Step(env, FeedOpened{Dir: Push, Epoch: m.Epoch(Push)})
	ep := m.Epoch(Pull)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		eff := m.Step(env, Delivered{Dir: Pull, Epoch: ep, Entry: entry("c", cur("s", "e", i+1))})
		ap := eff[len(eff)-1].(ApplyPull)
		m.Step(env, DeliveryDone{Epoch: ep, Ordinal: ap.Ordinal, CID: "c", Outcome: OutcomeOK})
		env.Now = env.Now.Add(time.Microsecond)
	}
}
