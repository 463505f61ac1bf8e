// Command dwnsync replicates DWN tenants between DWN servers: `dwnsync operator` in a
// Kubernetes cluster, `dwnsync run -f links.yaml` without one. The logic lives in internal/;
// this package is the command line (cobra commands and their flags).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dwnsync/dwnsync/internal/version"
)

func main() {
	os.Exit(execute(os.Args, os.Stdout, os.Stderr))
}

// execute runs the command line argv (argv[0] is the program) and returns the exit code.
func execute(argv []string, stdout, stderr io.Writer) int {
	prog, args := invokedAs(argv)
	root := newRootCommand(prog)
	prog = root.Name()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, exit.err)
		}
		return exit.code
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
}

// exitError ends the program with code, printing err when there is one.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

// exitUsage is the exit code of a command line that names no known command.
const exitUsage = 2

func newRootCommand(prog string) *cobra.Command {
	name := "dwnsync"
	if isKubectlPlugin(prog) {
		// Completion scripts and help name the program as it is called.
		name = prog
	}
	root := &cobra.Command{
		Use:   name,
		Short: "Keep DWN tenants converged between DWN servers",
		Long: `dwnsync keeps DWN tenants converged between DWN servers.

In a Kubernetes cluster, 'dwnsync operator' reconciles ReplicationLinks (the Helm chart runs
it). Without a cluster, 'dwnsync run -f links.yaml' runs the same links from YAML. 'status',
'deadletters' and 'ledger check' inspect either. Installed or symlinked on the PATH as
kubectl-dwnsync, it is a kubectl plugin: 'kubectl dwnsync -A' lists the links of a cluster.`,
		Example: `  dwnsync run -f links.yaml
  dwnsync status -o wide
  kubectl dwnsync -A
  source <(dwnsync completion bash)`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// No subcommand: the usage on stderr and exit 2, as before cobra.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return exitError{exitUsage, fmt.Errorf("%s\nRun '%s --help' for the commands", msg, cmd.CommandPath())}
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			return exitError{code: exitUsage}
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newOperatorCommand(), newRunCommand(), newStatusCommand(),
		newDeadLettersCommand(nil), newLedgerCommand(nil, nil), newVersionCommand())
	return root
}

func versionLine() string {
	return fmt.Sprintf("dwnsync %s commit %s", version.Version, version.Commit())
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version and the git commit of this binary",
		Long:    "Print the version (set at build time, 'dev' otherwise) and the git commit the binary was built from.",
		Example: "  dwnsync version\n  dwnsync --version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}

// flagError names the command's help after a bad flag, and the two dashes a long flag takes
// (Go's flag package, used before cobra, accepted one).
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if i := strings.Index(msg, " in -"); strings.HasPrefix(msg, "unknown shorthand flag") && i >= 0 {
		long := strings.SplitN(msg[i+len(" in -"):], "=", 2)[0]
		if cmd.Flags().Lookup(long) != nil {
			return fmt.Errorf("%s: long flags take two dashes: --%s\nRun '%s --help' for the flags", msg, long, cmd.CommandPath())
		}
	}
	return fmt.Errorf("%s\nRun '%s --help' for the flags", msg, cmd.CommandPath())
}

// noArgs refuses arguments, naming the first one.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: %s takes flags only (see '%s --help')", args[0], cmd.Name(), cmd.CommandPath())
	}
	return nil
}

// runCommand runs one command of the tree with args, as `dwnsync CMD args...` would.
func runCommand(cmd *cobra.Command, args []string) error {
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetFlagErrorFunc(flagError)
	return cmd.Execute()
}
