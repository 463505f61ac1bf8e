// Command bench measures dwnsync against real @web5/dwn-server instances it starts itself and
// prints one JSON line per figure, each beside a baseline measured in the same run (see
// BENCHMARKS.md). It is run by `make bench-e2e`, never by `make test`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// config holds the flags; sizes default to the figures of issue 12.
type config struct {
	figures    map[string]bool
	workDir    string
	keep       bool
	p1Messages int
	p1Share    float64 // B's messages as a share of A's
	p2Writes   int
	// P3: idle live links between two dwntest nodes, and the idle window counted.
	p3Links  int
	p3Window time.Duration
	// P4: tenant sizes of the reconcile after 10 differences (dwntest; real web5, 0 = skip).
	p4Messages     int
	p4Web5Messages int
	// P5: links over remote dwntest endpoints.
	p5Links, p5Endpoints int
	// P6: checkpoint advances, in a ledger under p6Dir (on disk: tmpfs makes fsync free).
	p6Advances int
	p6Dir      string
	// Memory: the bootstrapped dwntest tenant, and the listing reply decoded.
	memMessages   int
	memListingMiB int
}

func main() {
	var cfg config
	figures := flag.String("figures", "p1,p2,p3,p4,p5,p6,mem,reconcile-mem", "comma-separated figures to measure: p1 (initial replication), p2 (live latency), p3 (idle links), p4 (reconcile after 10 differences), p5 (many links), p6 (ledger), mem (bootstrap RSS, listing heap), reconcile-mem (heap of one reconcile, nodes in a child process)")
	flag.StringVar(&cfg.workDir, "workdir", defaultWorkDir(), "where the servers keep their data (tmpfs when available)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (the seeded stores are reused by the next run with the same sizes)")
	flag.IntVar(&cfg.p1Messages, "p1-messages", 10_000, "P1: messages seeded on server A")
	flag.Float64Var(&cfg.p1Share, "p1-b-share", 0.05, "P1: messages seeded on server B, as a share of A's")
	flag.IntVar(&cfg.p2Writes, "p2-writes", 200, "P2: live writes timed per direction (and on one server for the floor)")
	flag.IntVar(&cfg.p3Links, "p3-links", 1_000, "P3: idle live links between two dwntest nodes")
	flag.DurationVar(&cfg.p3Window, "p3-window", 5*time.Minute, "P3: idle window counted (one verify interval)")
	flag.IntVar(&cfg.p4Messages, "p4-messages", 100_000, "P4: messages both dwntest nodes hold before the 10 differences")
	flag.IntVar(&cfg.p4Web5Messages, "p4-web5-messages", 2_000, "P4: messages both real web5 servers hold (0 skips web5)")
	flag.IntVar(&cfg.p5Links, "p5-links", 10_000, "P5: links applied at once")
	flag.IntVar(&cfg.p5Endpoints, "p5-endpoints", 100, "P5: remote dwntest endpoints the links spread over")
	flag.IntVar(&cfg.p6Advances, "p6-advances", 10_000, "P6: checkpoint advances per contender")
	flag.StringVar(&cfg.p6Dir, "p6-dir", os.TempDir(), "P6: directory of the ledger files (a disk: tmpfs makes fsync free)")
	flag.IntVar(&cfg.memMessages, "mem-messages", 100_000, "Memory: messages of the dwntest tenant bootstrapped")
	flag.IntVar(&cfg.memListingMiB, "mem-listing-mib", 64, "Memory: size of the web5 listing reply decoded, MiB")
	flag.Parse()
	if *nodesServe > 0 { // the child serving dwntest nodes (nodeschild.go)
		if err := serveChildNodes(*nodesServe, *nodesSeed); err != nil {
			fmt.Fprintln(os.Stderr, "bench -nodes-serve:", err)
			os.Exit(1)
		}
		return
	}
	if *reconcileMemServe { // the reconcile-mem figure's child process (reconcilemem.go)
		if err := serveMemNodes(*reconcileMemMessages); err != nil {
			fmt.Fprintln(os.Stderr, "bench -reconcile-mem-serve:", err)
			os.Exit(1)
		}
		return
	}
	cfg.figures = map[string]bool{}
	for _, f := range strings.Split(*figures, ",") {
		cfg.figures[strings.TrimSpace(strings.ToLower(f))] = true
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if err := os.MkdirAll(cfg.workDir, 0o755); err != nil {
		return fmt.Errorf("-workdir %s: %w", cfg.workDir, err)
	}
	if !cfg.keep {
		defer os.RemoveAll(cfg.workDir)
	}
	logf("work directory %s", cfg.workDir)
	for _, f := range []struct {
		name string
		run  func(context.Context, config) error
	}{{"p1", benchInitialReplication}, {"p2", benchLiveLatency}, {"p3", benchIdle}, {"p4", benchReconcile},
		{"p5", benchManyLinks}, {"p6", benchLedger}, {"mem", benchMemory},
		{"reconcile-mem", func(ctx context.Context, _ config) error { return benchReconcileMemory(ctx) }}} {
		if !cfg.figures[f.name] {
			continue
		}
		if err := f.run(ctx, cfg); err != nil {
			return fmt.Errorf("%s: %w", strings.ToUpper(f.name), err)
		}
	}
	return nil
}

// defaultWorkDir is a fresh directory on tmpfs when /dev/shm is there (the server is
// fsync-bound on disk), else in the system's temporary directory.
func defaultWorkDir() string {
	root := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		root = "/dev/shm"
	}
	return filepath.Join(root, fmt.Sprintf("dwnsync-bench-%d", os.Getpid()))
}

// figure is one JSON line of output.
type figure struct {
	Figure   string  `json:"figure"`
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Dwnsync  float64 `json:"dwnsync"`
	Baseline float64 `json:"baseline"`
	// BaselineRuns are the baseline's runs when it ran more than once (Baseline is their mean).
	BaselineRuns []float64      `json:"baseline_runs,omitempty"`
	Ratio        float64        `json:"ratio"`
	Meaning      string         `json:"ratio_meaning"`
	Sizes        map[string]int `json:"sizes,omitempty"`
}

func emit(f figure) {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // a figure is plain numbers and strings
	}
	fmt.Println(string(b))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}
