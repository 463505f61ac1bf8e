package engineruntime

import (
	"fmt"
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// MemoryLimitRatio is the share of the container's memory limit given to the Go runtime as its
// soft limit: the rest covers what the runtime does not count against it (the binary, OS
// buffers, bbolt's mapped pages).
const MemoryLimitRatio = 0.9

// SetMemoryLimit gives the Go runtime a soft memory limit of MemoryLimitRatio of the limit
// that provider reports (the container's cgroup in production), unless GOMEMLIMIT or AUTOMEMLIMIT=off
// says otherwise. The runtime does not read the cgroup itself: it lets the heap grow to twice
// the live heap before it collects, which at 10,000 links overshot the chart's 512 MiB limit
// (BENCHMARKS.md, P5). It returns the limit in force, for the start-up log.
func SetMemoryLimit(provider memlimit.Provider) string {
	// Errors (no cgroup: a laptop, `dwnsync run`) leave the runtime's default, no limit.
	_, _ = memlimit.Set(memlimit.WithRatio(MemoryLimitRatio), memlimit.WithProvider(provider))
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return fmt.Sprintf("%dMiB", l>>20)
	}
	return "none"
}
