package transfer

import (
	"context"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// BenchmarkReconcileIntoEmptyEnboxNode measures the copier's own throughput (prefetch, sort,
// CID check, level-parallel apply) against an in-process enbox node, where the server is far
// faster than @web5/dwn-server: 300 records (one in ten of 100 KB), 30 updates, 20 deletes.
func BenchmarkReconcileIntoEmptyEnboxNode(b *testing.B) {
	ctx := context.Background()
	src := dwntest.Start(b, dwntest.Options{Mode: dwntest.ModeEnbox})
	id := dwntest.MustIdentity(b)
	put := func(n *dwntest.Node, w dwntest.Written, err error) dwntest.Written {
		if err != nil {
			b.Fatal(err)
		}
		if r := n.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
			b.Fatalf("seed: %s %s", r.Kind, r.Reason)
		}
		return w
	}
	cfg, err := id.ConfigureProtocol(proto)
	put(src, cfg, err)
	for i := 0; i < 300; i++ {
		size := 200
		if i%10 == 0 {
			size = 100 << 10
		}
		w, err := id.Write(dwntest.WriteOpts{Protocol: proto, ProtocolPath: "note", Data: payload(size, byte(i))})
		w = put(src, w, err)
		if i < 30 {
			u, err := id.Update(w, payload(300, byte(i)))
			put(src, u, err)
		} else if i >= 280 {
			d, err := id.Delete(w.RecordID)
			put(src, d, err)
		}
	}
	messages := len(src.CIDs(id.DID))
	a := openNode(ctx, b, src, id)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst := dwntest.Start(b, dwntest.Options{Mode: dwntest.ModeEnbox})
		t := openNode(ctx, b, dst, id)
		b.StartTimer()
		res, err := Reconcile(ctx, a, t, dwn.Scope{}, linkstate.PushOnly)
		if err != nil || !res.Converged {
			b.Fatalf("%v %+v", err, res.Failed)
		}
	}
	b.ReportMetric(float64(messages*b.N)/b.Elapsed().Seconds(), "messages/s")
}
