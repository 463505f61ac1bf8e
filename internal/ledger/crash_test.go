package ledger

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const crashChildEnv = "DWNSYNC_LEDGER_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(0) // not reached: the parent kills the child
	}
	os.Exit(m.Run())
}

const crashLinks = 20

// crashChild advances the pull checkpoint of every link forever with a short commit window
// (so commits are constantly in progress), and after each Flush reports the position that is
// now durable on stdout. The parent SIGKILLs it at an arbitrary moment.
func crashChild(path string) {
	s, err := Open(path, Options{CommitInterval: time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var keys []string
	// Resume from the link that is furthest behind: a kill can land between two links'
	// updates of one position, and a lagging link resumed from the leader's position would
	// skip one, leaving its counter behind its checkpoint. The leaders re-commit a position
	// they hold (Commit refuses it) and only count.
	start := -1
	for i := 0; i < crashLinks; i++ {
		rec, err := s.GetOrCreate(newLink(i))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		keys = append(keys, rec.Key)
		n := 0
		if c := rec.Pull.Contiguous; c != nil {
			n, _ = strconv.Atoi(c.Position)
		}
		if start < 0 || n < start {
			start = n
		}
	}
	for pos := start + 1; ; pos++ {
		p := strconv.Itoa(pos)
		for _, k := range keys {
			if err := s.Update(k, func(r *Record) { r.Pull.Commit(cur("s", p)); r.Counters.Pulled++ }); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
		if pos%20 == 0 {
			if err := s.Flush(context.Background()); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			fmt.Println("durable", pos)
		}
	}
}

// Kill -9 in the middle of group commits, three times on the same file: everything that was
// flushed before the kill is there after reopening, and bbolt's consistency check passes.
func TestSurvivesKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	lastDurable := 0
	for round := 0; round < 3; round++ {
		durable := runAndKill(t, path, 5+round*3)
		if durable <= lastDurable {
			t.Fatalf("round %d: child reported durable %d, not beyond %d", round, durable, lastDurable)
		}
		lastDurable = durable

		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return fmt.Errorf("bbolt consistency check: %w", err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		recs, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != crashLinks {
			t.Fatalf("round %d: %d links after kill -9, want %d", round, len(recs), crashLinks)
		}
		for _, r := range recs {
			got, _ := strconv.Atoi(r.Pull.Contiguous.Position)
			if got < durable {
				t.Fatalf("round %d: link %s is at %d after kill -9, but %d was flushed", round, r.Tenant, got, durable)
			}
			if r.Counters.Pulled < int64(got) { // both fields travel in the same record
				t.Fatalf("round %d: counter %d behind checkpoint %d", round, r.Counters.Pulled, got)
			}
		}
		t.Logf("round %d: flushed %d, reopened at >= %d for all %d links", round, durable, durable, len(recs))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child, waits for n durable reports, kills it with SIGKILL while it keeps
// committing, and returns the last position it reported durable.
func runAndKill(t *testing.T, path string, n int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	durable, seen := 0, 0
	lines := bufio.NewScanner(out)
	for seen < n && lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "error") {
			_ = cmd.Process.Kill()
			t.Fatalf("child: %s", line)
		}
		if v, ok := strings.CutPrefix(line, "durable "); ok {
			durable, _ = strconv.Atoi(v)
			seen++
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if seen < n {
		t.Fatalf("child stopped after %d durable reports (want %d)", seen, n)
	}
	return durable
}
