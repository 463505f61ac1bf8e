// Command demo is `make demo`: dwnsync replicating a tenant between two real, local
// @web5/dwn-server instances, with no cluster. It installs nothing itself (make does), starts
// both servers on 127.0.0.1, creates a tenant and seeds records with the real dwn-sdk-js
// client, runs `bin/dwnsync run` on a generated links file, shows progress until both servers
// hold the same messages, writes on each side and shows each write arrive on the other, prints
// `dwnsync status`, and stops everything it started. It exits non-zero if replication did not
// converge in time.
//
// With -k8s (`make demo-k8s`) the same story runs on a local control plane (envtest's
// kube-apiserver and etcd from ./bin): the operator is `bin/dwnsync operator`, the link and its
// Secret are applied with `bin/kubectl apply`, and the end state is `kubectl get replicationlinks`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

var (
	k8s      = flag.Bool("k8s", false, "run the operator on a local envtest control plane instead of `dwnsync run`")
	records  = flag.Int("records", 60, "small records to seed on server A")
	large    = flag.Int("large", 4, "records over 30 KB to seed on server A")
	timeout  = flag.Duration("timeout", 4*time.Minute, "give up if the servers have not converged by then")
	keepDirs = flag.Bool("keep", false, "keep the temporary directory (server data, state, logs)")
)

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n✗ demo failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("\n✓ demo converged: both servers hold the same messages, and writes on either side replicate.")
}

// story is what both variants share: the servers, the tenant, and the checks.
type story struct {
	root   string
	work   string
	a, b   *dwnserver.Server
	client *dwnserver.Client
	tenant dwnserver.Identity
}

func run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dwnsync-demo-")
	if err != nil {
		return err
	}
	if *keepDirs {
		fmt.Println("work dir (kept):", work)
	} else {
		defer os.RemoveAll(work)
	}
	s := &story{root: root, work: work}

	step("Starting two @web5/dwn-server instances on 127.0.0.1")
	if s.a, err = dwnserver.StartProcess(ctx, filepath.Join(work, "server-a")); err != nil {
		return fmt.Errorf("server A: %w", err)
	}
	defer s.a.Stop()
	if s.b, err = dwnserver.StartProcess(ctx, filepath.Join(work, "server-b")); err != nil {
		return fmt.Errorf("server B: %w", err)
	}
	defer s.b.Stop()
	fmt.Printf("  A (local)  %s\n  B (remote) %s\n", s.a.URL, s.b.URL)

	if s.client, err = dwnserver.NewClientProcess(ctx); err != nil {
		return fmt.Errorf("dwn-sdk-js client: %w", err)
	}
	defer s.client.Close()

	step("Creating a tenant (did:jwk) and seeding records with dwn-sdk-js")
	if s.tenant, err = s.client.NewTenant(); err != nil {
		return err
	}
	fmt.Printf("  tenant %s…\n", s.tenant.DID[:40])
	seedA, err := s.client.Seed(s.a.URL, s.tenant, dwnserver.SeedSpec{Records: *records, Large: *large, Updates: 6, Deletes: 4, Prefix: "on-A"})
	if err != nil {
		return fmt.Errorf("seed A: %w", err)
	}
	fmt.Printf("  A: %d messages written (%d small, %d large > 30 KB, 6 updates, 4 deletes) in %s\n",
		seedA.Messages, *records, *large, seedA.Elapsed().Round(time.Millisecond))
	seedB, err := s.client.Seed(s.b.URL, s.tenant, dwnserver.SeedSpec{Records: 15, Large: 1, Updates: 2, Deletes: 1, Prefix: "on-B"})
	if err != nil {
		return fmt.Errorf("seed B: %w", err)
	}
	fmt.Printf("  B: %d messages written (a disjoint set)\n", seedB.Messages)
	if err := s.printCounts(); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var op operator
	if *k8s {
		op, err = startK8s(ctx, s)
	} else {
		op, err = startStandalone(ctx, s)
	}
	if err != nil {
		return err
	}
	defer op.Stop()

	step("Waiting for the link to go live and both servers to converge")
	if err := s.waitConverged(ctx, op); err != nil {
		return err
	}

	step("Live: a write on each side arrives on the other")
	for _, dir := range []struct {
		name     string
		from, to *dwnserver.Server
	}{{"A → B", s.a, s.b}, {"B → A", s.b, s.a}} {
		t0 := time.Now()
		w, err := s.client.Write(dir.from.URL, s.tenant, dwnserver.WriteOpts{
			Protocol: dwnserver.SeedProtocol, ProtocolPath: "note",
			Data: []byte(fmt.Sprintf(`{"demo":"live write %s","at":%q}`, dir.name, time.Now().UTC().Format(time.RFC3339Nano))),
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", dir.name, err)
		}
		if err := waitFor(ctx, func() (bool, error) { return s.has(dir.to, w.CID) }); err != nil {
			return fmt.Errorf("write %s (cid %s) never arrived: %w", dir.name, w.CID, err)
		}
		fmt.Printf("  %s: %s… arrived in %s\n", dir.name, w.CID[:20], time.Since(t0).Round(time.Millisecond))
	}
	if err := s.waitConverged(ctx, op); err != nil {
		return err
	}

	step("Status")
	return op.PrintStatus(ctx)
}

