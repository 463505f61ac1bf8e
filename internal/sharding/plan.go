package sharding

import (
	"sort"
	"time"
)

// Shard is what the sharder knows of one shard's Lease.
type Shard struct {
	Name string
	// Holder is the Lease's holderIdentity: the shard's own name while it runs, DeadHolder once
	// the sharder declared it dead, "" once the shard released it after stopping its links.
	Holder string
	// RenewTime is the Lease's last renewal (for a Lease that is missing: when the sharder first
	// saw a link labelled for it, so a deleted Lease is waited out like an expired one).
	RenewTime time.Time
	// Missing is true when no Lease exists: declaring the shard dead creates one.
	Missing bool
}

// ShardState is where a shard stands for the sharder.
type ShardState int

const (
	// Live shards receive links.
	Live ShardState = iota
	// Expired shards receive nothing, and keep their links until fencing time has passed.
	Expired
	// Takeable shards have been silent for LeaseDuration+Margin: they stopped their links, so
	// the sharder declares them dead.
	Takeable
	// Dead shards (declared dead, or released by the shard itself) lose their links at once.
	Dead
)

func (s ShardState) String() string {
	return [...]string{"live", "expired", "takeable", "dead"}[s]
}

// State is the shard's state at now.
func (t Timing) State(s Shard, now time.Time) ShardState {
	switch {
	case s.Holder != s.Name:
		return Dead
	case !s.Missing && now.Before(s.RenewTime.Add(t.LeaseDuration)):
		return Live
	case now.Before(t.TakeableAt(s.RenewTime)):
		return Expired
	}
	return Takeable
}

// Link is what the sharder knows of one ReplicationLink.
type Link struct {
	// ID names the object (namespace/name); Key is the hashed key (the link's ledger key, so
	// every claimant of one key lands on one shard).
	ID, Key string
	Owner   string // OwnerLabel ("" when unassigned)
	// DrainTo is DrainLabel's value: "" when not draining, else the shard the owner hands the
	// link to once it stopped it (DrainToSharder: it removes its label instead).
	DrainTo string
}

// Draining reports whether the owner was asked to let go of the link.
func (l Link) Draining() bool { return l.DrainTo != "" }

// LinkVerb is what the sharder does to one link.
type LinkVerb int

const (
	// Assign labels the link for To (and clears a drain): it is unassigned, or its owner is dead.
	Assign LinkVerb = iota
	// Unassign removes the label of a dead owner when no shard is live to take the link.
	Unassign
	// Drain asks the live owner to stop the link and let go of it.
	Drain
	// Undrain cancels a drain: the owner is the link's shard again.
	Undrain
	// Redirect points a drain in flight at another shard (the one it named is no longer the
	// link's shard): still one drain in flight, so the drain limit does not count it again.
	Redirect
)

func (v LinkVerb) String() string {
	return [...]string{"assign", "unassign", "drain", "undrain", "redirect"}[v]
}

// LinkAction is one step for one link. From is the owner the step expects (the caller writes it
// only if the object still says so).
type LinkAction struct {
	Link     Link
	Verb     LinkVerb
	From, To string
}

// ShardVerb is what the sharder does to one shard's Lease.
type ShardVerb int

const (
	// DeclareDead writes DeadHolder into a takeable shard's Lease (conditionally on the Lease
	// not having changed), after which its links may move.
	DeclareDead ShardVerb = iota
	// DeleteLease removes a dead shard's Lease once no link is labelled for it, so the shard
	// (restarted, or reconnected) can join again under a new Lease.
	DeleteLease
)

func (v ShardVerb) String() string { return [...]string{"declare-dead", "delete-lease"}[v] }

// ShardAction is one step for one shard.
type ShardAction struct {
	Shard Shard
	Verb  ShardVerb
}

// Plan is every step due at one instant, and the links owned per live shard after them.
type Plan struct {
	Links  []LinkAction
	Shards []ShardAction
	// Live lists the live shards, sorted.
	Live []string
	// Waiting counts links held by expired shards (they move once fencing time has passed).
	Waiting int
	// Draining counts the drains in flight: links a live shard was asked to let go of and
	// still holds.
	Draining int
	// Deferred counts the drains LimitDrains left for a later pass.
	Deferred int
	// NextCheck is the earliest time a shard's state changes by the clock alone (zero: none).
	NextCheck time.Time
}

// Decide computes the steps that bring links to their rendezvous shard among the live shards.
// A link moves from a live shard only through a drain (the owner stops it, then relabels it for
// the shard the drain names), and from a silent shard only after the sharder declared that
// shard dead, which it does only once the shard has stopped its links by the Timing rules.
func (t Timing) Decide(links []Link, shards []Shard, now time.Time) Plan {
	var p Plan
	state := map[string]ShardState{}
	for _, s := range shards {
		st := t.State(s, now)
		state[s.Name] = st
		switch st {
		case Live:
			p.Live = append(p.Live, s.Name)
			p.nextCheck(s.RenewTime.Add(t.LeaseDuration))
		case Expired:
			p.nextCheck(t.TakeableAt(s.RenewTime))
		case Takeable:
			p.Shards = append(p.Shards, ShardAction{Shard: s, Verb: DeclareDead})
		}
	}
	sort.Strings(p.Live)
	held := map[string]bool{}
	for _, l := range links {
		if l.Owner != "" {
			held[l.Owner] = true
		}
		target := Owner(l.Key, p.Live)
		act := LinkAction{Link: l, From: l.Owner, To: target}
		st, known := state[l.Owner]
		switch {
		case l.Owner == "" || (known && st == Dead):
			if target != "" {
				act.Verb = Assign
			} else if l.Owner != "" {
				act.Verb = Unassign
			} else {
				continue
			}
		case !known || st != Live:
			p.Waiting++ // fenced only by time: wait for the sharder to declare the owner dead
			continue
		case l.Owner == target:
			if !l.Draining() {
				continue
			}
			act.Verb = Undrain
		case target == "":
			continue
		case l.Draining():
			p.Draining++
			if l.DrainTo == target || l.DrainTo == DrainToSharder {
				continue // the owner has been asked; it acknowledges by relabelling the link
			}
			act.Verb = Redirect
		default:
			act.Verb = Drain
		}
		p.Links = append(p.Links, act)
	}
	for _, s := range shards {
		if state[s.Name] == Dead && !held[s.Name] && !s.Missing {
			p.Shards = append(p.Shards, ShardAction{Shard: s, Verb: DeleteLease})
		}
	}
	return p
}

// LimitDrains keeps at most max drains in flight (max <= 0: no limit). The drains already in
// flight count against it; the Drain steps beyond are dropped and counted in Deferred, for a
// later pass (each acknowledged drain changes a link, which brings one). So a joining shard's
// share moves in batches, and the old shards stop links at a bounded pace.
func (p *Plan) LimitDrains(max int) {
	if max <= 0 {
		return
	}
	room := max - p.Draining
	kept := p.Links[:0]
	for _, a := range p.Links {
		if a.Verb == Drain {
			if room <= 0 {
				p.Deferred++
				continue
			}
			room--
		}
		kept = append(kept, a)
	}
	p.Links = kept
}

func (p *Plan) nextCheck(at time.Time) {
	if p.NextCheck.IsZero() || at.Before(p.NextCheck) {
		p.NextCheck = at
	}
}
