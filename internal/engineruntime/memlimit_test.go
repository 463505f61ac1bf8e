package engineruntime

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// unsetenv removes key for the test and puts it back after.
func unsetenv(t *testing.T, key string) {
	t.Setenv(key, "")
	_ = os.Unsetenv(key)
}

func keepMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

// The runtime gets 90% of the container's limit, and GOMEMLIMIT, when set, wins over it.
func TestMemoryLimitFollowsTheContainer(t *testing.T) {
	keepMemoryLimit(t)
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "AUTOMEMLIMIT")
	if got := SetMemoryLimit(memlimit.Limit(1000 << 20)); got != "900MiB" {
		t.Fatalf("a 1000 MiB container: limit %s, want 900MiB", got)
	}
	noLimit := func() (uint64, error) { return 0, memlimit.ErrNoLimit }
	if got := SetMemoryLimit(noLimit); got != "none" {
		t.Fatalf("no container limit must not keep an older one: got %s", got)
	}
}

func TestMemoryLimitLeavesGOMEMLIMITAlone(t *testing.T) {
	keepMemoryLimit(t)
	debug.SetMemoryLimit(300 << 20) // what GOMEMLIMIT=300MiB sets at start
	t.Setenv("GOMEMLIMIT", "300MiB")
	unsetenv(t, "AUTOMEMLIMIT")
	if got := SetMemoryLimit(memlimit.Limit(1000 << 20)); got != "300MiB" {
		t.Fatalf("GOMEMLIMIT=300MiB: limit %s, want it left at 300MiB", got)
	}
}
