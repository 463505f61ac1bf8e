package linkstate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs every file in testdata/ (see driver_test.go for the language). After a
// run of all of them it checks that they exercise every transition of the machine
// (checkTransitions). Regenerate the expected output with
//
//	go test ./internal/syncer/linkstate -run TestScenarios -rewrite
//
// and review the diff.
func TestScenarios(t *testing.T) {
	seen := map[transition]int{}
	ran := 0
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		ran++
		d := newDriver(t, liveConfig())
		d.log = func(from, word, to string) { seen[transition{from, word, to}]++ }
		datadriven.RunTest(t, path, d.runScenario)
	})
	files, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if ran != len(files) {
		t.Logf("%d of %d scenario files ran (a -run filter): the transition check needs them all", ran, len(files))
		return
	}
	if !t.Failed() {
		checkTransitions(t, seen)
	}
}

type transition struct{ from, input, to string }

// edges is the machine's state diagram: every (phase, input, phase) step that changes the
// phase, read off the code (the phase is only written in start, resume, suspend/enterPaused,
// goLive, reconcileCompleted for poll links, enterRepairing, repairSucceeded and
// enterDegradedPoll). Not listed, because the supervisor never produces them:
//   - Start to a machine that is not new (it feeds Start once);
//   - repairing -repair-done-> live for a live link with no direction enabled (no feed ever
//     opens, so nothing can fail and start a repair).
var edges = []transition{
	{"initializing", "start", "paused"}, // configured suspended
	{"initializing", "feed-opened", "live"},
	{"initializing", "feed-failed", "repairing"},
	{"initializing", "eose", "repairing"},           // a cursor from another domain
	{"initializing", "delivered", "repairing"},      // another domain, or overflow
	{"initializing", "delivery-done", "repairing"},  // an apply failed
	{"initializing", "reconcile-completed", "live"}, // a poll link's first good poll
	{"initializing", "suspend", "paused"},
	{"live", "feed-failed", "repairing"},
	{"live", "eose", "repairing"},
	{"live", "delivered", "repairing"},
	{"live", "delivery-done", "repairing"},
	{"live", "suspend", "paused"},
	{"repairing", "feed-opened", "live"},          // every feed reopened
	{"repairing", "repair-done", "degraded_poll"}, // the last attempt's work failed
	{"repairing", "feed-failed", "degraded_poll"}, // the last attempt's reopen failed,
	{"repairing", "eose", "degraded_poll"},        // or its reopened feed misbehaved
	{"repairing", "delivered", "degraded_poll"},
	{"repairing", "delivery-done", "degraded_poll"},
	{"repairing", "suspend", "paused"},
	{"degraded_poll", "feed-opened", "live"}, // a tick's repair succeeded
	{"degraded_poll", "suspend", "paused"},
	{"paused", "resume", "initializing"},
}

// notInPhase lists the (phase, input) pairs no scenario needs to show, with the reason.
var notInPhase = map[[2]string]string{
	{"live", "start"}:          "Start is fed once, to a new machine",
	{"repairing", "start"}:     "Start is fed once, to a new machine",
	{"degraded_poll", "start"}: "Start is fed once, to a new machine",
	{"paused", "start"}:        "Start is fed once, to a new machine",
}

// checkTransitions is how "every transition appears in a scenario" is enforced. The driver logs
// (phase before, input word, phase after) for every step whose effects a scenario prints
// (setup blocks do not count). Then:
//  1. the input types of the package (every type with an input() method, found by parsing the
//     package's sources) must each have a command word in the driver's table, and the phases
//     checked are the Phase constants of the sources: a new input or phase fails here first;
//  2. every listed edge must have been seen, and every phase change seen must be listed, so
//     the list and the code cannot drift apart unnoticed;
//  3. every input must have been fed in every phase (unless notInPhase says why not): the
//     steps that leave the phase alone (ignored, stale, self-loops) are transitions too.
func checkTransitions(t *testing.T, seen map[transition]int) {
	inputTypes, phases := declared(t)
	words := map[string]string{} // Go type name → command word
	for w := range inputs {
		words[inputTypeName(w)] = w
	}
	for _, typ := range inputTypes {
		if _, ok := words[typ]; !ok {
			t.Errorf("input %s has no command word in the scenario driver's table", typ)
		}
	}
	listed := map[transition]bool{}
	for _, e := range edges {
		listed[e] = true
		if seen[e] == 0 {
			t.Errorf("no scenario shows %s -%s-> %s", e.from, e.input, e.to)
		}
	}
	for tr := range seen {
		if tr.from != tr.to && tr.to != "stopped" && !listed[tr] { // stopped is no phase
			t.Errorf("scenarios show %s -%s-> %s, which edges does not list: add it (and say why)", tr.from, tr.input, tr.to)
		}
	}
	fed := map[[2]string]bool{}
	for tr := range seen {
		fed[[2]string{tr.from, tr.input}] = true
	}
	var missing []string
	for _, p := range phases {
		for _, typ := range inputTypes {
			word, ok := words[typ]
			if !ok {
				continue // reported above
			}
			if pair := [2]string{p, word}; !fed[pair] && notInPhase[pair] == "" {
				missing = append(missing, p+" "+word)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("no scenario feeds these inputs in these phases: %s", strings.Join(missing, ", "))
	}
	t.Logf("%d distinct (phase, input, phase) steps seen; %d phase-changing edges listed", len(seen), len(edges))
}

// declared parses the package's non-test sources for the input types and Phase constants.
func declared(t *testing.T) (inputTypes, phases []string) {
	fset := token.NewFileSet()
	paths, _ := filepath.Glob("*.go")
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil && d.Name.Name == "input" {
					if id, ok := d.Recv.List[0].Type.(*ast.Ident); ok {
						inputTypes = append(inputTypes, id.Name)
					}
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok || d.Tok != token.CONST || vs.Type == nil {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Phase" {
						continue
					}
					for _, v := range vs.Values {
						if lit, ok := v.(*ast.BasicLit); ok {
							s, _ := strconv.Unquote(lit.Value)
							phases = append(phases, s)
						}
					}
				}
			}
		}
	}
	sort.Strings(inputTypes)
	if len(inputTypes) == 0 || len(phases) == 0 {
		t.Fatalf("found %d input types and %d phases in the sources", len(inputTypes), len(phases))
	}
	return inputTypes, phases
}
