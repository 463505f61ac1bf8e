package dialect_test

// The fault rows of the contract suite (issue #4): each dwntest fault, and what a dwn.Tenant
// shows the engine when it happens. The rows and where each one is tested:
//
// Fault                                   The client observes                                Test
// --------------------------------------  -------------------------------------------------  ----------------------------------------
// 503 + Retry-After ≤ 5 s                 the call waits it out on Options.Clock, then works  retry-after-waited
// 429 + Retry-After > 5 s; -50429 on a    a Transient *Error with RetryAfter, sent once      retry-after-surfaced
//   streamed Apply
// 5xx, quota, refused connections         Transient (no HTTP status when refused); works     transient
//                                         again once the node accepts
// latency                                 the answer waits for the node's clock; past the    latency
//                                         caller's deadline it is a Transient error
// epoch rotation, compaction              *GapError epoch_mismatch / token_too_old with      gap/<mode>/<fault>/<call>
//                                         latestAvailable, from FeedPage and Subscribe
// stalled subscription                    no events and no end while stalled, then the       stalled
//                                         missed event
// garbage frames                          EventEnd, Transient, errors.Is ErrWSMalformed; the garbage
//                                         socket survives for a resubscribe
// corrupted message / data                bytes whose recomputed MessageCID / DataCID differ  corrupted
//                                         from the CID they were served under
// dropped WebSockets                      EventEnd, Transient, errors.Is ErrWSDisconnected;  dropped
//                                         a resubscribe from the checkpoint replays the rest
//
// Rows run on enbox and enbox-smt wherever the fault applies there (smt has no flow control and
// no durable feed; its FeedPage is a replaying subscription, so the gap rows cover it too).

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

var faultModes = []dwntest.Mode{dwntest.ModeEnbox, dwntest.ModeEnboxSMT}

// faultEnv is one seeded dwntest node and a client tenant on it.
type faultEnv struct {
	n       *dwntest.Node
	id      *dwntest.Identity
	written []dwntest.Written // seedNode's messages: configure, 3 records (one 40,000 B), update, delete
	tn      dwn.Tenant
}

func newFaultEnv(t *testing.T, node dwntest.Options, client dialect.Options) *faultEnv {
	t.Helper()
	n := dwntest.Start(t, node)
	id := dwntest.MustIdentity(t)
	env := &faultEnv{n: n, id: id, written: seedNode(t, n, id)}
	c, err := dialect.Open(t.Context(), n.URL(), client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	env.tn = c.Tenant(id.DID, id.Signer)
	return env
}

// replayed subscribes from the start of the tenant's feed and reads the replay up to its EOSE,
// returning the open subscription (closed at the end of the test) and the EOSE checkpoint.
func (e *faultEnv) replayed(t *testing.T, ctx context.Context) (dwn.Subscription, *dwn.Cursor) {
	t.Helper()
	start := e.n.Token(e.id.DID, 0)
	sub, err := e.tn.Subscribe(ctx, dwn.Scope{}, &start)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	_, checkpoint := untilEOSE(t, ctx, sub)
	return sub, checkpoint
}

// note stores one more note on the node, as the node's own clients would write it.
func (e *faultEnv) note(t *testing.T, data string) dwntest.Written {
	t.Helper()
	w, err := e.id.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.n.Write(e.id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
		t.Fatalf("store %s: %+v", w, r)
	}
	return w
}

func faultCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nextEvent(t *testing.T, ctx context.Context, sub dwn.Subscription) dwn.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			t.Fatal("events closed without an EventEnd")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the deadline")
	}
	return dwn.Event{}
}

func asError(t *testing.T, err error) *dwn.Error {
	t.Helper()
	var e *dwn.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v: want a *dwn.Error", err)
	}
	return e
}

