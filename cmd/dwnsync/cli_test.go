package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// `dwnsync completion bash` is cobra's script for this command tree, registered for the
// program's name (dwnsync, or kubectl-dwnsync as the plugin); the script asks the binary
// (`__complete`), which offers our subcommands.
func TestCompletionBash(t *testing.T) {
	for _, name := range []string{"dwnsync", "kubectl-dwnsync"} {
		var out, errOut bytes.Buffer
		if code := execute([]string{"/usr/local/bin/" + name, "completion", "bash"}, &out, &errOut); code != 0 {
			t.Fatalf("%s completion bash: exit %d\n%s", name, code, &errOut)
		}
		script := out.String()
		for _, want := range []string{"__start_" + name + "()", "complete -o default -F __start_" + name + " " + name, "__complete"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s completion bash has no %q:\n%.600s", name, want, script)
			}
		}
		out.Reset()
		if code := execute([]string{name, "__complete", ""}, &out, &errOut); code != 0 {
			t.Fatalf("%s __complete: exit %d\n%s", name, code, &errOut)
		}
		var offered []string
		for _, line := range strings.Split(out.String(), "\n") {
			offered = append(offered, strings.SplitN(line, "\t", 2)[0])
		}
		for _, sub := range []string{"completion", "deadletters", "ledger", "operator", "run", "status", "version"} {
			if !slices.Contains(offered, sub) {
				t.Errorf("%s: completion does not offer %q: %q", name, sub, offered)
			}
		}
	}
}

// Linked as kubectl_complete-dwnsync, the binary answers kubectl's completion requests for
// `kubectl dwnsync ...`: flags alone complete status's flags.
func TestKubectlCompletionHelper(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"/usr/local/bin/kubectl_complete-dwnsync", "--all"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s", code, &errOut)
	}
	if !strings.HasPrefix(out.String(), "--all-namespaces\t") {
		t.Fatalf("kubectl_complete-dwnsync --all offered:\n%s", &out)
	}
}

// As the kubectl plugin, flags alone mean `status`, when run and when completing.
func TestKubectlPluginArgs(t *testing.T) {
	for _, tc := range []struct {
		prog       string
		args, want []string
	}{
		{"kubectl-dwnsync", nil, []string{"status"}},
		{"/usr/bin/kubectl-dwnsync", []string{"-A", "-o", "wide"}, []string{"status", "-A", "-o", "wide"}},
		{"kubectl-dwnsync", []string{"deadletters", "list", "a"}, []string{"deadletters", "list", "a"}},
		{"kubectl-dwnsync", []string{"--help"}, []string{"--help"}},
		{"kubectl-dwnsync", []string{"__complete", "-n", ""}, []string{"__complete", "status", "-n", ""}},
		{"kubectl-dwnsync", []string{"__complete", ""}, []string{"__complete", ""}},
		{"dwnsync", []string{"-A"}, []string{"-A"}},
	} {
		if got := pluginArgs(tc.prog, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: got %q, want %q", tc.prog, tc.args, got, tc.want)
		}
	}
}

// Every command explains itself: a Short line, a Long text and examples.
func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand("dwnsync"))
}

// The exit codes and messages of the command line: version with the commit, unknown
// commands and flags named with the fix, help exits 0.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"version"}, 0, "dwnsync dev commit ", ""},
		{[]string{"--version"}, 0, "dwnsync dev commit ", ""},
		{nil, 2, "", "Available Commands:"},
		{[]string{"statsu"}, 2, "", `unknown command "statsu" for "dwnsync"; did you mean status?`},
		{[]string{"operator", "--shards"}, 1, "", "unknown flag: --shards\nRun 'dwnsync operator --help' for the flags"},
		{[]string{"operator", "-state-dir", "x"}, 1, "", "long flags take two dashes: --state-dir"},
		{[]string{"operator", "--max-concurrent-reconciles=many"}, 1, "", `invalid argument "many" for "--max-concurrent-reconciles"`},
		{[]string{"status", "extra"}, 1, "", `unexpected argument "extra": status takes flags only`},
		{[]string{"ledger", "check", "--bad"}, 2, "", "unknown flag: --bad"},
		{[]string{"operator", "--help"}, 0, "--shard-ring string", ""},
		{[]string{"help", "run"}, 0, "-f, --filename", ""},
	} {
		var out, errOut bytes.Buffer
		code := execute(append([]string{"dwnsync"}, tc.args...), &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
			t.Errorf("dwnsync %q: exit %d, want %d with stdout %q and stderr %q\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, tc.out, tc.err, &out, &errOut)
		}
	}
}
