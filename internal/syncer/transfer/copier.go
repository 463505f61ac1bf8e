package transfer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/go-logr/logr"
)

// Defaults for Copier.
const (
	DefaultMaxDependencyPasses = 128   // per root message, as the enbox agent budgets
	DefaultInlineLimit         = 30000 // bytes a prefetch keeps in memory (the servers' inline size)
	DefaultMaxPasses           = 4     // whole-batch passes while some entry still makes progress
	DefaultPrefetchBudget      = 64 << 20
	DefaultFetchConcurrency    = 4
	DefaultApplyConcurrency    = 8 // what @web5/dwn-server sustains on 2 cores before queueing
)

// Copier copies messages between tenants. The zero value is ready to use.
type Copier struct {
	Logger logr.Logger
	// MaxDependencyPasses bounds how many Incomplete rounds one root message may trigger,
	// including those of the dependencies it pulls in.
	MaxDependencyPasses int
	// InlineLimit is the largest payload kept in memory when a message had to be read before
	// sorting; larger payloads are read again, streamed, when applied.
	InlineLimit int64
	// MaxPasses bounds the batch passes: entries still Incomplete after a pass are tried again
	// while the previous pass made progress (their dependency may have been another entry).
	MaxPasses int
	// FetchConcurrency is how many source Reads run at once while messages are fetched
	// before sorting (the agent's remote fetch concurrency).
	FetchConcurrency int
	// ApplyConcurrency is how many messages are applied to the target at once.
	ApplyConcurrency int
	// PrefetchBudget bounds the small payloads one Copy keeps in memory between reading and
	// applying; beyond it payloads are read again at apply time.
	PrefetchBudget int64
	// ReconcileChunk is how many missing messages Reconcile copies at a time (default
	// DefaultReconcileChunk): the memory of a reconcile is bounded by it, not by the tenant.
	ReconcileChunk int
	// SinceMarkLimit is how many messages a side may have admitted since a link's Mark before
	// ReconcileSince lists the whole tenant instead (default DefaultSinceMarkLimit).
	SinceMarkLimit int
	// SinceMarkContentBytes bounds the messages and inline data ReconcileSince holds per side
	// before its copy starts (default DefaultSinceMarkContentBytes); the messages beyond it
	// are read by the copy, in its own bounded chunks.
	SinceMarkContentBytes int
}

