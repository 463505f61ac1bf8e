package ledger

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
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

// BenchmarkCheck measures the verification Open runs on an existing file before it loads the
// records (bbolt's page check, no decoding: "open-verify") and what `dwnsync ledger check`
// runs (the page check and decoding every record: "ledger-check"), for ledgers of 1k, 10k and
// 50k links whose records carry 10 dead letters each.
func BenchmarkCheck(b *testing.B) {
	for _, links := range []int{1000, 10000, 50000} {
		path := filepath.Join(b.TempDir(), "ledger.db")
		writeLinks(b, path, links, 10)
		for _, mode := range []struct {
			name   string
			decode bool
		}{{"open-verify", false}, {"ledger-check", true}} {
			b.Run(strconv.Itoa(links)+"-links/"+mode.name, func(b *testing.B) {
				var rep CheckReport
				for i := 0; i < b.N; i++ {
					var err error
					if rep, err = check(path, FullCheckMaxBytes, mode.decode); err != nil || rep.Records != links {
						b.Fatalf("%+v %v", rep, err)
					}
				}
				b.ReportMetric(float64(rep.Bytes)/(1<<20), "MiB")
			})
		}
	}
}

// writeLinks fills a ledger file with n records in one transaction.
func writeLinks(b *testing.B, path string, n, deadLetters int) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		bucket, err := tx.CreateBucket(linksBucket)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			rec := newLink(i)
			rec.Key, _ = LinkKey(rec.Tenant, rec.RemoteEndpoint, rec.Scope)
			rec.Pull.Commit(cur("s", strconv.Itoa(i)))
			for d := 0; d < deadLetters; d++ {
				rec.AddDeadLetter(DeadLetter{CID: "bafyreib" + strconv.Itoa(i*100+d), Direction: ls.Pull, Reason: "invalid: a reason of some length"})
			}
			v, err := encodeRecord(rec)
			if err != nil {
				return err
			}
			if err := bucket.Put([]byte(rec.Key), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
