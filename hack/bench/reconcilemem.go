package main

// Figure "reconcile-mem": the memory of one reconcile of a large tenant into an empty one. The two
// in-process enbox nodes (internal/dwntest) run in a child process (this binary again, with
// -reconcile-mem-serve), so that the heap and RSS measured here are the reconcile's own, not the
// servers' stores.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/syncer/transfer"
)

var (
	reconcileMemMessages = flag.Int("reconcile-mem-messages", 100_000, "mem: messages on the source tenant (the destination starts empty)")
	reconcileMemServe    = flag.Bool("reconcile-mem-serve", false, "internal: serve the reconcile-mem figure's two nodes (run by the bench itself)")
)

// memNodes is what the child process prints once its nodes are seeded.
type memNodes struct {
	Source, Dest string // URLs
	DID          string
	PrivateJWK   []byte // a throwaway key made for this run
}

// serveMemNodes is the child: two enbox nodes, the source seeded with n small records. It
// prints memNodes as one line and serves until its stdin closes.
func serveMemNodes(n int) error {
	src, err := dwntest.Launch(dwntest.Options{Mode: dwntest.ModeEnbox})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := dwntest.Launch(dwntest.Options{Mode: dwntest.ModeEnbox})
	if err != nil {
		return err
	}
	defer dst.Close()
	id, err := dwntest.NewIdentity()
	if err != nil {
		return err
	}
	id.UseClock(clock.RealClock{})
	const protocol = "https://bench.example/mem"
	cfg, err := id.ConfigureProtocol(protocol)
	if err != nil {
		return err
	}
	src.Write(id.DID, cfg.Message, nil)
	for i := range n {
		w, err := id.Write(dwntest.WriteOpts{Protocol: protocol, ProtocolPath: "note", Data: []byte("note " + strconv.Itoa(i))})
		if err != nil {
			return err
		}
		if r := src.Write(id.DID, w.Message, w.Data); r.Kind != dwn.Applied {
			return fmt.Errorf("seed message %d: %s %s", i, r.Kind, r.Reason)
		}
	}
	b, _ := json.Marshal(memNodes{Source: src.URL(), Dest: dst.URL(), DID: id.DID, PrivateJWK: id.PrivateJWK})
	fmt.Println(string(b))
	_, _ = bufio.NewReader(os.Stdin).ReadString(0) // until the parent closes our stdin
	return nil
}

// benchReconcileMemory reconciles the child's seeded source into its empty destination and reports the
// peak Go heap (sampled) and the peak RSS of this process.
func benchReconcileMemory(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.CommandContext(ctx, self, "-reconcile-mem-serve", "-reconcile-mem-messages", strconv.Itoa(*reconcileMemMessages))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	logf("mem: seeding %d messages in the child's node", *reconcileMemMessages)
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { _ = stdin.Close(); _ = child.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("child nodes: %w", err)
	}
	var nodes memNodes
	if err := json.Unmarshal([]byte(line), &nodes); err != nil {
		return fmt.Errorf("child nodes: %w", err)
	}
	signer, err := msg.NewSigner(nodes.DID, nodes.PrivateJWK)
	if err != nil {
		return err
	}
	open := func(url string) (dwn.Tenant, func(), error) {
		c, err := dialect.Open(ctx, url, dialect.Options{Dialect: dwn.DialectEnbox})
		if err != nil {
			return nil, nil, err
		}
		return c.Tenant(nodes.DID, signer), func() { _ = c.Close() }, nil
	}
	src, closeSrc, err := open(nodes.Source)
	if err != nil {
		return err
	}
	defer closeSrc()
	dst, closeDst, err := open(nodes.Dest)
	if err != nil {
		return err
	}
	defer closeDst()

	runtime.GC()
	base := liveHeapBytes()
	peak, stopSampling := sampleHeapPeak()
	start := time.Now()
	res, err := transfer.Reconcile(ctx, dst, src, dwn.Scope{}, linkstate.PullOnly)
	elapsed := time.Since(start)
	stopSampling()
	if err != nil {
		return err
	}
	if res.Pulled < *reconcileMemMessages {
		return fmt.Errorf("reconcile pulled %d of %d messages (%d failed)", res.Pulled, *reconcileMemMessages, len(res.Failed))
	}
	b, _ := json.Marshal(map[string]any{
		"figure": "reconcile-mem", "metric": "reconcile into an empty tenant", "messages": *reconcileMemMessages,
		"peak_heap_bytes": *peak - base, "heap_bytes_per_message": float64(*peak-base) / float64(*reconcileMemMessages),
		"peak_rss_bytes": peakRSS(), "seconds": elapsed.Seconds(), "pulled": res.Pulled,
	})
	fmt.Println(string(b))
	return nil
}

func liveHeapBytes() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// sampleHeapPeak samples HeapAlloc every 20 ms until stopped; *peak is valid after stop.
func sampleHeapPeak() (*uint64, func()) {
	peak := new(uint64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			*peak = max(*peak, liveHeapBytes())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return peak, func() { close(done); wg.Wait() }
}

// peakRSS is this process's VmHWM in bytes (0 when /proc is not there).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
