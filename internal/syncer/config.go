package syncer

import (
	"fmt"
	"reflect"
	"time"

	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// LinkConfig is everything the engine needs to run one link.
type LinkConfig struct {
	Name           string // ns/name, for logs and events
	Tenant         string
	LocalEndpoint  string
	RemoteEndpoint string
	Scope          dwn.Scope
	Direction      linkstate.Direction
	Mode           linkstate.Mode
	PollInterval   time.Duration
	Dialect        dwn.Dialect // of the remote endpoint
	LocalDialect   dwn.Dialect
	LocalSigner    *msg.Signer
	RemoteSigner   *msg.Signer
	Suspend        bool

	// Owner identifies who claims the link's ledger key (a ReplicationLink's UID, or a link
	// name in dwnsync run); it is kept in the key's ledger record, so it survives restarts.
	// Apply refuses another owner's claim with a *DuplicateLinkError. Empty: no claim (the
	// engine then neither checks nor records an owner).
	Owner string
	// Supersedes hands the key over: Apply takes it from this owner (the caller decided that
	// Owner outranks it, e.g. the older link), keeping the checkpoints.
	Supersedes string
}

// withDefaults fills empty fields and checks the rest; errors name the field and the fix.
func (c LinkConfig) withDefaults() (LinkConfig, error) {
	// One spelling of each server, so the ledger key and the per-server grouping agree with
	// the caller's.
	c.LocalEndpoint, c.RemoteEndpoint = baseurl.Normalize(c.LocalEndpoint), baseurl.Normalize(c.RemoteEndpoint)
	if c.Direction == "" {
		c.Direction = linkstate.Both
	}
	if c.Mode == "" {
		c.Mode = linkstate.ModeLive
	}
	if c.Dialect == "" {
		c.Dialect = dwn.DialectAuto
	}
	if c.LocalDialect == "" {
		c.LocalDialect = dwn.DialectAuto
	}
	if c.Mode == linkstate.ModePoll && c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	switch {
	case c.Tenant == "":
		return c, fmt.Errorf("link %q: tenant is empty; set the tenant DID", c.Name)
	case c.LocalEndpoint == "":
		return c, fmt.Errorf("link %q: localEndpoint is empty; set it (or the operator's --local-endpoint)", c.Name)
	case c.RemoteEndpoint == "":
		return c, fmt.Errorf("link %q: endpoint is empty; set the remote DWN endpoint URL", c.Name)
	case baseurl.Same(c.LocalEndpoint, c.RemoteEndpoint):
		return c, fmt.Errorf("link %q: endpoint %s is the local endpoint; a link needs two different servers", c.Name, c.RemoteEndpoint)
	case c.Direction != linkstate.Both && c.Direction != linkstate.PullOnly && c.Direction != linkstate.PushOnly:
		return c, fmt.Errorf("link %q: direction %q is not one of both, pull, push", c.Name, c.Direction)
	case c.Mode != linkstate.ModeLive && c.Mode != linkstate.ModePoll:
		return c, fmt.Errorf("link %q: mode %q is not one of live, poll", c.Name, c.Mode)
	case c.LocalSigner == nil || c.RemoteSigner == nil:
		return c, fmt.Errorf("link %q: no signer; reference a Secret with did and privateJwk", c.Name)
	}
	return c, nil
}

// machineConfig is what the pure state machine needs from a link config.
func (c LinkConfig) machineConfig() linkstate.Config {
	return linkstate.Config{
		Mode:    c.Mode,
		Pull:    c.Direction.Runs(linkstate.Pull),
		Push:    c.Direction.Runs(linkstate.Push),
		Suspend: c.Suspend,
	}
}

// Same reports whether two configs would run the link identically: the one test of "did this
// link's configuration change" for the engine, the operator and `dwnsync run`.
func (c LinkConfig) Same(o LinkConfig) bool {
	if !c.LocalSigner.Equal(o.LocalSigner) || !c.RemoteSigner.Equal(o.RemoteSigner) {
		return false
	}
	a, b := c, o
	a.LocalSigner, a.RemoteSigner, b.LocalSigner, b.RemoteSigner = nil, nil, nil, nil
	a.Supersedes, b.Supersedes = "", "" // how the key was taken, not what runs
	return reflect.DeepEqual(a, b)
}

// LinkStatus is the engine's view of one link.
type LinkStatus struct {
	Key, Name         string
	Owner             string // LinkConfig.Owner of the running link
	Phase             linkstate.Phase
	NeedsReconcile    bool
	Connectivity      linkstate.Connectivity
	Dialect           string
	Pull, Push        DirectionStatus
	LastReconcileTime time.Time
	LastConvergedTime time.Time
	RepairAttempts    int
	DeadLetters       int
	LastError         string
	// LastErrorKind is the dwn.ErrorKind of LastError's cause ("" when none or unknown).
	LastErrorKind string
	Progress      Progress
	// CheckpointsNotSaved is the ledger's commit error while checkpoints cannot be saved (a
	// full or read-only disk), "" when they are; it concerns every link at once.
	CheckpointsNotSaved string
}

// DirectionStatus is one feed's progress.
type DirectionStatus struct {
	Checkpoint    string // position of the contiguous checkpoint ("" = none)
	Applied       int64  // messages this direction stored on the other side
	Pending       int    // deliveries not yet contiguously committed
	LastEventTime time.Time
	LastError     string
}

// Progress of the bootstrap (or latest) reconcile: messages copied out of the diff size.
type Progress struct {
	Applied, Total int64 // Total 0 = unknown
}

// Event types. Reason and Message carry the details: the trigger of a status change, the
// attempt number and error of a repair, the reason and CID of a dead letter, the position and
// message CID of a checkpoint advance.
const (
	EventStatusChange       = linkstate.EvStatusChange       // From, To: phases
	EventConnectivityChange = linkstate.EvConnectivityChange // From, To: online|offline|unknown
	EventPullAdvance        = linkstate.EvPullAdvance        // durable; at most one a second per feed
	EventPushAdvance        = linkstate.EvPushAdvance
	EventReconcileNeeded    = linkstate.EvReconcileNeeded
	EventReconcileCompleted = linkstate.EvReconcileCompleted
	EventRepairStarted      = linkstate.EvRepairStarted
	EventRepairCompleted    = linkstate.EvRepairCompleted
	EventRepairFailed       = linkstate.EvRepairFailed
	EventDegradedPoll       = linkstate.EvDegradedPoll
	EventGapDetected        = linkstate.EvGapDetected
	EventDeadLetter         = linkstate.EvDeadLetter
	// EventCheckpointsNotSaved and EventCheckpointsSaved are published for every link when
	// the ledger's commits start failing (Message: the error) and when they succeed again.
	EventCheckpointsNotSaved = "ledger:commits-failing"
	EventCheckpointsSaved    = "ledger:commits-ok"
)

// Event is one link transition.
type Event struct {
	Key, Name, Type, From, To, Reason, Message string
	Time                                       time.Time
}
