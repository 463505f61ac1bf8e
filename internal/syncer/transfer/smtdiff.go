package transfer

import (
	"context"
	"fmt"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// smtDiff runs the seed's batched diff between two enbox-smt servers: collect the local subtree
// hashes at depth 8 (pruning empty subtrees on the way down), send them to the remote's
// MessagesSync diff, and list the local leaves of the prefixes the remote reported. Both sides
// over-report when a bucket differs (docs/engine-behaviour.md#e21); idempotent apply makes that
// safe.
func smtDiff(ctx context.Context, local, remote dwn.SMTTenant, scope dwn.Scope) (onlyRemote, onlyLocal []dwn.Entry, err error) {
	hashes := map[string]string{}
	if err := collectHashes(ctx, local, scope, hashes); err != nil {
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

// smtWalkConcurrency bounds the subtree requests in flight during the local walk.
const smtWalkConcurrency = 8

// collectHashes walks the tree breadth-first from the root, one depth at a time with up to
// smtWalkConcurrency subtree requests in flight, drops empty subtrees, and records every
// non-empty subtree at depth 8 (at most 511 requests).
func collectHashes(ctx context.Context, t dwn.SMTTenant, scope dwn.Scope, out map[string]string) error {
	frontier := []string{""}
	for depth := 0; len(frontier) > 0; depth++ {
		hashes := make([]string, len(frontier))
		errs := make([]error, len(frontier))
		var wg sync.WaitGroup
		sem := make(chan struct{}, smtWalkConcurrency)
		for i, prefix := range frontier {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				hashes[i], errs[i] = t.SMTSubtree(ctx, scope, prefix)
			}()
		}
		wg.Wait()
		var next []string
		for i, prefix := range frontier {
			if errs[i] != nil {
				return fmt.Errorf("SMT subtree %q of %s: %w", prefix, t.Endpoint(), errs[i])
			}
			if h := hashes[i]; h == "" || h == msg.EmptySubtree(depth) {
				continue
			}
			if depth == SMTDiffDepth {
				out[prefix] = hashes[i]
				continue
			}
			next = append(next, prefix+"0", prefix+"1")
		}
		frontier = next
	}
	return nil
}
