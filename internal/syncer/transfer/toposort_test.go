package transfer

import (
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

func node(name string, info msg.MessageInfo) Item {
	return Item{Entry: dwn.Entry{CID: name}, Info: info}
}

var (
	cfgP   = msg.MessageInfo{Interface: "Protocols", Method: "Configure", ConfiguredProtocol: "P"}
	cfgQ   = msg.MessageInfo{Interface: "Protocols", Method: "Configure", ConfiguredProtocol: "Q"}
	wR1    = msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "P", RecordID: "R1", IsInitialWrite: true}
	uR1    = msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "P", RecordID: "R1"}
	dR1    = msg.MessageInfo{Interface: "Records", Method: "Delete", RecordID: "R1"}
	wC1    = msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "P", RecordID: "C1", ParentID: "R1", IsInitialWrite: true}
	wGrant = msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "https://tbd.website/dwn/permissions", ProtocolPath: "grant", RecordID: "G", IsInitialWrite: true}
	useG   = msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "Q", RecordID: "R9", IsInitialWrite: true, PermissionGrantID: "G"}
	other  = msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "Z", RecordID: "RZ", IsInitialWrite: true}
	// a cycle: each initial write names the other as parent
	cyc1 = msg.MessageInfo{Interface: "Records", Method: "Write", RecordID: "X1", ParentID: "X2", IsInitialWrite: true}
	cyc2 = msg.MessageInfo{Interface: "Records", Method: "Write", RecordID: "X2", ParentID: "X1", IsInitialWrite: true}
)

// The rules of docs/protocol-notes.md#dependency-order, one row each, plus stability and cycles.
func TestTopoSort(t *testing.T) {
	cases := []struct {
		name string
		in   []Item
		want string
	}{
		{"empty", nil, ""},
		{"single", []Item{node("a", uR1)}, "a"},
		{"independent items keep input order", []Item{node("z", other), node("p", cfgQ), node("r", wR1)}, "z p r"},
		{"configure before its records", []Item{node("w", wR1), node("u", uR1), node("cfg", cfgP)}, "cfg w u"},
		{"only the last configure of a protocol is indexed", []Item{node("w", wR1), node("cfg1", cfgP), node("cfg2", cfgP)}, "cfg1 cfg2 w"},
		{"initial write before updates", []Item{node("u", uR1), node("w", wR1)}, "w u"},
		{"initial write before deletes", []Item{node("d", dR1), node("w", wR1)}, "w d"},
		{"parent before child", []Item{node("c", wC1), node("w", wR1)}, "w c"},
		{"grant before its use", []Item{node("use", useG), node("g", wGrant)}, "g use"},
		{"whole chain", []Item{node("d", dR1), node("c", wC1), node("u", uR1), node("w", wR1), node("cfg", cfgP)}, "cfg w d c u"},
		{"cycle appended in input order", []Item{node("x1", cyc1), node("z", other), node("x2", cyc2)}, "z x1 x2"},
		{"dependency outside the batch: no edge", []Item{node("u", uR1), node("c", wC1)}, "u c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, it := range TopoSort(c.in) {
				got = append(got, it.Entry.CID)
			}
			if s := strings.Join(got, " "); s != c.want {
				t.Fatalf("got %q, want %q", s, c.want)
			}
		})
	}
}

// Levels decide what may be applied concurrently: nothing shares a level with a dependency.
func TestTopoLevels(t *testing.T) {
	in := []msg.MessageInfo{dR1, wC1, uR1, wR1, cfgP, other, cyc1, cyc2}
	order, level := topoOrder(in)
	want := map[int]int{4: 0, 5: 0, 3: 1, 0: 2, 1: 2, 2: 2, 6: 3, 7: 4}
	for i, l := range want {
		if level[i] != l {
			t.Errorf("item %d: level %d, want %d (order %v, levels %v)", i, level[i], l, order, level)
		}
	}
}
