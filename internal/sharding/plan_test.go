package sharding

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func held(name string, renewed time.Time) Shard {
	return Shard{Name: name, Holder: name, RenewTime: renewed}
}

func TestTimingValidate(t *testing.T) {
	if err := DefaultTiming.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		t    Timing
		want string
	}{
		{Timing{LeaseDuration: 10 * time.Second, RenewInterval: time.Second}, "must all be positive"},
		{Timing{LeaseDuration: 10 * time.Second, RenewInterval: time.Second, Margin: 5 * time.Second}, "less than half"},
		{Timing{LeaseDuration: 10 * time.Second, RenewInterval: 8 * time.Second, Margin: 3 * time.Second}, "renewInterval"},
	} {
		if err := tc.t.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error saying %q", tc.t, err, tc.want)
		}
	}
}

// The fencing order: the shard stops its links strictly before the sharder may take them, by
// 2*Margin, whatever the renewal time.
func TestShardStopsBeforeItsLinksCanBeTaken(t *testing.T) {
	tm := DefaultTiming
	renewed := t0
	for now := t0; now.Before(t0.Add(time.Minute)); now = now.Add(100 * time.Millisecond) {
		st := tm.State(held("a", renewed), now)
		if st >= Takeable && !tm.MustStop(renewed, now) {
			t.Fatalf("at +%v the sharder may take the links of a shard that need not have stopped", now.Sub(t0))
		}
		if tm.MustStop(renewed, now) != !now.Before(t0.Add(10*time.Second)) {
			t.Fatalf("at +%v MustStop=%v, want it from +10s", now.Sub(t0), tm.MustStop(renewed, now))
		}
	}
	if gap := tm.TakeableAt(renewed).Sub(tm.StopsBy(renewed)); gap != 2*tm.Margin {
		t.Fatalf("gap between self-stop and takeover = %v, want %v", gap, 2*tm.Margin)
	}
}

func TestShardStates(t *testing.T) {
	tm := DefaultTiming
	for _, tc := range []struct {
		name  string
		shard Shard
		at    time.Duration
		want  ShardState
	}{
		{"renewed", held("a", t0), 14 * time.Second, Live},
		{"expired", held("a", t0), 15 * time.Second, Expired},
		{"expired within the margin", held("a", t0), 19 * time.Second, Expired},
		{"takeable after duration+margin", held("a", t0), 20 * time.Second, Takeable},
		{"declared dead", Shard{Name: "a", Holder: DeadHolder, RenewTime: t0}, 0, Dead},
		{"released by the shard", Shard{Name: "a", RenewTime: t0}, 0, Dead},
		{"missing lease is never live", Shard{Name: "a", Holder: "a", RenewTime: t0, Missing: true}, 0, Expired},
		{"missing lease waited out", Shard{Name: "a", Holder: "a", RenewTime: t0, Missing: true}, 20 * time.Second, Takeable},
	} {
		if got := tm.State(tc.shard, t0.Add(tc.at)); got != tc.want {
			t.Errorf("%s: state %v, want %v", tc.name, got, tc.want)
		}
	}
}

// keyFor finds a key whose rendezvous owner among shards is want.
func keyFor(t *testing.T, want string, shards ...string) string {
	for _, k := range keys(1000) {
		if Owner(k, shards) == want {
			return k
		}
	}
	t.Fatalf("no key owned by %s", want)
	return ""
}

