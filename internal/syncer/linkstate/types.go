// Package linkstate is the pure state machine of one replication link: no goroutines, no
// clock, no I/O. The link supervisor (internal/syncer) feeds it inputs (feed opened, event
// delivered, applied, push flushed, reconcile done, timer fired, ...) together with the current
// time, and performs the effects it returns (open a feed, arm a timer, start a reconcile,
// persist, publish an event). Its tests are therefore scenarios of inputs and effects
// (testdata/, run by scenario_test.go).
package linkstate

import (
	"fmt"
	"time"
)

// Phase is the link status (docs/engine-behaviour.md#link-phases), the seed's words.
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

// Dir is a feed direction: Pull is remote→local, Push is local→remote. It indexes the
// per-direction arrays ([2]T, Pull first) and is written as "pull"/"push" in text and JSON
// (the ledger's dead letters).
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

// MarshalText writes "pull" or "push".
func (d Dir) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "pull" or "push".
func (d *Dir) UnmarshalText(b []byte) error {
	switch string(b) {
	case "pull":
		*d = Pull
	case "push":
		*d = Push
	default:
		return fmt.Errorf("direction %q is not pull or push", b)
	}
	return nil
}

// Source is the side feed d reads from: Pull reads the remote, Push the local.
func (d Dir) Source() Side {
	if d == Push {
		return Local
	}
	return Remote
}

// Dirs lists both directions in a fixed order.
var Dirs = [2]Dir{Pull, Push}

// Side is one of a link's two servers. It indexes per-side arrays ([2]T, Local first).
type Side int

const (
	Local Side = iota
	Remote
)

// Inbound is the direction that writes into side s: Pull into the local, Push into the remote.
func (s Side) Inbound() Dir {
	if s == Local {
		return Pull
	}
	return Push
}

func (s Side) String() string {
	if s == Remote {
		return "remote"
	}
	return "local"
}

// Direction is the way a link replicates, as configured: both feeds, or one.
type Direction string

const (
	Both     Direction = "both"
	PullOnly Direction = "pull" // remote → local only
	PushOnly Direction = "push" // local → remote only
)

// Runs reports whether a link of this direction copies along d. The empty direction is both.
func (x Direction) Runs(d Dir) bool {
	if d == Push {
		return x != PullOnly
	}
	return x != PushOnly
}

// Mode is how a link is driven: live feeds, or periodic reconciles.
type Mode string

const (
	ModeLive Mode = "live" // durable feeds both ways, reconcile on demand and periodically
	ModePoll Mode = "poll" // a reconcile every poll interval, no feeds
)

// Timing holds every delay and bound the machine uses; DefaultTiming (timing.go) gives the
// spec's values.
type Timing struct {
	PushDebounce     time.Duration
	PushRetryBackoff []time.Duration // its length is the retry budget
	EchoTTL          time.Duration
	EchoCap          int
	// MaxUncommitted is how many deliveries of one feed may be delivered but not yet
	// contiguously committed: the reader's window, and past it the feed overflows (repair).
	MaxUncommitted     int
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
