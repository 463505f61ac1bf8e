package transfer

import (
	"context"
	"io"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// prefetchBudget is the memory a Copy may spend on small payloads read before sorting.
type prefetchBudget struct {
	mu   sync.Mutex
	left int64
}

func (b *prefetchBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// prefetch reads the entries that lack a message, FetchConcurrency at a time, and inspects
// every message, keeping at most memory bytes of small payloads. Entries that cannot be prepared get their outcome in outcomes; the others are
// returned in input order. After a transient failure no further Reads start (abort says why).
func (c *Copier) prefetch(ctx context.Context, src dwn.Tenant, entries []dwn.Entry, outcomes []Outcome, memory int64) ([]item, error) {
	budget := &prefetchBudget{left: memory}
	prepared := make([]item, len(entries))
	ok := make([]bool, len(entries))
	var (
		mu    sync.Mutex
		abort error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, c.fetchConcurrency())
	for i, e := range entries {
		outcomes[i].CID = e.CID
		mu.Lock()
		stop := abort
		mu.Unlock()
		if stop != nil {
			outcomes[i].Err = stop
			continue
		}
		if e.Message != nil { // nothing to read: no goroutine needed
			it, o, good := c.prepare(ctx, src, e, i, budget)
			prepared[i], ok[i] = it, good
			if !good {
				outcomes[i] = o
			}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, e dwn.Entry) {
			defer wg.Done()
			defer func() { <-sem }()
			it, o, good := c.prepare(ctx, src, e, i, budget)
			prepared[i], ok[i] = it, good
			if !good {
				outcomes[i] = o
				if cause := abortCause(ctx, o.Err); cause != nil {
					mu.Lock()
					if abort == nil {
						abort = cause
					}
					mu.Unlock()
				}
			}
		}(i, e)
	}
	wg.Wait()
	var ready []item
	for i := range entries {
		if ok[i] {
			ready = append(ready, prepared[i])
		}
	}
	return ready, abort
}

// prepare makes sure an entry has its message (reading it from src when missing) and knows
// what it is. Small data read on the way is kept; larger data is read again when applied.
func (c *Copier) prepare(ctx context.Context, src dwn.Tenant, e dwn.Entry, index int, budget *prefetchBudget) (item, Outcome, bool) {
	it := item{Item: Item{Entry: e}, index: index}
	if e.Message == nil {
		rr, err := src.Read(ctx, e.CID)
		if err != nil {
			return it, readFailure(e.CID, err), false
		}
		it.Entry.Message = rr.Message
		if rr.Data == nil {
			it.noData = true
		} else {
			info, _ := msg.Inspect(rr.Message)
			if info.DataSize <= c.inlineLimit() && budget.take(info.DataSize) {
				buf, err := io.ReadAll(io.LimitReader(rr.Data, c.inlineLimit()+1))
				if err == nil && int64(len(buf)) <= c.inlineLimit() {
					it.Entry.InlineData = buf
				}
			}
			_ = rr.Data.Close()
		}
	}
	info, err := msg.Inspect(it.Entry.Message)
	if err != nil {
		return it, Outcome{CID: e.CID, Kind: dwn.Invalid, Reason: ReasonUninspectable + ": " + err.Error()}, false
	}
	it.Info = info
	return it, Outcome{}, true
}
