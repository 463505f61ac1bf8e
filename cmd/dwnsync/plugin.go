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
