package linkstate

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// The scenario language (testdata/*). Each directive is one line; its expected output follows
// the "----" line. Driver commands:
//
//	new [mode=live|poll] [dirs=both|pull|push|none] [suspend] [rand=0.5] [max-uncommitted=3]
//	    a machine with DefaultTiming() (MaxUncommitted overridden), the clock at +0s
//	tick 1.5s                        move the clock on
//	state                            the status, each enabled feed, armed timers
//	setup                            the input lines of its block, one step each; prints the
//	                                 state after them instead of their effects
//
// Every other command word is an input (the table `inputs` below); it prints the effects of
// that one Step, one per line, in order. Cursors are written stream/epoch/position, or just
// a position in the direction's own stream (pull "s/e", push "l/e"), or "none".

// ---- the one table from scenario words to Go types (renames land here) ----

// inputs builds each input from its command word. Arguments left out take the values a
// well-behaved supervisor would send: the current feed epoch, the last reconcile or repair
// sequence the machine issued, the epoch and ordinal of the delivery named by cid.
var inputs = map[string]func(d *driver, a args) Input{
	"start": func(d *driver, a args) Input {
		return Start{StoredPhase: Phase(a.str("stored", "")), NeedsReconcile: a.flag("dirty"),
			Checkpoints: [2]*dwn.Cursor{a.cursor(Pull, "cp-pull"), a.cursor(Push, "cp-push")}, NeedsBootstrap: a.flag("needs-bootstrap")}
	},
	"feed-opened": func(d *driver, a args) Input {
		dir := a.dir()
		return FeedOpened{Dir: dir, Epoch: a.u64("epoch", d.m.Epoch(dir))}
	},
	"feed-failed": func(d *driver, a args) Input {
		dir := a.dir()
		in := FeedFailed{Dir: dir, Epoch: a.u64("epoch", d.m.Epoch(dir)), Err: a.str("err", ""), ErrKind: a.str("kind", "")}
		if g := a.str("gap", ""); g != "" {
			in.Gap = &dwn.GapError{Reason: g, LatestAvailable: a.cursor(dir, "latest")}
		}
		return in
	},
	"eose": func(d *driver, a args) Input {
		dir := a.dir()
		return EOSE{Dir: dir, Epoch: a.u64("epoch", d.m.Epoch(dir)), Cursor: a.cursor(dir, "cursor")}
	},
	"delivered": func(d *driver, a args) Input {
		dir := a.dir()
		return Delivered{Dir: dir, Epoch: a.u64("epoch", d.m.Epoch(dir)),
			Entry: dwn.Entry{CID: a.str("cid", ""), Cursor: a.cursor(dir, "cursor")}, OutOfScope: a.flag("out-of-scope")}
	},
	"delivery-done": func(d *driver, a args) Input {
		cid := a.str("cid", "")
		ap := d.applies[cid]
		return DeliveryDone{Epoch: a.u64("epoch", ap.Epoch), Ordinal: a.u64("ord", ap.Ordinal), CID: cid,
			Outcome: a.outcome("outcome"), Reason: a.str("reason", ""), ErrKind: a.str("kind", "")}
	},
	"push-flushed": func(d *driver, a args) Input {
		// ok=(a,b) dead-letter=(c) ...: results in batch order for the CIDs named; a CID named
		// nowhere gets no result. reason and kind apply to every result.
		in := PushFlushed{Epoch: a.u64("epoch", d.flush.Epoch), Err: a.str("err", ""), ErrKind: a.str("kind", "")}
		reason, kind := a.str("reason", ""), a.str("kind", "")
		for _, it := range d.flush.Items {
			for _, word := range []string{"ok", "dead-letter", "transient", "repair"} {
				if a.has(word, it.Entry.CID) {
					in.Results = append(in.Results, PushItemResult{Ordinal: it.Ordinal, CID: it.Entry.CID,
						Outcome: outcomes[word], Reason: reason, ErrKind: kind})
				}
			}
		}
		for word := range outcomes {
			a.list(word) // read even when the batch is empty
		}
		return in
	},
	"reconcile-completed": func(d *driver, a args) Input {
		return ReconcileCompleted{Seq: a.u64("seq", d.recSeq), Converged: a.flag("converged"), Err: a.str("err", ""),
			ErrKind: a.str("kind", ""), Pulled: int(a.u64("pulled", 0)), Pushed: int(a.u64("pushed", 0)),
			Crossed: [2][]string{a.list("crossed-pull"), a.list("crossed-push")}}
	},
	"repair-done": func(d *driver, a args) Input {
		return RepairDone{Seq: a.u64("seq", d.repairSeq), Err: a.str("err", ""), ErrKind: a.str("kind", ""),
			Crossed: [2][]string{a.list("crossed-pull"), a.list("crossed-push")}}
	},
	"crossing": func(d *driver, a args) Input { return Crossing{Dir: a.dir(), CID: a.str("cid", "")} },
	"timer-fired": func(d *driver, a args) Input {
		tm := a.timer()
		at := d.m.TimerAt(tm)
		if a.flag("stale") || at.IsZero() { // a deadline that is not (or no longer) armed
			at = d.now.Add(-time.Millisecond)
		} else if at.After(d.now) {
			d.now = at
		}
		return TimerFired{Timer: tm, At: at}
	},
	"poll-tick": func(*driver, args) Input { return PollTick{} },
	"retry-now": func(*driver, args) Input { return RetryNow{} },
	"suspend":   func(*driver, args) Input { return Suspend{} },
	"resume":    func(*driver, args) Input { return Resume{} },
	"stop":      func(*driver, args) Input { return Stop{} },
}

