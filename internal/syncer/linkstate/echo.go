package linkstate

import "time"

// Echo remembers CIDs that just crossed the link in one direction, so the opposite feed does not
// send them straight back: what was pulled into local is not pushed back to that remote, and what
// was pushed to the remote is not pulled back. Entries expire after a TTL; the cache holds at most
// cap entries (the oldest insertions go first). One Echo per link and direction, and a link has
// exactly one remote endpoint, so suppression is per remote endpoint
// (docs/engine-behaviour.md#e29).
type Echo struct {
	ttl     time.Duration
	cap     int
	entries map[string]echoEntry
	order   []echoRef // insertion order; a ref whose seq no longer matches is stale
	seq     uint64
}

type echoEntry struct {
	until time.Time
	seq   uint64
}

type echoRef struct {
	cid string
	seq uint64
}

// NewEcho returns an empty cache.
func NewEcho(ttl time.Duration, capacity int) *Echo {
	return &Echo{ttl: ttl, cap: capacity, entries: map[string]echoEntry{}}
}

// Add records cid at now (re-adding refreshes it and makes it the newest).
func (e *Echo) Add(now time.Time, cid string) {
	e.expire(now)
	e.seq++
	e.entries[cid] = echoEntry{until: now.Add(e.ttl), seq: e.seq}
	e.order = append(e.order, echoRef{cid: cid, seq: e.seq})
	for len(e.entries) > e.cap && len(e.order) > 0 {
		e.popOldest()
	}
	if len(e.order) > 2*len(e.entries)+64 {
		e.compact()
	}
}

// Has reports whether cid was recorded less than TTL ago; an expired entry is removed.
func (e *Echo) Has(now time.Time, cid string) bool {
	en, ok := e.entries[cid]
	if !ok {
		return false
	}
	if !now.Before(en.until) {
		delete(e.entries, cid)
		return false
	}
	return true
}

// Len is the number of entries held.
func (e *Echo) Len() int { return len(e.entries) }

// expire drops entries from the oldest end while they are expired; insertion order equals
// expiry order because every entry gets the same TTL.
func (e *Echo) expire(now time.Time) {
	for len(e.order) > 0 {
		ref := e.order[0]
		en, ok := e.entries[ref.cid]
		if ok && en.seq == ref.seq && now.Before(en.until) {
			return
		}
		e.popOldest()
	}
}

func (e *Echo) popOldest() {
	ref := e.order[0]
	e.order = e.order[1:]
	if en, ok := e.entries[ref.cid]; ok && en.seq == ref.seq {
		delete(e.entries, ref.cid)
	}
}

func (e *Echo) compact() {
	kept := make([]echoRef, 0, len(e.entries))
	for _, ref := range e.order {
		if en, ok := e.entries[ref.cid]; ok && en.seq == ref.seq {
			kept = append(kept, ref)
		}
	}
	e.order = kept
}
