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
}

func main() {
	var cfg config
	figures := flag.String("figures", "p1,p2", "comma-separated figures to measure: p1 (initial replication), p2 (live latency)")
	flag.StringVar(&cfg.workDir, "workdir", defaultWorkDir(), "where the servers keep their data (tmpfs when available)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (the seeded stores are reused by the next run with the same sizes)")
	flag.IntVar(&cfg.p1Messages, "p1-messages", 10_000, "P1: messages seeded on server A")
	flag.Float64Var(&cfg.p1Share, "p1-b-share", 0.05, "P1: messages seeded on server B, as a share of A's")
	flag.IntVar(&cfg.p2Writes, "p2-writes", 200, "P2: live writes timed per direction (and on one server for the floor)")
	flag.Parse()
	if *memServe { // the mem figure's child process (mem.go)
		if err := serveMemNodes(*memMessages); err != nil {
			fmt.Fprintln(os.Stderr, "bench -mem-serve:", err)
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
	if cfg.figures["p1"] {
		if err := benchInitialReplication(ctx, cfg); err != nil {
			return fmt.Errorf("P1: %w", err)
		}
	}
	if cfg.figures["mem"] {
		if err := benchMemory(ctx); err != nil {
			return fmt.Errorf("mem: %w", err)
		}
	}
	if cfg.figures["p2"] {
		if err := benchLiveLatency(ctx, cfg); err != nil {
			return fmt.Errorf("P2: %w", err)
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
