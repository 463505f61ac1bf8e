package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// readPoll is how often P2 asks a server whether a write is readable yet: the resolution of
// every latency it reports.
const readPoll = 2 * time.Millisecond

// benchLiveLatency (P2) starts a fresh pair with one live `both` link and times, for each of
// cfg.p2Writes writes, from the start of a write on one server until the message is readable
// on the other; the floor is the same write read back from the server it was written to.
func benchLiveLatency(ctx context.Context, cfg config) error {
	dir := filepath.Join(cfg.workDir, "p2")
	p, err := startPair(ctx, filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	if err != nil {
		return err
	}
	defer p.stop()
	client, err := dwnserver.NewClientProcess(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	id, err := client.NewTenant()
	if err != nil {
		return err
	}
	if _, err := client.Seed(p.a.URL, id, dwnserver.SeedSpec{Records: 1, Prefix: "a"}); err != nil {
		return err
	}
	eng, key, err := startLinkedEngine(ctx, filepath.Join(dir, "engine"), p, id)
	if err != nil {
		return err
	}
	defer eng.stop()
	if err := eng.waitLive(ctx, key); err != nil {
		return err
	}
	pool := dialect.NewPool(dialect.Options{}) // the observer's own connections, not the engine's
	defer pool.Close()
	tenants, _, err := openTenants(ctx, pool, id, p.a.URL, p.b.URL)
	if err != nil {
		return err
	}
	a, b := tenants[0], tenants[1]

	var floor, aToB, bToA []time.Duration
	for i := range cfg.p2Writes {
		for _, m := range []struct {
			write  string
			reader dwn.Tenant
			into   *[]time.Duration
		}{{p.a.URL, a, &floor}, {p.a.URL, b, &aToB}, {p.b.URL, a, &bToA}} {
			d, err := timeWriteUntilReadable(ctx, client, id, m.write, m.reader, i)
			if err != nil {
				return err
			}
			*m.into = append(*m.into, d)
		}
	}
	sizes := map[string]int{"writes_per_direction": cfg.p2Writes}
	for _, q := range []int{50, 90, 99} {
		f := percentile(floor, q)
		for _, dir := range []struct {
			name string
			d    []time.Duration
		}{{"a_to_b", aToB}, {"b_to_a", bToA}} {
			v := percentile(dir.d, q)
			emit(figure{Figure: "P2", Metric: fmt.Sprintf("%s_p%d_ms", dir.name, q), Unit: "ms",
				Dwnsync: ms(v), Baseline: ms(f), Ratio: round(float64(v)/float64(f), 2),
				Meaning: "dwnsync/floor: write on one server until readable on the other, over write until readable on the same server", Sizes: sizes})
		}
	}
	return nil
}

// timeWriteUntilReadable writes a small note to the server at url and polls reader until it
// answers a Read of the new message.
func timeWriteUntilReadable(ctx context.Context, client *dwnserver.Client, id dwnserver.Identity, url string, reader dwn.Tenant, i int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	w, err := client.Write(url, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: fmt.Appendf(nil, `{"p2":%d}`, i)})
	if err != nil {
		return 0, err
	}
	tick := time.NewTicker(readPoll)
	defer tick.Stop()
	for {
		rr, err := reader.Read(ctx, w.CID)
		if err == nil {
			if rr.Data != nil {
				_ = rr.Data.Close()
			}
			return time.Since(start), nil
		}
		if !dwn.IsNotFound(err) {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("write %s on %s never became readable on %s: %w", w.CID, url, reader.Endpoint(), ctx.Err())
		case <-tick.C:
		}
	}
}

func percentile(ds []time.Duration, q int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*q+99)/100-1)
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }
