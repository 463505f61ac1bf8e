package linkstate

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// TestTransitions walks every edge of the status machine (spec §6.6, as fixed in §11):
// each row sets a link up, feeds one input and checks the phase, connectivity and the
// effects that must (and must not) come out.
func TestTransitions(t *testing.T) {
	gap := &dwn.GapError{Reason: "token_too_old", LatestAvailable: cur("s", "e", 50)}
	type row struct {
		name       string
		cfg        Config
		setup      func(h *harness)
		input      func(h *harness) Input
		phase      Phase
		conn       Connectivity
		want       []string // effect type names that must appear
		wantEvents []string
		not        []string
	}
	rows := []row{
		{
			name:  "start opens both feeds and stays initializing",
			setup: func(h *harness) {},
			input: func(h *harness) Input {
				return Start{StoredPhase: Live, Checkpoints: [2]*dwn.Cursor{cur("s", "e", 1), cur("l", "e", 1)}}
			},
			phase: Initializing, conn: Unknown, want: []string{"OpenFeed", "Persist"},
		},
		{
			name:  "initializing to live when every feed is open",
			setup: func(h *harness) { h.step(Start{}); h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)}) },
			input: func(h *harness) Input { return FeedOpened{Dir: Push, Epoch: h.m.Epoch(Push)} },
			phase: Live, conn: Online, want: []string{"Persist", "SetTimer"}, wantEvents: []string{EvStatusChange, EvConnectivityChange},
		},
		{
			name:  "one open feed is not live yet",
			setup: func(h *harness) { h.step(Start{}) },
			input: func(h *harness) Input { return FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)} },
			phase: Initializing, conn: Unknown, not: []string{"Publish"},
		},
		{
			name:  "pull-only link goes live on the pull feed alone",
			cfg:   Config{Mode: ModeLive, Pull: true},
			setup: func(h *harness) { h.step(Start{}) },
			input: func(h *harness) Input { return FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)} },
			phase: Live, conn: Online, wantEvents: []string{EvStatusChange},
		},
		{
			name:  "410 at start: gap detected, repairing",
			setup: func(h *harness) { h.step(Start{}) },
			input: func(h *harness) Input { return FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Gap: gap, Err: "gone"} },
			phase: Repairing, conn: Offline, want: []string{"CloseFeed", "StartRepair"},
			wantEvents: []string{EvGapDetected, EvStatusChange, EvRepairStarted},
		},
		{
			name:  "non-410 failure at start: repairing, not dropped (E9)",
			setup: func(h *harness) { h.step(Start{}) },
			input: func(h *harness) Input {
				return FeedFailed{Dir: Push, Epoch: h.m.Epoch(Push), Err: "connection refused"}
			},
			phase: Repairing, conn: Offline, want: []string{"StartRepair"},
		},
		{
			name:  "live feed end: reopen that feed from its checkpoint, stay live",
			setup: func(h *harness) { h.startLive() },
			input: func(h *harness) Input { return FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket closed"} },
			phase: Live, conn: Online, want: []string{"CloseFeed", "OpenFeed"}, not: []string{"StartRepair", "Publish"},
		},
		{
			name: "live feed ends again before its EOSE: repairing",
			setup: func(h *harness) {
				h.startLive()
				h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket closed"})
				h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
			},
			input: func(h *harness) Input { return FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket closed"} },
			phase: Repairing, conn: Offline, want: []string{"CloseFeed", "StartRepair"}, wantEvents: []string{EvStatusChange, EvConnectivityChange},
		},
		{
			name: "an EOSE restores the reopen budget",
			setup: func(h *harness) {
				h.startLive()
				h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket closed"})
				h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
				h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
			},
			input: func(h *harness) Input { return FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "websocket closed"} },
			phase: Live, conn: Online, want: []string{"OpenFeed"}, not: []string{"StartRepair"},
		},
		{
			name:  "live domain mismatch: repairing",
			setup: func(h *harness) { h.startLive() },
			input: func(h *harness) Input {
				return Delivered{Dir: Pull, Epoch: h.m.Epoch(Pull), Entry: entry("x", cur("s", "other-epoch", 9))}
			},
			phase: Repairing, conn: Offline, want: []string{"StartRepair"}, not: []string{"ApplyPull"},
		},
		{
			name: "live overflow (more than 100 pending): repairing",
			setup: func(h *harness) {
				h.startLive()
				for i := 1; i <= 100; i++ {
					h.deliver(Pull, "c", i)
				}
			},
			input: func(h *harness) Input {
				return Delivered{Dir: Pull, Epoch: h.m.Epoch(Pull), Entry: entry("c101", cur("s", "e", 101))}
			},
			phase: Repairing, conn: Offline, want: []string{"StartRepair"},
		},
		{
			name: "live apply error: repairing",
			setup: func(h *harness) {
				h.startLive()
				h.deliver(Pull, "c1", 1)
			},
			input: func(h *harness) Input {
				return DeliveryDone{Epoch: h.m.Epoch(Pull), Ordinal: 0, CID: "c1", Outcome: OutcomeRepair, Reason: "401"}
			},
			phase: Repairing, conn: Offline, not: []string{"CommitCheckpoint"},
		},
		{
			name: "repair work done: reset checkpoints, dirty, reopen",
			setup: func(h *harness) {
				h.startLive()
				h.failPull()
			},
			input: func(h *harness) Input { return RepairDone{Seq: h.m.repair.seq} },
			phase: Repairing, conn: Offline, want: []string{"ResetCheckpoint", "Persist", "OpenFeed"},
		},
		{
			name: "repairing to live when the feeds reopen",
			setup: func(h *harness) {
				h.startLive()
				h.failPull()
				h.step(RepairDone{Seq: h.m.repair.seq})
				h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
			},
			input: func(h *harness) Input { return FeedOpened{Dir: Push, Epoch: h.m.Epoch(Push)} },
			phase: Live, conn: Online, want: []string{"SetTimer"},
			wantEvents: []string{EvRepairCompleted, EvConnectivityChange, EvStatusChange},
		},
		{
			name: "repair failure schedules a retry after 1 s",
			setup: func(h *harness) {
				h.startLive()
				h.failPull()
			},
			input: func(h *harness) Input { return RepairDone{Seq: h.m.repair.seq, Err: "unreachable"} },
			phase: Repairing, conn: Offline, want: []string{"SetTimer"}, wantEvents: []string{EvRepairFailed},
		},
		{
			name: "third repair failure: degraded_poll",
			setup: func(h *harness) {
				h.startLive()
				h.failPull()
				h.step(RepairDone{Seq: h.m.repair.seq, Err: "1"})
				h.fire(TimerRepairRetry)
				h.step(RepairDone{Seq: h.m.repair.seq, Err: "2"})
				h.fire(TimerRepairRetry)
			},
			input: func(h *harness) Input { return RepairDone{Seq: h.m.repair.seq, Err: "3"} },
			phase: DegradedPoll, conn: Offline, want: []string{"SetTimer"},
			wantEvents: []string{EvRepairFailed, EvStatusChange, EvDegradedPoll},
		},
		{
			name: "degraded tick starts a repair and stays degraded",
			setup: func(h *harness) {
				enterDegraded(h)
			},
			input: func(h *harness) Input {
				return TimerFired{Timer: TimerDegradedPoll, At: h.m.TimerAt(TimerDegradedPoll)}
			},
			phase: DegradedPoll, conn: Offline, want: []string{"SetTimer", "StartRepair"},
			not: []string{},
		},
		{
			name: "degraded to live when a tick's repair succeeds",
			setup: func(h *harness) {
				enterDegraded(h)
				h.fire(TimerDegradedPoll)
				h.step(RepairDone{Seq: h.m.repair.seq})
				h.step(FeedOpened{Dir: Pull, Epoch: h.m.Epoch(Pull)})
			},
			input: func(h *harness) Input { return FeedOpened{Dir: Push, Epoch: h.m.Epoch(Push)} },
			phase: Live, conn: Online, want: []string{"CancelTimer"}, wantEvents: []string{EvRepairCompleted, EvStatusChange},
		},
		{
			name: "degraded tick failure stays degraded",
			setup: func(h *harness) {
				enterDegraded(h)
				h.fire(TimerDegradedPoll)
			},
			input: func(h *harness) Input { return RepairDone{Seq: h.m.repair.seq, Err: "still down"} },
			phase: DegradedPoll, conn: Offline, wantEvents: []string{EvRepairFailed}, not: []string{"StartRepair"},
		},
		{
			name:  "live to paused on suspend",
			setup: func(h *harness) { h.startLive() },
			input: func(h *harness) Input { return Suspend{} },
			phase: Paused, conn: Online, want: []string{"CloseFeed", "CancelTimer", "Persist"}, wantEvents: []string{EvStatusChange},
		},
		{
			name:  "repairing to paused cancels the repair",
			setup: func(h *harness) { h.startLive(); h.failPull() },
			input: func(h *harness) Input { return Suspend{} },
			phase: Paused, conn: Offline, want: []string{"CancelWork"}, wantEvents: []string{EvStatusChange},
		},
		{
			name:  "paused to initializing on resume",
			setup: func(h *harness) { h.startLive(); h.step(Suspend{}) },
			input: func(h *harness) Input { return Resume{} },
			phase: Initializing, conn: Online, want: []string{"OpenFeed", "Persist"},
		},
		{
			name:  "start suspended: paused, no feeds",
			cfg:   Config{Mode: ModeLive, Pull: true, Push: true, Suspend: true},
			setup: func(h *harness) {},
			input: func(h *harness) Input { return Start{StoredPhase: Live} },
			phase: Paused, conn: Unknown, wantEvents: []string{EvStatusChange}, not: []string{"OpenFeed"},
		},
		{
			name:  "stop closes everything and persists nothing",
			setup: func(h *harness) { h.startLive() },
			input: func(h *harness) Input { return Stop{} },
			phase: Live, conn: Online, want: []string{"CloseFeed", "CancelTimer"}, not: []string{"Persist", "Publish"},
		},
		{
			name:  "poll link: poll tick starts a reconcile",
			cfg:   Config{Mode: ModePoll, Pull: true, Push: true},
			setup: func(h *harness) { h.step(Start{}) },
			input: func(h *harness) Input { return PollTick{} },
			phase: Initializing, conn: Unknown, want: []string{"StartReconcile"}, not: []string{"OpenFeed"},
		},
		{
			name:  "poll link: first good poll goes live",
			cfg:   Config{Mode: ModePoll, Pull: true, Push: true},
			setup: func(h *harness) { h.step(Start{}); h.step(PollTick{}) },
			input: func(h *harness) Input { return ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true} },
			phase: Live, conn: Online, want: []string{"PollResult"}, wantEvents: []string{EvStatusChange, EvReconcileCompleted},
		},
		{
			name:  "poll link: failed poll goes offline",
			cfg:   Config{Mode: ModePoll, Pull: true, Push: true},
			setup: func(h *harness) { h.step(Start{}); h.step(PollTick{}) },
			input: func(h *harness) Input { return ReconcileCompleted{Seq: h.m.reconcile.seq, Err: "refused"} },
			phase: Initializing, conn: Offline, want: []string{"PollResult"}, not: []string{"StartRepair", "SetTimer"},
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			cfg := r.cfg
			if cfg.Mode == "" {
				cfg = both()
			}
			h := newHarness(t, cfg)
			r.setup(h)
			effects := h.step(r.input(h))
			if h.m.Phase != r.phase {
				t.Fatalf("phase = %s, want %s; effects: %s", h.m.Phase, r.phase, describe(effects))
			}
			if h.m.Connectivity != r.conn {
				t.Fatalf("connectivity = %s, want %s", h.m.Connectivity, r.conn)
			}
			names := map[string]bool{}
			for _, e := range effects {
				names[typeName(e)] = true
			}
			for _, w := range r.want {
				if !names[w] {
					t.Errorf("missing effect %s in %s", w, describe(effects))
				}
			}
			for _, n := range r.not {
				if names[n] {
					t.Errorf("unexpected effect %s in %s", n, describe(effects))
				}
			}
			for _, ev := range r.wantEvents {
				if len(published(effects, ev)) == 0 {
					t.Errorf("missing event %s in %s", ev, describe(effects))
				}
			}
		})
	}
}