var outcomes = map[string]Outcome{"ok": OutcomeOK, "dead-letter": OutcomeDeadLetter, "transient": OutcomeTransient, "repair": OutcomeRepair}

// fmtEffect prints one effect on one line: a word, then its arguments (empty ones left out).
func fmtEffect(e Effect) string {
	switch v := e.(type) {
	case OpenFeed:
		return line("open-feed", v.Dir, "epoch", v.Epoch)
	case CloseFeed:
		return line("close-feed", v.Dir)
	case ResetCheckpoint:
		return line("reset-checkpoint", v.Dir, "to", fmtCursor(v.To))
	case CommitCheckpoint:
		return line("commit-checkpoint", v.Dir, "epoch", v.Epoch, "cursor", fmtCursor(&v.Cursor), "drained", v.Drained)
	case ApplyPull:
		return line("apply-pull", "epoch", v.Epoch, "ord", v.Ordinal, "cid", v.Entry.CID, "cursor", fmtCursor(v.Entry.Cursor))
	case FlushPush:
		items := make([]string, len(v.Items))
		for i, it := range v.Items {
			items[i] = fmt.Sprintf("%d:%s@%s", it.Ordinal, it.Entry.CID, fmtCursor(it.Entry.Cursor))
		}
		return line("flush-push", "epoch", v.Epoch, "attempt", v.Attempt, "items", "("+strings.Join(items, ",")+")")
	case Release:
		return line("release", v.Dir, "epoch", v.Epoch, "n", v.N)
	case SetTimer:
		return line("set-timer", v.Timer, "at", rel(v.At))
	case CancelTimer:
		return line("cancel-timer", v.Timer)
	case StartReconcile:
		return line("start-reconcile", "seq", v.Seq, "reason", v.Reason)
	case StartRepair:
		return line("start-repair", "seq", v.Seq, "attempt", v.Attempt)
	case CancelWork:
		return line("cancel-work")
	case Persist:
		return line("persist", "phase", v.Phase, "dirty", v.NeedsReconcile, "attempts", v.RepairAttempts)
	case Publish:
		return line("publish", v.Type, "from", v.From, "to", v.To, "reason", v.Reason, "msg", v.Message)
	case DeadLetter:
		return line("dead-letter", v.Dir, "cid", v.CID, "reason", v.Reason)
	case PollResult:
		return line("poll-result", "ok", v.OK, "err", v.Err)
	case RecordReconcileCompleted:
		return line("record-reconcile-completed", "converged", v.Converged, "pulled", v.Pulled, "pushed", v.Pushed, "err", v.Err)
	}
	panic(fmt.Sprintf("fmtEffect: no format for %T", e))
}

// ---- the driver ----

// t0 is the clock's origin; scenario times print relative to it.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// driver runs one machine on a fake clock. It knows only what the machine's effects and
// public accessors tell it, like the real supervisor.
type driver struct {
	tb      testing.TB
	m       *Machine
	now     time.Time
	rand    float64
	stopped bool
	// What the machine asked for last: the reconcile and repair sequences, the newest
	// ApplyPull per CID, the newest push batch.
	recSeq, repairSeq uint64
	applies           map[string]ApplyPull
	flush             FlushPush
	// log receives one (phase before, input word, phase after) per printed step.
	log func(from, word, to string)
}

func newDriver(tb testing.TB, cfg Config) *driver {
	return &driver{tb: tb, m: New(cfg, DefaultTiming()), now: t0, applies: map[string]ApplyPull{}}
}

// liveConfig is a live link in both directions.
func liveConfig() Config { return Config{Mode: ModeLive, Pull: true, Push: true} }

// step feeds one input and remembers what the effects name for later inputs.
func (d *driver) step(in Input) []Effect {
	eff := d.m.Step(Env{Now: d.now, Rand: d.rand}, in)
	if _, ok := in.(Stop); ok {
		d.stopped = true
	}
	for _, e := range eff {
		switch v := e.(type) {
		case StartReconcile:
			d.recSeq = v.Seq
		case StartRepair:
			d.repairSeq = v.Seq
		case ApplyPull:
			d.applies[v.Entry.CID] = v
		case FlushPush:
			d.flush = v
		}
	}
	return eff
}

