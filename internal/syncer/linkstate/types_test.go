package linkstate

import (
	"encoding/json"
	"testing"
)

// Dir is written as its name (the ledger's dead letters hold it) and read back; anything else
// is refused, not read as a pull.
func TestDirText(t *testing.T) {
	for _, d := range Dirs {
		b, err := json.Marshal(d)
		if err != nil || string(b) != `"`+d.String()+`"` {
			t.Fatalf("marshal %v: %s %v", d, b, err)
		}
		var back Dir = 1 - d
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Fatalf("unmarshal %s: %v %v", b, back, err)
		}
	}
	var d Dir
	if err := json.Unmarshal([]byte(`"both"`), &d); err == nil {
		t.Fatalf("a direction of both was read as %v", d)
	}
}

// A feed reads from one side and writes into the other.
func TestDirSides(t *testing.T) {
	for _, d := range Dirs {
		if d.Source().Inbound() == d {
			t.Errorf("%v reads from %v, which %v also writes into", d, d.Source(), d)
		}
	}
	if Pull.Source() != Remote || Local.Inbound() != Pull {
		t.Errorf("pull reads %v; local is written by %v", Pull.Source(), Local.Inbound())
	}
}

func TestDirectionRuns(t *testing.T) {
	for _, c := range []struct {
		dir        Direction
		pull, push bool
	}{{Both, true, true}, {"", true, true}, {PullOnly, true, false}, {PushOnly, false, true}} {
		if c.dir.Runs(Pull) != c.pull || c.dir.Runs(Push) != c.push {
			t.Errorf("%q runs pull %v push %v, want %v %v", c.dir, c.dir.Runs(Pull), c.dir.Runs(Push), c.pull, c.push)
		}
	}
}
