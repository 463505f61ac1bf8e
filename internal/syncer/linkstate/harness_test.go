package linkstate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// testTiming is the defaults: the tables are written against the spec's numbers
// (TestDefaultTimingMatchesSpec).
func testTiming() Timing { return DefaultTiming() }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type harness struct {
	t    *testing.T
	m    *Machine
	now  time.Time
	rand float64
	last []Effect
	all  []Effect
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Mode == "" {
		cfg.Mode = ModeLive
	}
	return &harness{t: t, m: New(cfg, testTiming()), now: t0}
}

func both() Config { return Config{Mode: ModeLive, Pull: true, Push: true} }

func (h *harness) step(in Input) []Effect {
	h.t.Helper()
	h.last = h.m.Step(Env{Now: h.now, Rand: h.rand}, in)
	h.all = append(h.all, h.last...)
	return h.last
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// fire moves the clock to timer tm's deadline and fires it.
func (h *harness) fire(tm Timer) []Effect {
	h.t.Helper()
	at := h.m.TimerAt(tm)
	if at.IsZero() {
		h.t.Fatalf("timer %v is not armed", tm)
	}
	if at.After(h.now) {
		h.now = at
	}
	return h.step(TimerFired{Timer: tm, At: at})
}

// startLive starts a link with checkpoints at position 0 and opens both feeds.
func (h *harness) startLive() {
	h.t.Helper()
	h.step(Start{StoredPhase: Live, Checkpoints: [2]*dwn.Cursor{cur("s", "e", 0), cur("l", "e", 0)}})
	h.openAll()
	h.mustPhase(Live)
}

func (h *harness) openAll() {
	for _, d := range Dirs {
		if h.m.cfg.enabled(d) {
			h.step(FeedOpened{Dir: d, Epoch: h.m.Epoch(d)})
		}
	}
}

func (h *harness) mustPhase(p Phase) {
	h.t.Helper()
	if h.m.Phase != p {
		h.t.Fatalf("phase = %s, want %s (last effects: %s)", h.m.Phase, p, describe(h.last))
	}
}

func cur(stream, epoch string, pos int) *dwn.Cursor {
	return &dwn.Cursor{StreamID: stream, Epoch: epoch, Position: fmt.Sprint(pos), MessageCID: fmt.Sprintf("cid%d", pos)}
}

func entry(cid string, c *dwn.Cursor) dwn.Entry { return dwn.Entry{CID: cid, Cursor: c} }

// deliver sends one pull delivery at position pos of stream "s".
func (h *harness) deliver(d Dir, cid string, pos int) []Effect {
	stream := "s"
	if d == Push {
		stream = "l"
	}
	return h.step(Delivered{Dir: d, Epoch: h.m.Epoch(d), Entry: entry(cid, cur(stream, "e", pos))})
}

func find[T Effect](effects []Effect) []T {
	var out []T
	for _, e := range effects {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func has[T Effect](effects []Effect) bool { return len(find[T](effects)) > 0 }

func published(effects []Effect, typ string) []Publish {
	var out []Publish
	for _, p := range find[Publish](effects) {
		if p.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

func describe(effects []Effect) string {
	var parts []string
	for _, e := range effects {
		parts = append(parts, strings.TrimPrefix(reflect.TypeOf(e).String(), "linkstate.")+fmt.Sprintf("%+v", e))
	}
	return strings.Join(parts, " ")
}

func lastCommit(effects []Effect, d Dir) *dwn.Cursor {
	var c *dwn.Cursor
	for _, cc := range find[CommitCheckpoint](effects) {
		if cc.Dir == d {
			v := cc.Cursor
			c = &v
		}
	}
	return c
}

// failPull ends the pull feed of a live link until it repairs: the first end of an open feed
// only reopens it from its checkpoint; a second end before its EOSE repairs.
func (h *harness) failPull() {
	h.t.Helper()
	h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "x"})
	if h.m.Phase == Live {
		h.step(FeedFailed{Dir: Pull, Epoch: h.m.Epoch(Pull), Err: "x"})
	}
}
