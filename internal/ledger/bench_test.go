package ledger

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkCheckpointAdvance compares advancing one link's pull checkpoint per event with
// group commit (Flush only at the end, as the engine does between acknowledgements) against
// making every single advance durable (one fsync per event).
func BenchmarkCheckpointAdvance(b *testing.B) {
	for _, mode := range []struct {
		name       string
		flushEvery int
	}{{"group-commit", 0}, {"fsync-per-event", 1}, {"flush-every-100", 100}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "ledger.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rec, err := s.GetOrCreate(newLink(1))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				pos := strconv.Itoa(i)
				if err := s.Update(rec.Key, func(r *Record) { r.Pull.Commit(cur("s", pos)) }); err != nil {
					b.Fatal(err)
				}
				if mode.flushEvery > 0 && i%mode.flushEvery == 0 {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "advances/s")
		})
	}
}
