package main

import (
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// isKubectlPlugin reports whether the binary runs as kubectl's plugin `kubectl dwnsync`
// (installed or symlinked as kubectl-dwnsync on the PATH).
func isKubectlPlugin(argv0 string) bool {
	return strings.HasPrefix(filepath.Base(argv0), "kubectl-dwnsync")
}

// completionHelper is the name kubectl (1.26+) runs to complete a plugin's arguments:
// `kubectl_complete-dwnsync ARGS...` on the PATH (a symlink to this binary) is
// `kubectl-dwnsync __complete ARGS...`.
const completionHelper = "kubectl_complete-dwnsync"

// invokedAs returns the program name and arguments to run: the plugin's completion helper
// becomes the plugin's __complete.
func invokedAs(argv []string) (prog string, args []string) {
	prog, args = filepath.Base(argv[0]), argv[1:]
	if prog == completionHelper {
		prog, args = "kubectl-dwnsync", append([]string{cobra.ShellCompRequestCmd}, args...)
	}
	return prog, pluginArgs(prog, args)
}

// pluginArgs makes `kubectl dwnsync [-A|-n NS|-o wide]` mean `kubectl dwnsync status ...`,
// also when kubectl asks for completions (through kubectl_complete-dwnsync, which calls
// `kubectl-dwnsync __complete ARGS...`).
func pluginArgs(prog string, args []string) []string {
	if !isKubectlPlugin(prog) {
		return args
	}
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		if len(args) > 1 && strings.HasPrefix(args[1], "-") {
			return append([]string{args[0], "status"}, args[1:]...)
		}
		return args
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" && args[0] != "--version" {
		return append([]string{"status"}, args...)
	}
	return args
}