// orDefault is v when set (positive), else def: a zero Copier field means the package default.
func orDefault[T int | int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (c *Copier) applyConcurrency() int {
	return orDefault(c.ApplyConcurrency, DefaultApplyConcurrency)
}

func (c *Copier) fetchConcurrency() int {
	return orDefault(c.FetchConcurrency, DefaultFetchConcurrency)
}

func (c *Copier) prefetchBudget() int64 {
	return orDefault(c.PrefetchBudget, DefaultPrefetchBudget)
}

func (c *Copier) maxDependencyPasses() int {
	return orDefault(c.MaxDependencyPasses, DefaultMaxDependencyPasses)
}

func (c *Copier) inlineLimit() int64 {
	return orDefault(c.InlineLimit, DefaultInlineLimit)
}

func (c *Copier) maxPasses() int {
	return orDefault(c.MaxPasses, DefaultMaxPasses)
}

// item is one message on its way: what we know of it, and whether the source had no data.
type item struct {
	Item
	index  int  // input position, -1 for a dependency
	noData bool // the source answered a Read without data: apply without it
}

// Copy applies entries from src to dst in dependency order and returns one outcome per entry,
// in input order. A message starts as soon as the messages of the batch it depends on are
// done (not a whole level), ApplyConcurrency at a time. A message missing from an entry is read from src; data comes inline or as
// src's Read stream, piped straight into dst's Apply (and read again for every retry). Every
// message's CID is recomputed before it is written; a mismatch is refused as Invalid
// "cid-mismatch". Incomplete is resolved by applying the missing dependencies from src first.
// After a transient transport error the remaining entries are not attempted (they carry the
// error too): the caller retries later. The error return is reserved for a cancelled ctx.
func (c *Copier) Copy(ctx context.Context, src, dst dwn.Tenant, entries []dwn.Entry) (Result, error) {
	res := Result{Outcomes: make([]Outcome, len(entries))}
	ready, abort := c.prefetch(ctx, src, entries, res.Outcomes, c.prefetchBudget())
	return c.applyPrepared(ctx, src, dst, ready, abort, res)
}

// applyPrepared applies what prefetch prepared (see Copy), filling res in: passes over the
// entries still Incomplete while a pass makes progress (their dependency may have been
// another entry).
func (c *Copier) applyPrepared(ctx context.Context, src, dst dwn.Tenant, ready []item, abort error, res Result) (Result, error) {
	if abort != nil {
		for _, it := range ready {
			res.Outcomes[it.index] = Outcome{CID: it.Entry.CID, Err: abort}
		}
	}
	stop := &abortFlag{err: abort}
	pending := ready
	for pass := 0; pass < c.maxPasses() && len(pending) > 0 && stop.get() == nil; pass++ {
		var progress bool
		var again []item
		outs := c.applyInOrder(ctx, src, dst, pending, stop)
		for k, it := range pending {
			o := outs[k]
			res.Outcomes[it.index] = o
			if o.Succeeded() {
				progress = true
			}
			if o.Kind == dwn.Incomplete && o.Err == nil {
				again = append(again, it)
			}
		}
		if !progress {
			break
		}
		pending = again
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// abortCause says whether an error should stop the batch: the context ended, or a transient
// transport failure suggests the rest would fail the same way.
func abortCause(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dwn.IsTransient(err) {
		return fmt.Errorf("not attempted after an earlier transient failure: %w", err)
	}
	return nil
}

func readFailure(cid string, err error) Outcome {
	if dwn.IsNotFound(err) {
		return Outcome{CID: cid, Kind: KindSourceGone, Reason: "not found on the source"}
	}
	return Outcome{CID: cid, Err: fmt.Errorf("read %s from the source: %w", cid, err)}
}

// copyOne applies one message, resolving Incomplete by applying what the target lacks from
// the source first, within the root's budget. inFlight holds the CIDs on the current
// dependency path and those already tried for this root, so a cycle cannot recurse forever.
func (c *Copier) copyOne(ctx context.Context, src, dst dwn.Tenant, it item, budget *int, inFlight map[string]bool) Outcome {
	deps := 0
	for {
		o, res := c.applyOnce(ctx, src, dst, it)
		o.Dependencies = deps
		if o.Err != nil || o.Kind != dwn.Incomplete {
			return o
		}
		for _, ref := range res.Missing {
			if ref.Terminal {
				o.Kind, o.Reason = dwn.Invalid, ReasonTerminalRef+": "+describeRef(ref)
				return o
			}
		}
		if *budget <= 0 {
			o.Kind, o.Reason = dwn.Invalid, ReasonBudgetExhausted+": still missing "+describeRefs(res.Missing)
			return o
		}
		*budget--
		progressed := false
		for _, ref := range res.Missing {
			found, err := c.fetchRef(ctx, src, it, ref)
			if err != nil {
				if dwn.IsTransient(err) || ctx.Err() != nil {
					return Outcome{CID: it.Entry.CID, Err: err, Dependencies: deps}
				}
				c.Logger.V(1).Info("dependency not available from the source", "cid", it.Entry.CID, "ref", describeRef(ref), "err", err.Error())
				continue
			}
			for _, dep := range found {
				if dep.Entry.CID == "" || inFlight[dep.Entry.CID] {
					continue
				}
				inFlight[dep.Entry.CID] = true
				d := c.copyOne(ctx, src, dst, dep, budget, inFlight)
				if d.Err != nil && (dwn.IsTransient(d.Err) || ctx.Err() != nil) {
					return Outcome{CID: it.Entry.CID, Err: d.Err, Dependencies: deps}
				}
				if d.Succeeded() {
					progressed = true
				}
				deps += d.Dependencies
				if d.Err == nil && d.Kind == dwn.Applied {
					deps++
				}
			}
		}
		if !progressed {
			o.Reason = ReasonUnresolvableDeps + ": " + describeRefs(res.Missing)
			o.Dependencies = deps
			return o
		}
	}
}

// fetchRef turns a dependency ref into items to apply (an attached initial write first).
// When the entry being applied carries its record's initial write (feed events of updates and
// deletes do), an InitialWrite ref is satisfied from it without asking the source.
func (c *Copier) fetchRef(ctx context.Context, src dwn.Tenant, of item, ref dwn.DependencyRef) ([]item, error) {
	var entries []dwn.Entry
	switch {
	case ref.MessageCID != "":
		entries = []dwn.Entry{{CID: ref.MessageCID}} // applyOnce reads message and data in one go
	case ref.Type == "InitialWrite" && of.Entry.InitialWrite != nil:
		entries = []dwn.Entry{{Message: of.Entry.InitialWrite}}
	default:
		got, err := src.Dependency(ctx, ref)
		if err != nil {
			return nil, err
		}
		entries = got
	}
	var out []item
	for _, e := range entries {
		if e.InitialWrite != nil {
			if it, ok := dependencyItem(dwn.Entry{Message: e.InitialWrite}); ok {
				out = append(out, it)
			}
		}
		e.InitialWrite = nil
		if it, ok := dependencyItem(e); ok {
			out = append(out, it)
		}
	}
	return out, nil
}

// dependencyItem completes an entry found for a dependency: its CID (computed when the
// source did not say) and what Inspect tells about it (so that applyOnce fetches its data).
func dependencyItem(e dwn.Entry) (item, bool) {
	if e.Message == nil {
		return item{Item: Item{Entry: e}, index: -1}, e.CID != ""
	}
	if e.CID == "" {
		cid, err := msg.MessageCID(e.Message)
		if err != nil {
			return item{}, false
		}
		e.CID = cid
	}
	it := item{Item: Item{Entry: e}, index: -1}
	if info, err := msg.Inspect(e.Message); err == nil {
		it.Info = info
	}
	return it, true
}

// applyOnce fetches the message and data as needed (a fresh stream every time:
// docs/engine-behaviour.md#e18), verifies the CID and applies it to dst.
func (c *Copier) applyOnce(ctx context.Context, src, dst dwn.Tenant, it item) (Outcome, dwn.ApplyResult) {
	cid := it.Entry.CID
	message := it.Entry.Message
	var data io.Reader
	needsData := it.Entry.InlineData == nil && !it.noData &&
		(message == nil || (it.Info.Kind() == "RecordsWrite" && it.Info.DataCID != "" && it.Info.DataSize > 0))
	switch {
	case it.Entry.InlineData != nil:
		data = bytes.NewReader(it.Entry.InlineData)
	case needsData:
		rr, err := src.Read(ctx, cid)
		if err != nil {
			return readFailure(cid, err), dwn.ApplyResult{}
		}
		if rr.Data != nil {
			defer rr.Data.Close()
			data = rr.Data
		}
		if message == nil {
			message = rr.Message
		}
		if rr.CID != "" && cid != "" && rr.CID != cid {
			return Outcome{CID: cid, Kind: dwn.Invalid, Reason: fmt.Sprintf("%s: asked the source for %s, it answered with %s", ReasonCIDMismatch, cid, rr.CID)}, dwn.ApplyResult{}
		}
	}
	stripped, err := msg.StripForApply(message)
	if err != nil {
		return Outcome{CID: cid, Kind: dwn.Invalid, Reason: ReasonUninspectable + ": " + err.Error()}, dwn.ApplyResult{}
	}
	computed, err := msg.MessageCID(stripped)
	if err != nil {
		return Outcome{CID: cid, Kind: dwn.Invalid, Reason: ReasonUninspectable + ": " + err.Error()}, dwn.ApplyResult{}
	}
	if cid == "" {
		cid = computed
	} else if computed != cid {
		return Outcome{CID: cid, Kind: dwn.Invalid, Reason: fmt.Sprintf("%s: the source's message hashes to %s", ReasonCIDMismatch, computed)}, dwn.ApplyResult{}
	}
	res, err := dst.Apply(ctx, stripped, data)
	if err != nil {
		return Outcome{CID: cid, Err: fmt.Errorf("apply %s to %s: %w", cid, dst.Endpoint(), err)}, res
	}
	return Outcome{CID: cid, Kind: res.Kind, Reason: res.Reason, AncestryOnly: res.AncestryOnly}, res
}

func describeRef(r dwn.DependencyRef) string {
	var b strings.Builder
	b.WriteString(r.Type)
	for _, kv := range [][2]string{{"messageCid", r.MessageCID}, {"protocol", r.Protocol}, {"recordId", r.RecordID}, {"permissionGrantId", r.PermissionGrant}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if r.Terminal {
		b.WriteString(" (terminal)")
	}
	return b.String()
}

func describeRefs(refs []dwn.DependencyRef) string {
	if len(refs) == 0 {
		return "(the target named nothing)"
	}
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = describeRef(r)
	}
	return strings.Join(parts, ", ")
}
