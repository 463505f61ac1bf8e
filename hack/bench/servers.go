package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// pair is two running servers.
type pair struct{ a, b *dwnserver.Server }

func startPair(ctx context.Context, dirA, dirB string) (pair, error) {
	var p pair
	var err error
	if p.a, err = dwnserver.StartProcess(ctx, dirA); err != nil {
		return p, err
	}
	if p.b, err = dwnserver.StartProcess(ctx, dirB); err != nil {
		_ = p.a.Stop()
		return p, err
	}
	return p, nil
}

func (p pair) stop() {
	for _, s := range []*dwnserver.Server{p.a, p.b} {
		if s != nil {
			if err := s.Stop(); err != nil {
				logf("stop %s: %v", s.URL, err)
			}
		}
	}
}

// seededStores describes a pair of stores seeded once and copied for every contender.
type seededStores struct {
	Identity  dwnserver.Identity `json:"identity"`
	MessagesA int                `json:"messagesA"` // asked for
	MessagesB int                `json:"messagesB"`
	CIDsA     int                `json:"cidsA"` // listed after seeding
	CIDsB     int                `json:"cidsB"`
	dir       string
}

func (s seededStores) dirA() string { return filepath.Join(s.dir, "a") }
func (s seededStores) dirB() string { return filepath.Join(s.dir, "b") }

// seedSpec spreads n messages the way issue 12 measured a tenant: small records, 2% over
// 30 KB, updates (10%) and deletes (3%), and the protocol's configure.
func seedSpec(n int, prefix string) dwnserver.SeedSpec {
	large := n * 2 / 100
	updates := n * 10 / 100
	deletes := n * 3 / 100
	return dwnserver.SeedSpec{Records: max(n-1-large-updates-deletes, 1), Large: large, Updates: updates, Deletes: deletes, Prefix: prefix}
}

// seedPair seeds A with messagesA and B with messagesB under one tenant, then stops both so
// that their data directories can be copied byte for byte. A pair seeded earlier with the
// same sizes in dir (-keep) is reused.
func seedPair(ctx context.Context, dir string, messagesA, messagesB int) (seededStores, error) {
	meta := filepath.Join(dir, "seeded.json")
	var s seededStores
	if b, err := os.ReadFile(meta); err == nil && json.Unmarshal(b, &s) == nil && s.MessagesA == messagesA && s.MessagesB == messagesB {
		s.dir = dir
		logf("reusing the stores seeded in %s", dir)
		return s, nil
	}
	_ = os.RemoveAll(dir)
	s = seededStores{MessagesA: messagesA, MessagesB: messagesB, dir: dir}
	p, err := startPair(ctx, s.dirA(), s.dirB())
	if err != nil {
		return s, err
	}
	defer p.stop()
	client, err := dwnserver.NewClientProcess(ctx)
	if err != nil {
		return s, err
	}
	defer client.Close()
	if s.Identity, err = client.NewTenant(); err != nil {
		return s, err
	}
	ra, err := client.Seed(p.a.URL, s.Identity, seedSpec(messagesA, "a"))
	if err != nil {
		return s, fmt.Errorf("seed A: %w", err)
	}
	logf("seeded A: %d messages at %.0f/s", ra.Messages, ra.Rate())
	rb, err := client.Seed(p.b.URL, s.Identity, seedSpec(messagesB, "b"))
	if err != nil {
		return s, fmt.Errorf("seed B: %w", err)
	}
	logf("seeded B: %d messages at %.0f/s", rb.Messages, rb.Rate())
	s.CIDsA, s.CIDsB = ra.ExpectedCIDs, rb.ExpectedCIDs
	b, err := json.Marshal(s)
	if err != nil {
		return s, err
	}
	p.stop()
	return s, os.WriteFile(meta, b, 0o644)
}

// copyStores copies the seeded data directories to dir/a and dir/b, byte for byte.
func (s seededStores) copyStores(dir string) (string, string, error) {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for from, to := range map[string]string{s.dirA(): a, s.dirB(): b} {
		if err := copyDir(from, to); err != nil {
			return "", "", err
		}
	}
	return a, b, nil
}

// copyDir copies a server's data directory byte for byte, without its log.
func copyDir(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %v: %s", from, err, out)
	}
	_ = os.Remove(filepath.Join(to, dwnserver.LogName))
	return nil
}

// openTenants opens the tenant on both servers through one pool (closed by the caller).
func openTenants(ctx context.Context, pool *dialect.Pool, id dwnserver.Identity, urls ...string) ([]dwn.Tenant, *msg.Signer, error) {
	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		return nil, nil, err
	}
	var out []dwn.Tenant
	for _, u := range urls {
		c, err := pool.Get(ctx, u, dwn.DialectWeb5) // known: probing on a loaded machine can time out
		if err != nil {
			return nil, nil, err
		}
		out = append(out, c.Tenant(id.DID, signer))
	}
	return out, signer, nil
}

// sameListings says whether both tenants list the same CIDs.
func sameListings(ctx context.Context, a, b dwn.Tenant) (bool, int, error) {
	la, err := a.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		return false, 0, err
	}
	lb, err := b.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		return false, 0, err
	}
	slices.Sort(la)
	slices.Sort(lb)
	return slices.Equal(la, lb), len(la), nil
}