func TestContractFaults(t *testing.T) {
	t.Run("retry-after-waited", func(t *testing.T) {
		ctx := faultCtx(t)
		clk := waittest.NewClock(time.Now())
		env := newFaultEnv(t, dwntest.Options{}, dialect.Options{Clock: clk})
		before := env.n.Count("dwn.processMessage")
		env.n.FailNext(1, http.StatusServiceUnavailable, 2*time.Second)
		done := make(chan error, 1)
		go func() {
			_, err := env.tn.ListCIDs(ctx, dwn.Scope{})
			done <- err
		}()
		// The call's own watchdog timers are on clk too: wait for the 2 s Retry-After wait itself.
		if err := clk.FiresAfter(t, 2*time.Second, "the client's Retry-After wait", done); err != nil {
			t.Fatal(err)
		}
		if got := env.n.Count("dwn.processMessage") - before; got != 2 {
			t.Fatalf("%d requests, want the refused one and its retry", got)
		}
	})

	t.Run("retry-after-surfaced", func(t *testing.T) {
		ctx := faultCtx(t)
		env := newFaultEnv(t, dwntest.Options{}, dialect.Options{})
		before := env.n.Count("dwn.processMessage")
		env.n.FailNext(1, http.StatusTooManyRequests, time.Minute)
		_, err := env.tn.FeedPage(ctx, dwn.Scope{}, nil, 10, true)
		if e := asError(t, err); !dwn.IsTransient(err) || dwn.RetryAfter(err) != time.Minute || e.HTTPStatus != 429 {
			t.Fatalf("429 with Retry-After 60: %v", err)
		}
		if got := env.n.Count("dwn.processMessage") - before; got != 1 {
			t.Fatalf("%d requests: a wait beyond a call's patience is surfaced, not slept", got)
		}
		// A streamed apply is never replayed; the JSON-RPC rate limit's wait reaches the caller.
		w, _ := env.id.Write(dwntest.WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte("rate limited")})
		applies := env.n.Count("dwn.applyReplicatedMessage")
		env.n.FailNextRPC(1, -50429, "", 3*time.Second)
		_, err = env.tn.Apply(ctx, w.Message, bytes.NewReader(w.Data))
		if e := asError(t, err); !dwn.IsTransient(err) || dwn.RetryAfter(err) != 3*time.Second || e.RPCCode != -50429 {
			t.Fatalf("-50429 on apply: %v", err)
		}
		if got := env.n.Count("dwn.applyReplicatedMessage") - applies; got != 1 {
			t.Fatalf("streamed apply sent %d times", got)
		}
	})

	t.Run("transient", func(t *testing.T) {
		ctx := faultCtx(t)
		env := newFaultEnv(t, dwntest.Options{}, dialect.Options{Retries: -1})
		for _, status := range []int{500, 502, 503} {
			env.n.FailNext(1, status, 0)
			_, err := env.tn.ListCIDs(ctx, dwn.Scope{})
			if e := asError(t, err); !dwn.IsTransient(err) || e.HTTPStatus != status {
				t.Fatalf("HTTP %d: %v", status, err)
			}
		}
		env.n.FailNextRPC(1, -32600, "TenantMessageQuotaExceeded", 0)
		if _, err := env.tn.ListCIDs(ctx, dwn.Scope{}); !dwn.IsTransient(err) {
			t.Fatalf("quota-blocked: %v, want transient (long backoff)", err)
		}
		env.n.SetRefusing(true)
		_, err := env.tn.ListCIDs(ctx, dwn.Scope{})
		if e := asError(t, err); !dwn.IsTransient(err) || e.HTTPStatus != 0 {
			t.Fatalf("refused connection: %v", err)
		}
		if _, err := env.tn.Subscribe(ctx, dwn.Scope{}, nil); !dwn.IsTransient(err) {
			t.Fatalf("subscribe while refused: %v", err)
		}
		env.n.SetRefusing(false)
		if got, err := env.tn.ListCIDs(ctx, dwn.Scope{}); err != nil || !sameSet(got, env.n.CIDs(env.id.DID)) {
			t.Fatalf("after the node accepts again: %v %v", got, err)
		}
	})

	t.Run("latency", func(t *testing.T) {
		ctx := faultCtx(t)
		nodeClock := waittest.NewClock(time.Now())
		env := newFaultEnv(t, dwntest.Options{Clock: nodeClock}, dialect.Options{Retries: -1})
		env.n.SetLatency(5 * time.Second)
		done := make(chan error, 1)
		go func() {
			_, err := env.tn.ListCIDs(ctx, dwn.Scope{})
			done <- err
		}()
		nodeClock.AwaitTimer(t, 5*time.Second, "the node's latency holding the request")
		select {
		case err := <-done:
			t.Fatalf("answered before the latency passed: %v", err)
		default:
		}
		nodeClock.Step(5 * time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := env.tn.ListCIDs(short, dwn.Scope{}); !dwn.IsTransient(err) {
			t.Fatalf("past the caller's deadline: %v, want transient", err)
		}
	})

	t.Run("gap", func(t *testing.T) {
		faults := []struct {
			name   string
			inject func(*dwntest.Node)
			reason string
		}{{"rotated-epoch", (*dwntest.Node).RotateEpoch, "epoch_mismatch"}, {"compacted", (*dwntest.Node).CompactFeed, "token_too_old"}}
		calls := []struct {
			name string
			call func(ctx context.Context, tn dwn.Tenant, from *dwn.Cursor) error
		}{
			{"FeedPage", func(ctx context.Context, tn dwn.Tenant, from *dwn.Cursor) error {
				_, err := tn.FeedPage(ctx, dwn.Scope{}, from, 10, true)
				return err
			}},
			{"Subscribe", func(ctx context.Context, tn dwn.Tenant, from *dwn.Cursor) error {
				sub, err := tn.Subscribe(ctx, dwn.Scope{}, from)
				if err != nil {
					return err
				}
				defer sub.Close()
				for ev := range sub.Events() { // a server may also open and then end it
					if ev.Kind == dwn.EventEnd {
						return ev.Err
					}
				}
				return errors.New("subscription opened and closed without a gap")
			}},
		}
		for _, mode := range faultModes {
			for _, f := range faults {
				for _, c := range calls {
					t.Run(string(mode)+"/"+f.name+"/"+c.name, func(t *testing.T) {
						ctx := faultCtx(t)
						env := newFaultEnv(t, dwntest.Options{Mode: mode}, dialect.Options{})
						first, err := env.tn.FeedPage(ctx, dwn.Scope{}, nil, 1, true)
						if err != nil || first.Cursor == nil {
							t.Fatalf("first page: %v %v", first.Cursor, err)
						}
						f.inject(env.n)
						err = c.call(ctx, env.tn, first.Cursor)
						g, ok := dwn.AsGap(err)
						if !ok || g.Reason != f.reason || g.LatestAvailable == nil || g.LatestAvailable.Epoch != env.n.Epoch() {
							t.Fatalf("%v (gap %+v), want a *GapError %s with latestAvailable in epoch %s", err, g, f.reason, env.n.Epoch())
						}
						if g.LatestAvailable.Position != "6" { // seedNode allocated positions 1..6
							t.Fatalf("latestAvailable %+v, want the head 6", g.LatestAvailable)
						}
					})
				}
			}
		}
	})

	for _, mode := range faultModes {
		t.Run("stalled/"+string(mode), func(t *testing.T) {
			ctx := faultCtx(t)
			env := newFaultEnv(t, dwntest.Options{Mode: mode}, dialect.Options{})
			sub, err := env.tn.Subscribe(ctx, dwn.Scope{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			waitEOSE(t, ctx, sub)
			env.n.StallSubscriptions(true)
			w := env.note(t, "during the stall")
			// The node still answers requests and holds the write; the subscription is silent.
			if got, err := env.tn.ListCIDs(ctx, dwn.Scope{}); err != nil || !sameSet(got, env.n.CIDs(env.id.DID)) {
				t.Fatalf("requests during the stall: %v", err)
			}
			if k := len(sub.Events()); k != 0 {
				t.Fatalf("%d events while stalled", k)
			}
			env.n.StallSubscriptions(false)
			waitCID(t, ctx, sub, w.CID)
		})

		t.Run("garbage/"+string(mode), func(t *testing.T) {
			ctx := faultCtx(t)
			env := newFaultEnv(t, dwntest.Options{Mode: mode}, dialect.Options{})
			sub, checkpoint := env.replayed(t, ctx)
			env.n.SendGarbageFrames()
			ev := nextEvent(t, ctx, sub)
			if ev.Kind != dwn.EventEnd || !errors.Is(ev.Err, wire.ErrMalformedFrame) || !dwn.IsTransient(ev.Err) {
				t.Fatalf("after garbage frames: %+v, want a transient malformed-frame end", ev)
			}
			// The socket itself survived: a resubscribe from the checkpoint gets what came after.
			w := env.note(t, "after the garbage")
			again, err := env.tn.Subscribe(ctx, dwn.Scope{}, checkpoint)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if got, _ := untilEOSE(t, ctx, again); len(got) != 1 || got[0] != w.CID {
				t.Fatalf("resubscribed: %v, want %s", got, w.CID)
			}
		})

		t.Run("corrupted/"+string(mode), func(t *testing.T) {
			ctx := faultCtx(t)
			env := newFaultEnv(t, dwntest.Options{Mode: mode}, dialect.Options{})
			large := env.written[2] // 40,000 bytes
			env.n.CorruptNextRead()
			res, err := env.tn.Read(ctx, large.CID)
			if err != nil {
				t.Fatal(err)
			}
			if res.Data != nil {
				res.Data.Close()
			}
			if got, _ := dwnmsg.MessageCID(res.Message); res.CID != large.CID || got == large.CID {
				t.Fatalf("corrupted read served as %s recomputes to %s: the client must see the mismatch", res.CID, got)
			}
			env.n.CorruptNextMessages(1)
			start := env.n.Token(env.id.DID, 0)
			page, err := env.tn.FeedPage(ctx, dwn.Scope{}, &start, 10, false)
			if err != nil || len(page.Entries) == 0 {
				t.Fatalf("page: %d entries, %v", len(page.Entries), err)
			}
			for i, e := range page.Entries {
				got, _ := dwnmsg.MessageCID(e.Message)
				if (got != e.CID) != (i == 0) {
					t.Fatalf("entry %d served as %s recomputes to %s (only the first is corrupt)", i, e.CID, got)
				}
			}
			env.n.CorruptNextData(1)
			msg, data := fetch(t, ctx, env.tn, large.CID)
			info, _ := dwnmsg.Inspect(msg)
			dataCID, _, _ := dwnmsg.DataCID(bytes.NewReader(data))
			if int64(len(data)) != info.DataSize || dataCID == info.DataCID {
				t.Fatalf("corrupted data: %d bytes, dataCid %s, descriptor %s", len(data), dataCID, info.DataCID)
			}
		})

		t.Run("dropped/"+string(mode), func(t *testing.T) {
			ctx := faultCtx(t)
			env := newFaultEnv(t, dwntest.Options{Mode: mode}, dialect.Options{})
			sub, checkpoint := env.replayed(t, ctx)
			env.n.DropWebSockets()
			ev := nextEvent(t, ctx, sub)
			if ev.Kind != dwn.EventEnd || !errors.Is(ev.Err, wire.ErrDisconnected) || !dwn.IsTransient(ev.Err) {
				t.Fatalf("after the drop: %+v, want a transient disconnect end", ev)
			}
			missed := []string{env.note(t, "missed 1").CID, env.note(t, "missed 2").CID}
			again, err := env.tn.Subscribe(ctx, dwn.Scope{}, checkpoint) // redials after the mux's backoff
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if got, _ := untilEOSE(t, ctx, again); !sameSet(got, missed) || len(got) != 2 {
				t.Fatalf("resubscribed from the checkpoint: %v, want %v", got, missed)
			}
		})
	}
}
