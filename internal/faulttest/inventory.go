package faulttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// NoData is the inventory's hash of a message without data (a delete, a configure).
const NoData = "no-data"

// inventoryReaders is how many reads an inventory keeps in flight.
const inventoryReaders = 8

// Inventory lists a tenant's CIDs on a server and hashes each message's data (sha256, hex;
// NoData for messages without data; "read-error: …" when a read failed).
func Inventory(ctx context.Context, tenant dwn.Tenant) (map[string]string, error) {
	cids, err := tenant.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", tenant.Endpoint(), err)
	}
	out := make(map[string]string, len(cids))
	var mu sync.Mutex
	sem := make(chan struct{}, inventoryReaders)
	var wg sync.WaitGroup
	for _, c := range cids {
		wg.Add(1)
		sem <- struct{}{}
		go func(cid string) {
			defer wg.Done()
			defer func() { <-sem }()
			h := dataHash(ctx, tenant, cid)
			mu.Lock()
			out[cid] = h
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	return out, nil
}

func dataHash(ctx context.Context, tenant dwn.Tenant, cid string) string {
	r, err := tenant.Read(ctx, cid)
	if err != nil {
		return "read-error: " + err.Error()
	}
	if r.Data == nil {
		return NoData
	}
	defer r.Data.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, r.Data); err != nil {
		return "read-error: " + err.Error()
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// Inventories takes the inventories of two tenants at once (each server answers its own reads).
func Inventories(ctx context.Context, a, b dwn.Tenant) (ia, ib map[string]string, err error) {
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ia, errA = Inventory(ctx, a)
	}()
	ib, errB = Inventory(ctx, b)
	wg.Wait()
	return ia, ib, errors.Join(errA, errB)
}

// SameInventory says how two inventories differ (nil when they hold the same CIDs with the
// same data hashes and no read failed), naming at most a few of the differences.
func SameInventory(a, b map[string]string) error {
	var diffs []string
	note := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	for cid, h := range a {
		switch hb, ok := b[cid]; {
		case !ok:
			note("%s only on the first side", cid)
		case hb != h:
			note("%s: data %s on the first side, %s on the second", cid, h, hb)
		case len(h) > 11 && h[:11] == "read-error:":
			note("%s: %s", cid, h)
		}
	}
	for cid := range b {
		if _, ok := a[cid]; !ok {
			note("%s only on the second side", cid)
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	n := len(diffs)
	if len(diffs) > 5 {
		diffs = diffs[:5]
	}
	return fmt.Errorf("%d CIDs on the first side, %d on the second; %d differences, e.g. %v", len(a), len(b), n, diffs)
}
