package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// runLedger is `dwnsync ledger ARGS...`, returning its exit code (ledger.Check*).
func runLedger(args []string, stdout, stderr io.Writer) int {
	cmd := newLedgerCommand(stdout, stderr)
	cmd.SetErr(stderr)
	err := runCommand(cmd, args)
	if exit, ok := err.(exitError); ok {
		if exit.err != nil {
			fmt.Fprintln(stderr, "dwnsync ledger:", exit.err)
		}
		return exit.code
	}
	if err != nil {
		fmt.Fprintln(stderr, "dwnsync ledger:", err)
		return ledger.CheckCannotRun
	}
	return ledger.CheckOK
}

// newLedgerCommand is `dwnsync ledger check`; its exit code tells a sound ledger (0) from a
// damaged one (1) and from one it cannot check (2, also for a bad command line). Nil writers
// are the command's own (stdout, stderr).
func newLedgerCommand(stdout, stderr io.Writer) *cobra.Command {
	cannotRun := func(err error) error { return exitError{ledger.CheckCannotRun, err} }
	cmd := &cobra.Command{
		Use:   "ledger check --state-dir DIR",
		Short: "Check the ledger file (the checkpoints) of a state directory",
		Long: `The ledger holds the checkpoints of the links, in --state-dir of 'dwnsync run' or of the
operator. 'ledger check' verifies it: exit 0 sound, 1 damaged (with what to do), 2 cannot check.`,
		Example: "  dwnsync ledger check --state-dir ./dwnsync-state",
		Args:    cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			what := "no subcommand"
			if len(args) > 0 {
				what = fmt.Sprintf("unknown subcommand %q", args[0])
			}
			return cannotRun(fmt.Errorf("%s; usage: dwnsync ledger check --state-dir DIR", what))
		},
	}
	var stateDir string
	check := &cobra.Command{
		Use:   "check --state-dir DIR",
		Short: "Verify the ledger file: exit 0 sound, 1 damaged, 2 cannot check",
		Long: `Verify the ledger file under --state-dir without changing it (the checks the operator and
'dwnsync run' make at start, and every record decoded). Exit 0: sound, with a summary. Exit 1:
damaged, with the problem and how to recover. Exit 2: it cannot check (no file, a lock held by a
running dwnsync, an I/O error, a bad command line).`,
		Example: "  dwnsync ledger check --state-dir /var/lib/dwnsync",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, errOut := stdout, stderr
			if out == nil {
				out, errOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
			}
			if code := ledger.CheckCommand(stateDir, out, errOut); code != ledger.CheckOK {
				return exitError{code: code}
			}
			return nil
		},
	}
	check.Flags().StringVar(&stateDir, "state-dir", "", "directory of the ledger (the --state-dir of dwnsync run or the operator)")
	_ = check.MarkFlagDirname("state-dir")
	check.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return cannotRun(flagError(c, err)) })
	cmd.AddCommand(check)
	return cmd
}
