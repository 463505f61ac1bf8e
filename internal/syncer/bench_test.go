package syncer

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// Live pull throughput on two in-process enbox nodes: b.N writes land on the remote, the
// benchmark ends when local holds them all.
func BenchmarkEngineLivePull(b *testing.B) {
	local := dwntest.Start(b, dwntest.Options{})
	remote := dwntest.Start(b, dwntest.Options{})
	id, err := dwntest.NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	te := startEngine(b, engineOpts{})
	key, err := te.Apply(LinkConfig{Name: "bench", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer})
	if err != nil {
		b.Fatal(err)
	}
	warm, _ := id.Write(dwntest.WriteOpts{Data: []byte("warm-up")})
	remote.Write(id.DID, warm.Message, warm.Data)
	eventually(b, 30*time.Second, "warm-up pulled", func() bool { return len(local.CIDs(id.DID)) == 1 })
	msgs := make([]dwntest.Written, b.N)
	for i := range msgs {
		if msgs[i], err = id.Write(dwntest.WriteOpts{Data: []byte{byte(i), byte(i >> 8), byte(i >> 16)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for _, w := range msgs {
		remote.Write(id.DID, w.Message, w.Data)
	}
	// Head is cheap (CIDs sorts the whole tenant under the node's lock and would slow the
	// node down); every pulled message allocates one position on local.
	eventually(b, 5*time.Minute, "all pulled", func() bool { return local.Head(id.DID) >= uint64(b.N+1) })
	if n := len(local.CIDs(id.DID)); n != b.N+1 {
		b.Fatalf("local holds %d messages, want %d", n, b.N+1)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	s, _ := te.Snapshot(key)
	b.Logf("events %v; last error %q", te.eventTypes(key), s.LastError)
	b.Logf("local requests %v; remote requests %v", local.Counts(), remote.Counts())
}