func TestDecide(t *testing.T) {
	tm := DefaultTiming
	now := t0.Add(time.Second)
	a, b := held("a", t0), held("b", t0)
	kA := keyFor(t, "a", "a", "b") // belongs on a while a and b live
	kB := keyFor(t, "b", "a", "b")
	step := func(l Link, v LinkVerb, to string) []LinkAction {
		return []LinkAction{{Link: l, Verb: v, From: l.Owner, To: to}}
	}
	for _, tc := range []struct {
		name   string
		link   Link
		shards []Shard
		at     time.Time
		links  []LinkAction
		shard  []ShardVerb
		wait   int
	}{
		{name: "unassigned: assign", link: Link{ID: "l", Key: kA}, shards: []Shard{a, b}, at: now},
		{name: "in place: nothing", link: Link{ID: "l", Key: kA, Owner: "a"}, shards: []Shard{a, b}, at: now},
		{name: "on the wrong live shard: drain", link: Link{ID: "l", Key: kB, Owner: "a"}, shards: []Shard{a, b}, at: now},
		{name: "draining: wait for the acknowledgement", link: Link{ID: "l", Key: kB, Owner: "a", DrainTo: "b"}, shards: []Shard{a, b}, at: now},
		{name: "draining to the sharder (before hand-on): wait", link: Link{ID: "l", Key: kB, Owner: "a", DrainTo: DrainToSharder}, shards: []Shard{a, b}, at: now},
		{name: "draining to a shard gone: redirect", link: Link{ID: "l", Key: kB, Owner: "a", DrainTo: "c"}, shards: []Shard{a, b}, at: now},
		{name: "draining back home: undrain", link: Link{ID: "l", Key: kA, Owner: "a", DrainTo: "b"}, shards: []Shard{a, b}, at: now},
		{name: "owner expired: wait", link: Link{ID: "l", Key: kA, Owner: "a"}, shards: []Shard{held("a", t0.Add(-16*time.Second)), b}, at: now, wait: 1},
		{name: "owner silent past the margin: declare dead, links wait", link: Link{ID: "l", Key: kA, Owner: "a"}, shards: []Shard{held("a", t0.Add(-20*time.Second)), b}, at: now, wait: 1, shard: []ShardVerb{DeclareDead}},
		{name: "owner dead: assign to a live shard", link: Link{ID: "l", Key: kA, Owner: "a"}, shards: []Shard{{Name: "a", Holder: DeadHolder}, b}, at: now},
		{name: "owner dead and nobody live: unassign", link: Link{ID: "l", Key: kA, Owner: "a"}, shards: []Shard{{Name: "a", Holder: DeadHolder}}, at: now},
		{name: "owner without a lease: wait, then declare dead", link: Link{ID: "l", Key: kA, Owner: "a"}, shards: []Shard{{Name: "a", Holder: "a", RenewTime: now.Add(-20 * time.Second), Missing: true}, b}, at: now, wait: 1, shard: []ShardVerb{DeclareDead}},
		{name: "nobody live: unassigned stays", link: Link{ID: "l", Key: kA}, shards: nil, at: now},
		{name: "dead shard with no links: delete its lease", link: Link{ID: "l", Key: kB, Owner: "b"}, shards: []Shard{{Name: "a", Holder: DeadHolder}, b}, at: now, shard: []ShardVerb{DeleteLease}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tm.Decide([]Link{tc.link}, tc.shards, tc.at)
			var want []LinkAction
			switch tc.name {
			case "unassigned: assign":
				want = step(tc.link, Assign, "a")
			case "on the wrong live shard: drain":
				want = step(tc.link, Drain, "b")
			case "draining to a shard gone: redirect":
				want = step(tc.link, Redirect, "b")
			case "draining back home: undrain":
				want = step(tc.link, Undrain, "a")
			case "owner dead: assign to a live shard":
				want = step(tc.link, Assign, "b")
			case "owner dead and nobody live: unassign":
				want = step(tc.link, Unassign, "")
			}
			if len(p.Links) != len(want) || (len(want) == 1 && p.Links[0] != want[0]) {
				t.Fatalf("link steps %+v, want %+v", p.Links, want)
			}
			var verbs []ShardVerb
			for _, s := range p.Shards {
				verbs = append(verbs, s.Verb)
			}
			if len(verbs) != len(tc.shard) || (len(verbs) == 1 && verbs[0] != tc.shard[0]) {
				t.Fatalf("shard steps %v, want %v", verbs, tc.shard)
			}
			if p.Waiting != tc.wait {
				t.Fatalf("waiting %d, want %d", p.Waiting, tc.wait)
			}
		})
	}
}

