package engineruntime_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwnsync/dwnsync/internal/engineruntime"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// Open creates the state directory and an engine over its ledger; Close releases the file, so
// the next runtime (a restart, a new leader) opens it again.
func TestOpenCloseReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	for i := 0; i < 2; i++ {
		rt, err := engineruntime.Open(engineruntime.Options{StateDir: dir})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if rt.Engine == nil || rt.Ledger == nil {
			t.Fatalf("open %d: engine %v ledger %v", i, rt.Engine, rt.Ledger)
		}
		if err := rt.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, engineruntime.LedgerFile)); err != nil {
		t.Fatal(err)
	}
}

// A damaged ledger is refused with the ledger's own explanation, before any engine exists.
func TestOpenRefusesADamagedLedger(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, engineruntime.LedgerFile), []byte("not a ledger"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := engineruntime.Open(engineruntime.Options{StateDir: dir})
	var damaged *ledger.DamagedError
	if !errors.As(err, &damaged) {
		t.Fatalf("open of a damaged ledger: %v, want a *ledger.DamagedError", err)
	}
}

func TestOpenNeedsAStateDir(t *testing.T) {
	if _, err := engineruntime.Open(engineruntime.Options{}); err == nil {
		t.Fatal("opened without a state directory")
	}
}
