package transfer

import (
	"context"
	"fmt"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// smtDiff runs the seed's batched diff between two enbox-smt servers: collect the local
// subtree hashes at depth 8 (pruning empty subtrees on the way down), send them to the remote's
// MessagesSync diff, and list the local leaves of the prefixes the remote reported. Both sides
// over-report when a bucket differs (seed E21); idempotent apply makes that safe.
func smtDiff(ctx context.Context, local, remote dwn.SMTTenant, scope dwn.Scope) (onlyRemote, onlyLocal []dwn.Entry, err error) {
	hashes := map[string]string{}
	if err := collectHashes(ctx, local, scope, "", hashes); err != nil {
		return nil, nil, err
	}
	remoteEntries, localPrefixes, err := remote.SMTDiff(ctx, scope, hashes, SMTDiffDepth)
	if err != nil {
		return nil, nil, fmt.Errorf("SMT diff against %s: %w", remote.Endpoint(), err)
	}
	seen := map[string]bool{}
	for _, e := range remoteEntries {
		if e.CID != "" && !seen[e.CID] {
			seen[e.CID] = true
			onlyRemote = append(onlyRemote, e)
		}
	}
	seen = map[string]bool{}
	for _, prefix := range localPrefixes {
		leaves, err := local.SMTLeaves(ctx, scope, prefix)
		if err != nil {
			return nil, nil, fmt.Errorf("SMT leaves %q of %s: %w", prefix, local.Endpoint(), err)
		}
		for _, c := range leaves {
			if !seen[c] {
				seen[c] = true
				onlyLocal = append(onlyLocal, dwn.Entry{CID: c})
			}
		}
	}
	return onlyRemote, onlyLocal, nil
}

// collectHashes walks the tree from prefix and records every non-empty subtree at depth 8.
func collectHashes(ctx context.Context, t dwn.SMTTenant, scope dwn.Scope, prefix string, out map[string]string) error {
	h, err := t.SMTSubtree(ctx, scope, prefix)
	if err != nil {
		return fmt.Errorf("SMT subtree %q of %s: %w", prefix, t.Endpoint(), err)
	}
	if h == "" || h == dwn.EmptySubtree(len(prefix)) {
		return nil
	}
	if len(prefix) == SMTDiffDepth {
		out[prefix] = h
		return nil
	}
	if err := collectHashes(ctx, t, scope, prefix+"0", out); err != nil {
		return err
	}
	return collectHashes(ctx, t, scope, prefix+"1", out)
}
