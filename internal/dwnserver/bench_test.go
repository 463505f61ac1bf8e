package dwnserver

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkStart measures one server's start (process launch to GET /health 200) and stop.
func BenchmarkStart(b *testing.B) {
	var started, stopped time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		s, err := StartProcess(b.Context(), filepath.Join(b.TempDir(), strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		started += t1.Sub(t0)
		stopped += time.Since(t1)
		i++
	}
	b.ReportMetric(float64(started.Milliseconds())/float64(i), "start-ms")
	b.ReportMetric(float64(stopped.Milliseconds())/float64(i), "stop-ms")
}

// BenchmarkSeed measures seeding throughput (8 in flight, tmpfs data dir when usable):
// 200 small records per iteration, then 20 large ones with 20 updates and 20 deletes.
func BenchmarkSeed(b *testing.B) {
	s := Start(b, 1)[0]
	c := NewClient(b)
	tenant, err := c.NewTenant()
	if err != nil {
		b.Fatal(err)
	}
	var small, mixed struct {
		messages int
		seconds  float64
	}
	for b.Loop() {
		r, err := c.Seed(s.URL, tenant, SeedSpec{Records: 200})
		if err != nil {
			b.Fatal(err)
		}
		small.messages += r.Messages
		small.seconds += r.Seconds
		r, err = c.Seed(s.URL, tenant, SeedSpec{Large: 20, Updates: 20, Deletes: 20})
		if err != nil {
			b.Fatal(err)
		}
		mixed.messages += r.Messages
		mixed.seconds += r.Seconds
	}
	b.ReportMetric(float64(small.messages)/small.seconds, "small-msg/s")
	b.ReportMetric(float64(mixed.messages)/mixed.seconds, "large+upd+del-msg/s")
}
