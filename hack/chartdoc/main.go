// Command chartdoc prints charts/dwnsync/README.md: the text of README.tmpl with a table of
// every value of charts/dwnsync/values.yaml (its dotted key, default and the comment above it).
// `make manifests` runs it, so the README never drifts from values.yaml.
package main

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"strings"
)

//go:embed README.tmpl
var readme string

const valuesFile = "charts/dwnsync/values.yaml"

// value is one documented key of values.yaml.
type value struct {
	key, def, doc string
}

func main() {
	f, err := os.Open(valuesFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartdoc:", err, "(run it from the repository root)")
		os.Exit(1)
	}
	defer f.Close()
	values, err := parse(bufio.NewScanner(f))
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartdoc:", valuesFile+":", err)
		os.Exit(1)
	}
	var b strings.Builder
	b.WriteString("| value | default | meaning |\n|---|---|---|\n")
	for _, v := range values {
		def := "" // a map heading has no default of its own
		if v.def != "" {
			def = "`" + strings.ReplaceAll(v.def, "|", `\|`) + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.key, def, strings.ReplaceAll(v.doc, "|", `\|`))
	}
	fmt.Print(strings.Replace(readme, "{{VALUES}}", strings.TrimRight(b.String(), "\n"), 1))
}

// parse reads a values file written in this chart's style: two-space indentation, a comment
// block right above the key it documents, scalars, inline lists and maps, and nested maps.
// A key whose value is a nested block is a heading for its children, not a row.
func parse(sc *bufio.Scanner) ([]value, error) {
	var out []value
	var path []string // the keys of the enclosing maps, by depth
	var doc []string  // comment lines since the last key
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			doc = nil
			continue
		case strings.HasPrefix(trimmed, "#"):
			doc = append(doc, strings.TrimSpace(strings.TrimLeft(strings.TrimPrefix(trimmed, "#"), " -")))
			continue
		case strings.HasPrefix(trimmed, "- "):
			continue // an item of a block list: documented with its key
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if indent%2 != 0 {
			return nil, fmt.Errorf("line %d: indentation of %d spaces (want multiples of 2)", n, indent)
		}
		key, rest, ok := strings.Cut(trimmed, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no key: %q", n, trimmed)
		}
		depth := indent / 2
		if depth > len(path) {
			return nil, fmt.Errorf("line %d: indented deeper than its parent", n)
		}
		path = append(path[:depth], key)
		rest = strings.TrimSpace(rest)
		if rest != "" {
			out = append(out, value{key: strings.Join(path, "."), def: rest, doc: strings.Join(doc, " ")})
		} else if len(doc) > 0 {
			// A map heading's comment documents the map: a row with no default of its own.
			out = append(out, value{key: strings.Join(path, "."), def: "", doc: strings.Join(doc, " ")})
		}
		doc = nil
	}
	return out, sc.Err()
}