// The next check is when the first live shard would expire or the first expired one becomes
// takeable, so a sharder needs no polling between events.
func TestDecideNextCheck(t *testing.T) {
	tm := DefaultTiming
	p := tm.Decide(nil, []Shard{held("a", t0), held("b", t0.Add(-16*time.Second))}, t0)
	if want := t0.Add(4 * time.Second); !p.NextCheck.Equal(want) {
		t.Fatalf("next check %v, want %v (b becomes takeable)", p.NextCheck, want)
	}
	if len(p.Live) != 1 || p.Live[0] != "a" {
		t.Fatalf("live %v, want [a]", p.Live)
	}
}

// A shard joins a ring whose one shard holds every link: with at most 10 drains in flight, its
// share moves in batches of 10, each handed on by the old owner before the next is asked (the
// sharder never assigns a moved link), and every link ends on its rendezvous shard.
func TestLimitDrainsMovesAJoinersShareInBatches(t *testing.T) {
	const max = 10
	shards := []Shard{held("a", t0), held("b", t0)}
	links := make([]Link, 200)
	share := 0
	for i := range links {
		links[i] = Link{ID: fmt.Sprint(i), Key: fmt.Sprintf("key-%d", i), Owner: "a"}
		if Owner(links[i].Key, []string{"a", "b"}) == "b" {
			share++
		}
	}
	passes := 0
	for ; passes < 100; passes++ {
		p := DefaultTiming.Decide(links, shards, t0)
		p.LimitDrains(max)
		if len(p.Links) == 0 {
			break
		}
		byID := map[string]*Link{}
		for i := range links {
			byID[links[i].ID] = &links[i]
		}
		for _, a := range p.Links {
			l := byID[a.Link.ID]
			switch a.Verb {
			case Drain:
				l.DrainTo = a.To
			default:
				t.Fatalf("unexpected %v of %s", a.Verb, a.Link.ID)
			}
		}
		inFlight := 0
		for i := range links {
			if links[i].Draining() {
				inFlight++
				links[i].Owner, links[i].DrainTo = links[i].DrainTo, "" // the old owner hands it on
			}
		}
		if inFlight > max {
			t.Fatalf("pass %d: %d drains in flight, want at most %d", passes, inFlight, max)
		}
	}
	for _, l := range links {
		if want := Owner(l.Key, []string{"a", "b"}); l.Owner != want {
			t.Fatalf("%s ends on %q, want %q", l.ID, l.Owner, want)
		}
	}
	// Each pass drains one batch; the old owner hands it on, so no pass assigns.
	if want := (share + max - 1) / max; passes != want {
		t.Fatalf("%d links moved in %d passes, want %d (batches of %d)", share, passes, want, max)
	}
	t.Logf("%d of %d links moved in %d passes", share, len(links), passes)
}

// Drains already in flight count against the limit; the rest are deferred, not lost.
func TestLimitDrainsCountsDrainsInFlight(t *testing.T) {
	p := Plan{Draining: 3, Links: []LinkAction{{Verb: Drain}, {Verb: Assign}, {Verb: Drain}, {Verb: Drain}}}
	p.LimitDrains(5)
	drains := 0
	for _, a := range p.Links {
		if a.Verb == Drain {
			drains++
		}
	}
	if drains != 2 || p.Deferred != 1 || len(p.Links) != 3 {
		t.Fatalf("kept %d drains of %d steps, deferred %d; want 2 drains (5-3 in flight), the assign, 1 deferred", drains, len(p.Links), p.Deferred)
	}
	q := Plan{Links: []LinkAction{{Verb: Drain}, {Verb: Drain}}}
	q.LimitDrains(0)
	if len(q.Links) != 2 {
		t.Fatal("LimitDrains(0) must not limit")
	}
}
