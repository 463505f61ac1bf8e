package transfer

import (
	"context"
	"fmt"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// SMTDiffMaxDepth is the deepest diff this side asks for (2^24 buckets).
const SMTDiffMaxDepth = 24

// smtDiffMaxHashes bounds the hashes one diff sends. Seed-era servers take a request only in
// the dwn-request header (they predate body framing), and Node answers 431 past 16 KiB of
// headers: 128 hashes of ~78 bytes leave room for the signed message around them. Every tree
// has at most 128 buckets at depth 7, so a diff at depth 7 or deeper always fits.
const smtDiffMaxHashes = 128

// smtDiff diffs two enbox-smt servers in two requests whatever the tenant's size: list the
// local leaves once, build the local tree's hashes at the deepest depth whose buckets fit in
// smtDiffMaxHashes, and send them in one MessagesSync diff to the remote. The server
// over-reports (docs/engine-behaviour.md#e21: every leaf of a differing bucket, both ways);
// both sides of each differing bucket are then known, so the over-report is filtered here, and
// only true differences are read and applied. Walking the local tree one subtree request at a time
// instead would cost up to 2^(depth+1) requests.
//
// Nothing here is trusted for more than a selection: whatever crosses (inline in the diff
// reply or read from its source) still has its CID recomputed before apply. A server that
// lies about holding a CID only withholds from itself, and the digests compared after the
// copy show it.
func smtDiff(ctx context.Context, local, remote dwn.SMTTenant, scope dwn.Scope) (onlyRemote, onlyLocal []dwn.Entry, err error) {
	leaves, err := local.SMTLeaves(ctx, scope, "")
	if err != nil {
		return nil, nil, fmt.Errorf("SMT leaves of %s: %w", local.Endpoint(), err)
	}
	tree := msg.NewSMTOf(leaves)
	depth := smtDiffDepth(tree)
	remoteEntries, localPrefixes, err := remote.SMTDiff(ctx, scope, tree.Hashes(depth), depth)
	if err != nil {
		return nil, nil, fmt.Errorf("SMT diff against %s: %w", remote.Endpoint(), err)
	}
	remoteHas := make(map[string]bool, len(remoteEntries))
	for _, e := range remoteEntries {
		if e.CID == "" || remoteHas[e.CID] {
			continue
		}
		remoteHas[e.CID] = true
		if !tree.Has(e.CID) {
			onlyRemote = append(onlyRemote, e)
		}
	}
	// The remote sent all its leaves of every differing bucket it holds anything in, so the
	// local leaves of those buckets it did not send are the ones it lacks.
	listed := map[string]bool{}
	for _, prefix := range localPrefixes {
		for _, c := range tree.Leaves(prefix) {
			if !remoteHas[c] && !listed[c] {
				listed[c] = true
				onlyLocal = append(onlyLocal, dwn.Entry{CID: c})
			}
		}
	}
	return onlyRemote, onlyLocal, nil
}

// smtDiffDepth is the deepest depth at which the tree has at most smtDiffMaxHashes non-empty
// buckets: the deeper, the fewer leaves a differing bucket sends back.
func smtDiffDepth(tree *msg.SMT) int {
	depth := 0
	for depth < SMTDiffMaxDepth && tree.Buckets(depth+1) <= smtDiffMaxHashes {
		depth++
	}
	return depth
}
