// Package faulttest holds what the fault tests on real servers share: a counting reverse proxy
// on 127.0.0.1 (writes per message CID, read from the dwn-request envelope), the dwnsync
// binary built from ./cmd/dwnsync and run as a process that can be killed with SIGKILL, the
// kill-during-bootstrap loop and its final checks, and an inventory of a tenant (every CID and
// the hash of its data). Tests only.
//
// The 3,000-message source is seeded once per machine and its store kept in the user cache
// (~/.cache/dwnsync/seeded-stores, see SeededSource); delete that directory to seed afresh.
// Kill points come from a seeded RNG: a failed run logs the seed, and DWNSYNC_FAULT_SEED=<seed>
// replays its choices.
package faulttest
