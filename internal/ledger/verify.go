package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/logr"
	bolt "go.etcd.io/bbolt"
)

// FullCheckMaxBytes is the largest file whose every page Open checks with bbolt's consistency
// check (tx.Check). The check costs about 0.6 ms per MiB here (BenchmarkCheck: 7 ms for 10k
// links in 36 MiB, 65 ms for 50k links in 118 MiB), far less than decoding the records, which
// Open does anyway; the bound keeps a pathological file from delaying a start by more than
// about a second. Above it Open still reads and decodes every record (every page that holds
// data) and skips only the freelist and page accounting; `dwnsync ledger check` always runs
// the full check.
const FullCheckMaxBytes = 1 << 30

// DamagedError says the ledger file cannot be trusted, and what to do about it.
type DamagedError struct {
	Path  string // absolute path of the file
	Cause error
	// AsideTo is where the recovery command moves the file.
	AsideTo string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("ledger %s is damaged: %v\n"+
		"To recover, stop dwnsync, move the file aside:\n"+
		"  mv %s %s\n"+
		"and start again. Every link then starts without a checkpoint and re-verifies both servers with a full reconcile. "+
		"Nothing is lost: the servers hold the data; the ledger holds only feed positions, counters and the dead-letter list, "+
		"which the reconcile rebuilds. Keep the moved file for a bug report.",
		e.Path, e.Cause, shellQuote(e.Path), shellQuote(e.AsideTo))
}

func (e *DamagedError) Unwrap() error { return e.Cause }

// CheckReport summarises a verified ledger file.
type CheckReport struct {
	Path     string
	Bytes    int64
	Records  int
	Migrate  int           // records of an older schema (rewritten by the next Open)
	Full     bool          // bbolt's page check ran (see FullCheckMaxBytes)
	Duration time.Duration // time the whole check took
}

// errNewerSchema marks a record this build cannot read because a newer dwnsync wrote it: the
// file is fine, the binary is old.
var errNewerSchema = errors.New("newer schema")

// Check verifies the ledger file at path without changing it: it opens the file read-only
// (waiting up to 2 s for a running dwnsync's lock), checks that the file is as long as its
// header says, reads and decodes every record and, when the file is at most fullUpTo bytes,
// runs bbolt's consistency check over every page. A damaged file yields a *DamagedError; a
// missing file, a lock held by another process or an unreadable file yield other errors.
// Check never panics, even on files that make bbolt panic.
func Check(path string, fullUpTo int64) (CheckReport, error) {
	return check(path, fullUpTo, true)
}

// check is Check; decode=false skips decoding the records (Open's load decodes them anyway).
func check(path string, fullUpTo int64, decode bool) (CheckReport, error) {
	start := time.Now()
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	rep := CheckReport{Path: abs}
	info, err := os.Stat(abs)
	if err != nil {
		return rep, fmt.Errorf("ledger %s: %w", abs, err)
	}
	rep.Bytes = info.Size()
	if info.Size() == 0 {
		return rep, damaged(abs, errors.New("the file is empty (0 bytes); a ledger always holds at least its header pages, so it was truncated or never written completely"))
	}
	err = withoutPanics(func() error { return checkFile(abs, info.Size(), info.Size() <= fullUpTo, decode, &rep) })
	rep.Duration = time.Since(start)
	var fe formatError
	switch {
	case err == nil:
		return rep, nil
	case errors.As(err, &fe):
		return rep, damaged(abs, fe.error)
	case errors.Is(err, bolt.ErrTimeout):
		return rep, lockedError(abs, err)
	default:
		return rep, fmt.Errorf("ledger %s: %w", abs, err)
	}
}