// run executes one input command, logging its transition when log is set.
func (d *driver) run(word string, a args) ([]Effect, error) {
	build, ok := inputs[word]
	if !ok {
		return nil, fmt.Errorf("unknown command %q", word)
	}
	from := d.phaseWord()
	in := build(d, a)
	if err := a.unused(); err != nil {
		return nil, fmt.Errorf("%s: %v", word, err)
	}
	eff := d.step(in)
	if d.log != nil {
		d.log(from, word, d.phaseWord())
	}
	return eff, nil
}

// phaseWord is the phase, or "stopped" once Stop was fed (the machine then ignores everything).
func (d *driver) phaseWord() string {
	if d.stopped {
		return "stopped"
	}
	return string(d.m.Snapshot().Phase)
}

func (d *driver) state() string {
	var b strings.Builder
	s := d.m.Snapshot()
	fmt.Fprintln(&b, line("status", "phase", s.Phase, "conn", s.Connectivity, "dirty", s.NeedsReconcile,
		"attempts", s.RepairAttempts, "error", s.LastError, "kind", s.LastErrorKind))
	cfg := d.m.Config()
	for _, dir := range Dirs {
		if cfg.enabled(dir) {
			fmt.Fprintln(&b, line(dir.String()+":", "epoch", d.m.Epoch(dir), "pending", d.m.Pending(dir),
				"checkpoint", fmtCursor(d.m.Checkpoint(dir)), "caught-up", d.m.CaughtUp(dir, d.m.Epoch(dir))))
		}
	}
	var timers []any
	for tm := TimerReconcile; tm <= TimerPushFlush; tm++ {
		if at := d.m.TimerAt(tm); !at.IsZero() {
			timers = append(timers, tm, rel(at))
		}
	}
	fmt.Fprintln(&b, line("timers:", timers...))
	fmt.Fprint(&b, line("reconcile:", "in-flight", d.m.ReconcileInFlight()))
	if s.Phase == DegradedPoll {
		fmt.Fprint(&b, " ", line("degraded-interval", d.m.DegradedInterval()))
	}
	return b.String() + "\n"
}

// runScenario is the datadriven callback: one directive, its output.
func (d *driver) runScenario(t *testing.T, td *datadriven.TestData) string {
	defer func() { // a malformed argument panics in the args readers
		if r := recover(); r != nil {
			t.Fatalf("%s: %v", td.Pos, r)
		}
	}()
	a := newArgs(td.CmdArgs)
	switch td.Cmd {
	case "new":
		cfg := Config{Mode: Mode(a.str("mode", string(ModeLive))), Suspend: a.flag("suspend")}
		switch dirs := a.str("dirs", "both"); dirs {
		case "both", "pull", "push", "none":
			cfg.Pull, cfg.Push = dirs == "both" || dirs == "pull", dirs == "both" || dirs == "push"
		default:
			t.Fatalf("%s: dirs=%s: want both, pull, push or none", td.Pos, dirs)
		}
		log := d.log
		*d = *newDriver(t, cfg)
		d.log = log
		if n := a.u64("max-uncommitted", 0); n > 0 { // small windows make overflows short to show
			tm := DefaultTiming()
			tm.MaxUncommitted = int(n)
			d.m = New(cfg, tm)
		}
		d.rand = a.float("rand", 0)
		return d.checked(t, td, a, "")
	case "tick":
		dur, err := time.ParseDuration(td.CmdArgs[0].Key)
		if err != nil || len(td.CmdArgs) != 1 {
			t.Fatalf("%s: tick takes one duration, e.g. tick 1.5s", td.Pos)
		}
		d.now = d.now.Add(dur)
		return fmt.Sprintf("now %s\n", rel(d.now))
	case "state":
		return d.checked(t, td, a, d.state())
	case "setup":
		log := d.log
		d.log = nil // the steps of a setup print nothing, so they prove no transition
		defer func() { d.log = log }()
		for _, l := range strings.Split(td.Input, "\n") {
			word, cmdArgs, err := datadriven.ParseLine(l)
			if err != nil || word == "" {
				t.Fatalf("%s: setup line %q: %v", td.Pos, l, err)
			}
			if _, err := d.run(word, newArgs(cmdArgs)); err != nil {
				t.Fatalf("%s: setup: %v", td.Pos, err)
			}
		}
		return d.state()
	}
	before := d.now
	eff, err := d.run(td.Cmd, a)
	if err != nil {
		t.Fatalf("%s: %v", td.Pos, err)
	}
	var b strings.Builder
	if !d.now.Equal(before) {
		fmt.Fprintf(&b, "now %s\n", rel(d.now))
	}
	for _, e := range eff {
		b.WriteString(fmtEffect(e) + "\n")
	}
	return b.String()
}