// operator is the dwnsync process under demonstration: standalone or on a control plane.
type operator interface {
	// Phase returns the link's STATUS column and whether it needs a reconcile.
	Phase(ctx context.Context) (phase string, needsReconcile bool, err error)
	PrintStatus(ctx context.Context) error
	Stop()
}

func (s *story) printCounts() error {
	a, err := s.client.Query(s.a.URL, s.tenant)
	if err != nil {
		return err
	}
	b, err := s.client.Query(s.b.URL, s.tenant)
	if err != nil {
		return err
	}
	fmt.Printf("  messages: A %d, B %d\n", len(a), len(b))
	return nil
}

func (s *story) has(srv *dwnserver.Server, cid string) (bool, error) {
	cids, err := s.client.Query(srv.URL, s.tenant)
	if err != nil {
		return false, err
	}
	return slices.Contains(cids, cid), nil
}

// waitConverged waits until the link is live with nothing owed and both servers list the same
// CIDs, printing progress whenever it changes.
func (s *story) waitConverged(ctx context.Context, op operator) error {
	last := ""
	return waitFor(ctx, func() (bool, error) {
		phase, dirty, err := op.Phase(ctx)
		if err != nil {
			phase = "(" + err.Error() + ")"
		}
		a, errA := s.client.Query(s.a.URL, s.tenant)
		b, errB := s.client.Query(s.b.URL, s.tenant)
		if errA != nil || errB != nil {
			return false, fmt.Errorf("listing: %v %v", errA, errB)
		}
		slices.Sort(a)
		slices.Sort(b)
		line := fmt.Sprintf("  link %-13s needsReconcile=%-5v  A %d messages, B %d messages", phase, dirty, len(a), len(b))
		if line != last {
			fmt.Println(line)
			last = line
		}
		return phase == "live" && !dirty && slices.Equal(a, b), nil
	})
}

// waitFor polls cond every 250 ms until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func step(title string) { fmt.Printf("\n▶ %s\n", title) }

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run the demo from inside the dwnsync repository (make demo)")
		}
		dir = parent
	}
}

// linksYAML is the file a user would write (or kubectl apply): the signer Secret and the link.
func (s *story) linksYAML(secretName string) string {
	return strings.TrimLeft(fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata:
  name: %[1]s
  labels:
    dwnsync.io/signer: "true"
stringData:
  did: %[2]s
  privateJwk: '%[3]s'
---
apiVersion: dwnsync.io/v1alpha1
kind: ReplicationLink
metadata:
  name: demo-tenant
spec:
  tenant: %[2]s
  endpoint: %[4]s
  localEndpoint: %[5]s
  direction: both
  mode: live
  signer:
    secretRef:
      name: %[1]s
`, secretName, s.tenant.DID, string(s.tenant.PrivateJWK), s.b.URL, s.a.URL), "\n")
}
