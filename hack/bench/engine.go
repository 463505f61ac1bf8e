package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// runningEngine is a dwnsync engine with the spec's timings, as `dwnsync run` starts it.
type runningEngine struct {
	*syncer.Engine
	pool *dialect.Pool
	stop func()
}

func startEngine(ctx context.Context, dir string) (*runningEngine, error) {
	return startEngineWith(ctx, dir, dialect.NewPool(dialect.Options{}))
}

// startEngineWith is startEngine on a given pool (a metered one, say); the engine closes it.
func startEngineWith(ctx context.Context, dir string, pool *dialect.Pool) (*runningEngine, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	store, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{})
	if err != nil {
		return nil, err
	}
	eng, err := syncer.New(syncer.Options{Ledger: store, Pool: pool})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Start(ctx) }()
	go func() { // nobody reads the events here; a full buffer must not hold the engine up
		for {
			select {
			case <-eng.Events():
			case <-ctx.Done():
				return
			}
		}
	}()
	r := &runningEngine{Engine: eng, pool: pool, stop: func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			logf("engine: %v", err)
		}
		pool.Close()
		_ = store.Close()
	}}
	if err := eng.WaitReady(ctx); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// startLinkedEngine starts an engine (its ledger in dir) with one `both` link between the pair
// for the tenant, and returns it with the link's key.
func startLinkedEngine(ctx context.Context, dir string, p pair, id dwnserver.Identity) (*runningEngine, string, error) {
	return startLinkedEngineWith(ctx, dir, p, id, dialect.NewPool(dialect.Options{}))
}

// startLinkedEngineWith is startLinkedEngine on a given pool.
func startLinkedEngineWith(ctx context.Context, dir string, p pair, id dwnserver.Identity, pool *dialect.Pool) (*runningEngine, string, error) {
	eng, err := startEngineWith(ctx, dir, pool)
	if err != nil {
		return nil, "", err
	}
	key, err := eng.link(p, id)
	if err != nil {
		eng.stop()
		return nil, "", err
	}
	return eng, key, nil
}

// link applies one `both` link between the pair for the tenant and returns its key.
func (r *runningEngine) link(p pair, id dwnserver.Identity) (string, error) {
	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		return "", err
	}
	return r.Apply(syncer.LinkConfig{Name: "bench/link", Tenant: id.DID, LocalEndpoint: p.a.URL, RemoteEndpoint: p.b.URL,
		Direction: linkstate.Both, LocalSigner: signer, RemoteSigner: signer,
		Dialect: dwn.DialectWeb5, LocalDialect: dwn.DialectWeb5})
}

// waitLive waits until the link is live with nothing left to reconcile.
func (r *runningEngine) waitLive(ctx context.Context, key string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s, ok := r.Snapshot(key)
		if !ok {
			return fmt.Errorf("link %s is gone", key)
		}
		if s.Phase == "live" && !s.NeedsReconcile {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("link not live (phase %s, last error %q): %w", s.Phase, s.LastError, ctx.Err())
		case <-tick.C:
		}
	}
}

// engineReplicate runs a dwnsync engine on pool with one `both` link until the link is live
// and both servers list the same CIDs.
func engineReplicate(ctx context.Context, p pair, id dwnserver.Identity, pool *dialect.Pool) error {
	dir, err := os.MkdirTemp(filepath.Dir(p.a.DataDir), "engine-")
	if err != nil {
		pool.Close()
		return err
	}
	eng, key, err := startLinkedEngineWith(ctx, dir, p, id, pool)
	if err != nil {
		return err
	}
	defer eng.stop()
	tenants, _, err := openTenants(ctx, eng.pool, id, p.a.URL, p.b.URL)
	if err != nil {
		return err
	}
	logCtx, stopLogging := context.WithCancel(ctx)
	defer stopLogging()
	go eng.logProgress(logCtx, key, 30*time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := eng.waitLive(ctx, key); err != nil {
			return err
		}
		same, n, err := sameListings(ctx, tenants[0], tenants[1])
		if err != nil {
			return err
		}
		if same {
			s, _ := eng.Snapshot(key)
			logf("dwnsync: %d CIDs on both sides; pulled %d, pushed %d, progress %+v", n, s.Pull.Applied, s.Push.Applied, s.Progress)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// logProgress logs the link's phase and progress every interval until ctx ends: a rate that
// sags between two lines is where a slow copy spends its time.
func (r *runningEngine) logProgress(ctx context.Context, key string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if s, ok := r.Snapshot(key); ok {
				logf("dwnsync: phase %s, progress %+v, pulled %d, pushed %d", s.Phase, s.Progress, s.Pull.Applied, s.Push.Applied)
			}
		}
	}
}