func damaged(abs string, cause error) error {
	return &DamagedError{Path: abs, Cause: cause, AsideTo: abs + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")}
}

// formatError marks a fault in the file's content (as opposed to its lock or permissions).
type formatError struct{ error }

func (e formatError) Unwrap() error { return e.error }

// checkFile does Check's work; every fault of the file's content comes back as a formatError.
func checkFile(path string, size int64, full, decode bool, rep *CheckReport) (err error) {
	var file *os.File
	defer func() {
		if r := recover(); r != nil {
			// bbolt panicked (or touched memory past the end of a truncated file) halfway
			// through Open or a read: release the file and its lock ourselves.
			if file != nil {
				_ = file.Close()
			}
			err = formatError{fmt.Errorf("bbolt failed reading it: %v", r)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		ReadOnly:        true,
		Timeout:         2 * time.Second,
		PreLoadFreelist: true, // read the freelist here, where a fault is recovered
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		return classifyOpenError(err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		if want := tx.Size(); want > size {
			return formatError{fmt.Errorf("the file holds %d bytes but its header says %d: it was truncated", size, want)}
		}
		if err := walkRecords(tx, decode, rep); err != nil {
			return err
		}
		rep.Full = full
		if !full {
			return nil
		}
		var problems []string
		for cerr := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, cerr.Error())
			}
		}
		if len(problems) > 0 {
			return formatError{fmt.Errorf("bbolt consistency check: %s", strings.Join(problems, "; "))}
		}
		return nil
	})
}

// walkRecords reads every record and, with decode, decodes it as load does: an undecodable
// record means a damaged file, a record of a newer schema does not.
func walkRecords(tx *bolt.Tx, decode bool, rep *CheckReport) error {
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if string(name) != string(linksBucket) {
			return formatError{fmt.Errorf("unexpected bucket %q: this is not a dwnsync ledger", name)}
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return formatError{fmt.Errorf("unexpected nested bucket %q in %q", k, name)}
			}
			rep.Records++
			if !decode {
				return nil
			}
			_, migrated, err := decodeRecord(string(k), v)
			if errors.Is(err, errNewerSchema) {
				return err
			}
			if err != nil {
				return formatError{err}
			}
			if migrated {
				rep.Migrate++
			}
			return nil
		})
	})
}

// classifyOpenError tells bbolt's "this is not a valid file" errors from the others.
func classifyOpenError(err error) error {
	if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrChecksum) || errors.Is(err, bolt.ErrVersionMismatch) ||
		strings.Contains(err.Error(), "file size too small") {
		return formatError{fmt.Errorf("not a valid bbolt file (%v)", err)}
	}
	return err // permissions, I/O, the lock: not the content's fault
}

// withoutPanics runs fn with faults on memory-mapped pages turned into panics (a truncated
// file maps pages that no longer exist) and returns a panic fn did not recover as an error.
func withoutPanics(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = formatError{fmt.Errorf("bbolt failed reading it: %v", r)}
		}
	}()
	return fn()
}

func lockedError(path string, err error) error {
	return fmt.Errorf("ledger %s is locked by another process (another dwnsync using the same --state-dir?): %w", path, err)
}

// shellQuote quotes a path for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// openVerified opens the ledger file for writing: a missing file is created, an existing one
// must pass Check first (so a damaged file is never written to).
func openVerified(path string, log logr.Logger) (*bolt.DB, error) {
	switch _, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no ledger file: starting a new one; every link starts with a full reconcile", "path", path)
	case err != nil:
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	default:
		rep, err := check(path, FullCheckMaxBytes, false) // load decodes every record next
		if err != nil {
			return nil, err
		}
		log.Info("ledger verified", "path", rep.Path, "bytes", rep.Bytes, "records", rep.Records, "pageCheck", rep.Full, "took", rep.Duration.String())
	}
	var db *bolt.DB
	err := withoutPanics(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
		return err
	})
	var fe formatError
	switch {
	case err == nil:
		return db, nil
	case errors.As(err, &fe):
		abs, _ := filepath.Abs(path)
		return nil, damaged(abs, fe.error)
	case errors.Is(err, bolt.ErrTimeout):
		return nil, lockedError(path, err)
	default:
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
}
