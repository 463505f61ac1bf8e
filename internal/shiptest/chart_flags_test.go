package shiptest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/internal/faulttest"
)

// TestChartArgsAreOperatorFlags keeps the chart and the operator from drifting: for every
// values variant, the operator container's args are `operator` and flags the real binary's
// `operator` command parses (cobra parses every flag, and refuses an unknown one or a bad value,
// before it looks at --help).
func TestChartArgsAreOperatorFlags(t *testing.T) {
	bin := faulttest.BuildDwnsync(t)
	// The check can fail: a flag the operator does not define is refused, by name.
	if out, err := run(t, nil, bin, "operator", "--sharding", "--no-such-flag=1", "--help"); err == nil || !strings.Contains(out, "unknown flag: --no-such-flag") {
		t.Fatalf("dwnsync operator accepted an unknown flag (err %v):\n%s", err, out)
	}
	for _, variant := range valuesVariants {
		args := operatorArgs(t, variant)
		if len(args) < 2 || args[0] != "operator" {
			t.Fatalf("variant %v: the operator container's args are %q, want `operator` and flags", variant, args)
		}
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "--") {
				t.Errorf("variant %v: arg %q is not a --flag (the operator takes no arguments)", variant, a)
			}
		}
		if out, err := run(t, nil, bin, append(args, "--help")...); err != nil {
			t.Errorf("variant %v: the chart passes flags `dwnsync operator` refuses: %v\n%s\nargs: %q", variant, err, out, args)
		}
	}
}

// operatorArgs renders the chart with variant and returns the args of the StatefulSet's
// operator container.
func operatorArgs(t *testing.T, variant []string) []string {
	t.Helper()
	out, err := helmTemplate(t, variant...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", variant, err, out)
	}
	for _, doc := range strings.Split(out, "\n---") {
		var sts appsv1.StatefulSet
		if yaml.Unmarshal([]byte(doc), &sts) != nil || sts.Kind != "StatefulSet" {
			continue
		}
		for _, c := range sts.Spec.Template.Spec.Containers {
			if c.Name == "operator" {
				return c.Args
			}
		}
	}
	t.Fatalf("helm template %v renders no StatefulSet with an operator container", variant)
	return nil
}