func typeName(e Effect) string {
	s := describe([]Effect{e})
	for i, c := range s {
		if c == '{' {
			return s[:i]
		}
	}
	return s
}

// enterDegraded drives a live link through three failed repairs.
func enterDegraded(h *harness) {
	h.t.Helper()
	h.startLive()
	h.failPull()
	for i := 0; i < 3; i++ {
		if i > 0 {
			h.fire(TimerRepairRetry)
		}
		h.step(RepairDone{Seq: h.m.repair.seq, Err: "down"})
	}
	h.mustPhase(DegradedPoll)
}

func TestRepairBackoffSequence(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	h.failPull()
	start := h.now
	var gaps []time.Duration
	for i := 0; i < 2; i++ {
		h.step(RepairDone{Seq: h.m.repair.seq, Err: "down"})
		at := h.m.TimerAt(TimerRepairRetry)
		gaps = append(gaps, at.Sub(h.now))
		h.fire(TimerRepairRetry)
	}
	if gaps[0] != time.Second || gaps[1] != 3*time.Second {
		t.Fatalf("repair retry delays = %v, want [1s 3s]", gaps)
	}
	h.step(RepairDone{Seq: h.m.repair.seq, Err: "down"})
	h.mustPhase(DegradedPoll)
	if h.now.Sub(start) != 4*time.Second {
		t.Fatalf("degraded after %v, want 4s", h.now.Sub(start))
	}
	if h.m.RepairAttempts != 3 {
		t.Fatalf("attempts after entering degraded_poll = %d, want 3 (kept for status)", h.m.RepairAttempts)
	}
	h.fire(TimerDegradedPoll)
	h.step(RepairDone{Seq: h.m.repair.seq, Err: "down"})
	if h.m.RepairAttempts != 4 {
		t.Fatalf("attempts after a failed degraded-poll attempt = %d, want 4", h.m.RepairAttempts)
	}
}

