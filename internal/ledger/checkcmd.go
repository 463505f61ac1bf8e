package ledger

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
)

// FileName is the ledger's file name inside --state-dir (`dwnsync run` and the operator).
const FileName = "ledger.db"

// Exit codes of `dwnsync ledger check`.
const (
	CheckOK        = 0 // the file is sound
	CheckDamaged   = 1 // the file is damaged: the message says how to recover
	CheckCannotRun = 2 // no file, a lock held by a running dwnsync, a bad flag, an I/O error
)

// CheckCommand is `dwnsync ledger check --state-dir DIR`: it runs the checks Open runs (with
// bbolt's page check whatever the size, and decoding every record), prints a summary to out or
// the problem and its fix to errOut, and returns the exit code. The file is never changed.
func CheckCommand(stateDir string, out, errOut io.Writer) int {
	if stateDir == "" {
		fmt.Fprintln(errOut, "ledger check: --state-dir is required (the directory given to dwnsync run or the operator)")
		return CheckCannotRun
	}
	rep, err := Check(filepath.Join(stateDir, FileName), math.MaxInt64)
	var de *DamagedError
	switch {
	case errors.As(err, &de):
		fmt.Fprintln(errOut, err)
		return CheckDamaged
	case err != nil:
		fmt.Fprintln(errOut, "ledger check:", err)
		return CheckCannotRun
	}
	fmt.Fprintf(out, "ledger %s: ok\n  %d link records, %.1f MiB, bbolt consistency check passed, took %v\n",
		rep.Path, rep.Records, float64(rep.Bytes)/(1<<20), rep.Duration.Round(1e6))
	if rep.Migrate > 0 {
		fmt.Fprintf(out, "  %d records of an older schema: the next start rewrites them\n", rep.Migrate)
	}
	return CheckOK
}
