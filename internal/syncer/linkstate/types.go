// Package linkstate is the pure state machine of one replication link: no goroutines, no
// clock, no I/O. The link supervisor (internal/syncer) feeds it inputs (feed opened, event
// delivered, applied, push flushed, reconcile done, timer fired, ...) together with the current
// time, and performs the effects it returns (open a feed, arm a timer, start a reconcile,
// persist, publish an event). Its tests are therefore scenarios of inputs and effects
// (testdata/, run by scenario_test.go).
package linkstate

import (
	"time"
)

// Phase is the link status (spec §1.6), the seed's words.
type Phase string

const (
	Initializing Phase = "initializing"
	Live         Phase = "live"
	Repairing    Phase = "repairing"
	DegradedPoll Phase = "degraded_poll"
	Paused       Phase = "paused"
)

// Connectivity of a link (runtime only; unknown on load).
type Connectivity string

const (
	Online  Connectivity = "online"
	Offline Connectivity = "offline"
	Unknown Connectivity = "unknown"
)

// Dir is a feed direction: Pull is remote→local, Push is local→remote.
type Dir int

const (
	Pull Dir = iota
	Push
)

func (d Dir) String() string {
	if d == Push {
		return "push"
	}
	return "pull"
}

// Dirs lists both directions in a fixed order.
var Dirs = [2]Dir{Pull, Push}

// Mode is how a link is driven: live feeds, or periodic reconciles.
type Mode string

const (
	ModeLive Mode = "live"
	ModePoll Mode = "poll"
)

// Timing holds every delay the machine uses. internal/syncer builds it from timing.go.
type Timing struct {
	PushDebounce       time.Duration
	PushRetryBackoff   []time.Duration // its length is the retry budget
	EchoTTL            time.Duration
	EchoCap            int
	MaxPending         int
	MaxRepairAttempts  int
	RepairBackoff      []time.Duration
	DegradedPollBase   time.Duration
	DegradedPollJitter time.Duration

	ReconcileDefault      time.Duration
	ReconcileStartupDirty time.Duration
	ReconcileEOSEDirty    time.Duration
	ReconcilePostRepair   time.Duration
	ReconcileRetry        time.Duration

	VerifyInterval time.Duration // periodic reconcile in live mode
}

// Config is the part of the link spec the machine needs.
type Config struct {
	Mode Mode
	// Pull and Push say which feeds the link runs (direction both = both true).
	Pull, Push bool
	Suspend    bool
}

func (c Config) enabled(d Dir) bool {
	if c.Mode == ModePoll {
		return false
	}
	if d == Pull {
		return c.Pull
	}
	return c.Push
}

// Env is what the outside world tells each step: the time now, and a uniform random number in
// [0,1) (used only for the degraded-poll jitter, drawn when the state is entered).
type Env struct {
	Now  time.Time
	Rand float64
}