func TestDegradedIntervalDrawnOnEntry(t *testing.T) {
	for _, c := range []struct {
		rand float64
		want time.Duration
	}{{0, 15 * time.Second}, {0.5, 22500 * time.Millisecond}, {0.999, 15*time.Second + 14985*time.Millisecond}} {
		h := newHarness(t, both())
		h.rand = c.rand
		enterDegraded(h)
		if got := h.m.DegradedInterval(); got != c.want {
			t.Errorf("rand %v: interval %v, want %v", c.rand, got, c.want)
		}
		if at := h.m.TimerAt(TimerDegradedPoll); at.Sub(h.now) != c.want {
			t.Errorf("rand %v: timer in %v, want %v", c.rand, at.Sub(h.now), c.want)
		}
	}
}

func TestReconcileDelays(t *testing.T) {
	cases := []struct {
		name  string
		drive func(h *harness)
		want  time.Duration
	}{
		{"start-up with a dirty link", func(h *harness) {
			h.step(Start{NeedsReconcile: true, Checkpoints: [2]*dwn.Cursor{cur("s", "e", 1), cur("l", "e", 1)}})
			h.openAll()
		}, time.Second},
		{"EOSE with a dirty link", func(h *harness) {
			h.startLive()
			h.m.NeedsReconcile = true
			h.step(EOSE{Dir: Pull, Epoch: h.m.Epoch(Pull)})
		}, 500 * time.Millisecond},
		{"after repair", func(h *harness) {
			h.startLive()
			h.failPull()
			h.step(RepairDone{Seq: h.m.repair.seq})
			h.openAll()
		}, 500 * time.Millisecond},
		{"push give-up", func(h *harness) {
			h.startLive()
			h.deliver(Push, "p1", 1)
			for i := 0; i < 4; i++ {
				if i > 0 {
					h.fire(TimerPushFlush)
				}
				h.step(PushFlushed{Epoch: h.m.Epoch(Push), Err: "503"})
			}
		}, 1500 * time.Millisecond},
		{"retry after a failed pass", func(h *harness) {
			h.startLive()
			h.step(TimerFired{Timer: TimerVerify, At: h.m.TimerAt(TimerVerify)})
			h.now = h.m.TimerAt(TimerReconcile)
			h.fire(TimerReconcile)
			h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Err: "boom"})
		}, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, both())
			c.drive(h)
			at := h.m.TimerAt(TimerReconcile)
			if at.IsZero() {
				t.Fatalf("no reconcile armed; last effects %s", describe(h.last))
			}
			if got := at.Sub(h.now); got != c.want {
				t.Fatalf("reconcile in %v, want %v", got, c.want)
			}
		})
	}
}

func TestPeriodicVerifyEveryFiveMinutes(t *testing.T) {
	h := newHarness(t, both())
	h.startLive()
	if got := h.m.TimerAt(TimerVerify).Sub(h.now); got != 5*time.Minute {
		t.Fatalf("verify in %v, want 5m", got)
	}
	h.fire(TimerVerify)
	if h.m.TimerAt(TimerReconcile) != h.now {
		t.Fatalf("verify did not request an immediate reconcile")
	}
	if got := h.m.TimerAt(TimerVerify).Sub(h.now); got != 5*time.Minute {
		t.Fatalf("verify re-armed in %v, want 5m", got)
	}
	eff := h.fire(TimerReconcile)
	if len(find[StartReconcile](eff)) != 1 {
		t.Fatalf("no reconcile started: %s", describe(eff))
	}
	eff = h.step(ReconcileCompleted{Seq: h.m.reconcile.seq, Converged: true})
	if len(published(eff, EvReconcileCompleted)) != 1 {
		t.Fatalf("no reconcile:completed")
	}
}
