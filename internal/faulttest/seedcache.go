package faulttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// seedRecipe names what SeedMany writes; change it when SeedMany changes, so that stores saved
// by the old recipe are not reused.
const seedRecipe = "v1"

// cacheLockWait bounds how long a test waits for another one (another package's test binary)
// that is seeding the same store.
const cacheLockWait = 15 * time.Minute

// savedSeed is what a saved store holds, next to it in seed.json.
type savedSeed struct {
	Tenant  dwnserver.Identity `json:"tenant"`
	Seeded  Seeded             `json:"seeded"`
	SavedAt time.Time          `json:"savedAt"`
}

// SeededSource starts a server whose store holds a tenant seeded by SeedMany(notes). The first
// call on a machine seeds a server through the dwn-sdk-js client and saves its store in the user
// cache (per dwnserver.InstallID and notes); later calls, in any package, start a server on a
// copy of that store, which is the same real messages without the minutes of seeding. The
// tenant's key is a throwaway test identity.
func SeededSource(t testing.TB, client *dwnserver.Client, notes int) (*dwnserver.Server, dwnserver.Identity, Seeded) {
	t.Helper()
	install, err := dwnserver.InstallID()
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.UserCacheDir()
	if err != nil {
		root = os.TempDir()
	}
	root = filepath.Join(root, "dwnsync", "seeded-stores")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%s-notes%d", install, seedRecipe, notes))
	unlock := lockFile(t, dir+".lock")
	defer unlock()

	if saved, ok := readSaved(dir); ok {
		s := dwnserver.StartWithStore(t, dir)
		t.Logf("source %s started on a copy of the store seeded %s (%d messages, %d CIDs; seeding took %v) from %s",
			s.URL, saved.SavedAt.Format(time.RFC3339), saved.Seeded.Messages, saved.Seeded.ExpectedCIDs, saved.Seeded.Elapsed.Round(time.Millisecond), dir)
		return s, saved.Tenant, saved.Seeded
	}
	s := dwnserver.Start(t, 1)[0]
	id, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	seeded := SeedMany(t, client, s.URL, id, notes)
	// A stop that timed out ended in SIGKILL: SQLite's journal, saved with the store, keeps
	// every accepted write.
	if err := s.Stop(); err != nil && !errors.Is(err, dwnserver.ErrStopTimeout) {
		t.Fatalf("stopping the seeded server to save its store: %v", err)
	}
	if err := save(s, dir, savedSeed{Tenant: id, Seeded: seeded, SavedAt: time.Now().UTC()}); err != nil {
		t.Logf("the seeded store is not saved for later runs: %v", err)
	}
	return dwnserver.Restart(t, s), id, seeded
}

func readSaved(dir string) (savedSeed, bool) {
	var saved savedSeed
	raw, err := os.ReadFile(filepath.Join(dir, "seed.json"))
	if err != nil || json.Unmarshal(raw, &saved) != nil || saved.Tenant.DID == "" {
		return saved, false
	}
	return saved, true
}

// save writes the store and seed.json into a new directory and renames it to dir, so a reader
// never sees half a store.
func save(s *dwnserver.Server, dir string, saved savedSeed) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := dwnserver.SaveStore(s, tmp); err != nil {
		return err
	}
	raw, err := json.Marshal(saved)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "seed.json"), raw, 0o600); err != nil {
		return err
	}
	_ = os.RemoveAll(dir) // a store without seed.json (an interrupted save) is replaced
	return os.Rename(tmp, dir)
}

// lockFile takes an exclusive lock on path, waiting up to cacheLockWait for another process.
func lockFile(t testing.TB, path string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var lockErr error
	Await(t, cacheLockWait, "the lock "+path+" (another test is seeding the same store)", nil, func() (bool, string) {
		lockErr = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(lockErr, syscall.EWOULDBLOCK) {
			return false, "held by another process"
		}
		return true, ""
	})
	if lockErr != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, lockErr)
	}
	return func() { f.Close() } // closing the file releases the lock
}