func (d *driver) checked(t *testing.T, td *datadriven.TestData, a args, out string) string {
	if err := a.unused(); err != nil {
		t.Fatalf("%s: %v", td.Pos, err)
	}
	return out
}

// ---- printing ----

// line joins a word and key/value pairs; a leading non-key value (a direction, timer or event
// type) follows the word bare. Empty values are left out; values with spaces are quoted.
func line(word string, kv ...any) string {
	parts := []string{word}
	if len(kv)%2 == 1 {
		parts = append(parts, fmt.Sprint(kv[0]))
		kv = kv[1:]
	}
	for i := 0; i < len(kv); i += 2 {
		v := fmt.Sprint(kv[i+1])
		if v == "" {
			continue
		}
		if strings.ContainsAny(v, " \t") {
			v = strconv.Quote(v)
		}
		parts = append(parts, fmt.Sprintf("%s=%s", kv[i], v))
	}
	return strings.Join(parts, " ")
}

func fmtCursor(c *dwn.Cursor) string {
	if c == nil {
		return "none"
	}
	return c.StreamID + "/" + c.Epoch + "/" + c.Position
}

func rel(at time.Time) string { return "+" + at.Sub(t0).String() }

// ---- arguments ----

// args reads a directive's key=value arguments and reports the ones nobody read (typos).
type args struct {
	vals map[string][]string
	used map[string]bool
}

func newArgs(cmdArgs []datadriven.CmdArg) args {
	a := args{vals: map[string][]string{}, used: map[string]bool{}}
	for _, c := range cmdArgs {
		a.vals[c.Key] = c.Vals
	}
	return a
}

func (a args) get(key string) ([]string, bool) {
	v, ok := a.vals[key]
	a.used[key] = true
	return v, ok
}

func (a args) str(key, def string) string {
	if v, ok := a.get(key); ok && len(v) > 0 {
		return v[0]
	}
	return def
}

func (a args) flag(key string) bool {
	v, ok := a.get(key)
	return ok && (len(v) == 0 || v[0] == "true")
}

func (a args) list(key string) []string {
	v, _ := a.get(key)
	return v
}

func (a args) has(key, val string) bool {
	for _, v := range a.list(key) {
		if v == val {
			return true
		}
	}
	return false
}

func (a args) u64(key string, def uint64) uint64 {
	if s := a.str(key, ""); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("%s=%s: not a number", key, s))
		}
		return n
	}
	return def
}

func (a args) float(key string, def float64) float64 {
	if s := a.str(key, ""); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			panic(fmt.Sprintf("%s=%s: not a number", key, s))
		}
		return f
	}
	return def
}

func (a args) dir() Dir {
	for _, d := range Dirs {
		if a.str("dir", "pull") == d.String() {
			return d
		}
	}
	panic(fmt.Sprintf("dir=%s: want pull or push", a.str("dir", "")))
}

func (a args) timer() Timer {
	name := a.str("timer", "")
	for tm := TimerReconcile; tm <= TimerPushFlush; tm++ {
		if tm.String() == name {
			return tm
		}
	}
	panic(fmt.Sprintf("timer=%s: unknown timer", name))
}

func (a args) outcome(key string) Outcome {
	w := a.str(key, "ok")
	o, ok := outcomes[w]
	if !ok {
		panic(fmt.Sprintf("%s=%s: want ok, dead-letter, transient or repair", key, w))
	}
	return o
}

// cursor reads stream/epoch/position, a bare position in dir's own stream, or "none".
func (a args) cursor(dir Dir, key string) *dwn.Cursor {
	s := a.str(key, "none")
	if s == "none" {
		return nil
	}
	parts := strings.Split(s, "/")
	if len(parts) == 1 {
		stream := map[Dir]string{Pull: "s", Push: "l"}[dir]
		parts = []string{stream, "e", s}
	}
	if len(parts) != 3 {
		panic(fmt.Sprintf("%s=%s: want stream/epoch/position", key, s))
	}
	return &dwn.Cursor{StreamID: parts[0], Epoch: parts[1], Position: parts[2]}
}

func (a args) unused() error {
	var left []string
	for k := range a.vals {
		if !a.used[k] {
			left = append(left, k)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		return fmt.Errorf("unknown arguments %v", left)
	}
	return nil
}

// inputTypeName is the Go name of the input a command word builds (for the coverage test).
func inputTypeName(word string) string {
	in := inputs[word](newDriver(nil, liveConfig()), newArgs([]datadriven.CmdArg{{Key: "timer", Vals: []string{"reconcile"}}}))
	return reflect.TypeOf(in).Name()
}
