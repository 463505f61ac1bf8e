// Package sharding holds the pure parts of running ReplicationLinks on several operator
// replicas (shards): which live shard a link belongs to (rendezvous hashing), the timing rules
// that fence a shard whose Lease is not renewed, and the plan a sharder follows to move links
// from one shard to another without a link ever running on two shards at once. It talks to no
// API server and reads no clock: the caller passes "now".
package sharding

import (
	"hash/fnv"
)

// Labels and annotations on ReplicationLinks and shard Leases.
const (
	// OwnerLabel on a ReplicationLink names the shard that runs it; each shard's cache sees
	// only the links labelled with its name (`kubectl get rl -L shard.dwnsync.io/owner`).
	OwnerLabel = "shard.dwnsync.io/owner"
	// DrainLabel=<shard> on a link asks its owner to stop it and then, in one patch that tests
	// it is still the owner and the drain still names <shard>, set OwnerLabel to <shard> and
	// remove DrainLabel (the acknowledgement is the hand-over: no unassigned step).
	// DrainLabel=DrainToSharder asks it to remove OwnerLabel instead, for the sharder to
	// assign (the protocol before 2026-12-03; a shard still acknowledges it).
	DrainLabel = "shard.dwnsync.io/drain"
	// DrainToSharder is the DrainLabel value that hands the link back unassigned.
	DrainToSharder = "true"
	// RingLabel on a shard Lease names the ring (the operator installation) it belongs to.
	RingLabel = "shard.dwnsync.io/ring"
	// DeadHolder is the holderIdentity the sharder writes into the Lease of a shard it declared
	// dead: the shard's next renewal fails, and it may run links again only under a new Lease.
	DeadHolder = "dwnsync.io/dead"
)

// Owner picks the shard of a link key among shards by rendezvous (highest random weight)
// hashing: every shard gets a score for the key and the highest wins. When a shard joins it
// wins only the keys it now scores highest on (~1/N); when one leaves only its keys move. It
// returns "" when shards is empty.
func Owner(key string, shards []string) string {
	best, bestScore := "", uint64(0)
	for _, s := range shards {
		score := weight(s, key)
		if best == "" || score > bestScore || (score == bestScore && s < best) {
			best, bestScore = s, score
		}
	}
	return best
}

// weight is the shard's score for key: FNV-1a of both, spread by a 64-bit finalizer (FNV alone
// leaves close inputs with close hashes, which would bias the shards).
func weight(shard, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(shard))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
