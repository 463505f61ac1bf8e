package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dwnsync/dwnsync/internal/standalone"
)

func runDeadLetters(args []string, stdout io.Writer) error {
	return runCommand(newDeadLettersCommand(stdout), args)
}

// deadLetterActions says what each of standalone.DeadLetterActions does.
var deadLetterActions = map[string]string{
	"list":  "List the link's dead letters: messages it gave up on (CID, direction, age, reason)",
	"retry": "Forget the link's dead letters and reconcile now: each is copied again through the normal path",
	"clear": "Forget the link's dead letters without copying them",
}

// newDeadLettersCommand is `dwnsync deadletters list|retry|clear LINK`; a nil stdout is the
// command's own.
func newDeadLettersCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deadletters list|retry|clear LINK [--addr ADDR | -n NAMESPACE] [--cid CID]... [-o json]",
		Short: "List a link's dead letters, retry them, or forget them",
		Long: `A dead letter is a message a link gave up on (refused by the other server, or failing until
its retries ran out). LINK is NAME or NAMESPACE/NAME of a link of a running 'dwnsync run'
(--addr), or of a cluster (--kubeconfig, --context, -n, --cluster; implied as kubectl-dwnsync).
retry copies them again through the normal path (one refused again is a dead letter again);
clear forgets them. --cid narrows retry and clear to some messages.
In a cluster, list reads the link's status (the newest 20; status.deadLetters counts all), and
retry and clear set the annotation dwnsync.io/dead-letters on the link (this needs the patch
verb on replicationlinks) and wait for the operator's outcome (--timeout).`,
		Example: `  dwnsync deadletters list alice
  dwnsync deadletters retry default/alice --addr 127.0.0.1:8089
  dwnsync deadletters clear alice --cid bafyreib...
  dwnsync deadletters retry -n team-a alice --kubeconfig ~/.kube/config`,
		Args: cobra.ArbitraryArgs,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("want an action, one of %v: dwnsync deadletters list|retry|clear LINK (see 'dwnsync deadletters --help')", standalone.DeadLetterActions)
		},
	}
	for _, action := range standalone.DeadLetterActions {
		cmd.AddCommand(newDeadLetterActionCommand(action, stdout))
	}
	return cmd
}

func newDeadLetterActionCommand(action string, stdout io.Writer) *cobra.Command {
	var addr, output string
	var cids []string
	var cf clusterFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     action + " LINK",
		Short:   deadLetterActions[action],
		Long:    deadLetterActions[action] + ".\nLINK is NAME or NAMESPACE/NAME of a link of the 'dwnsync run' at --addr, or of the cluster (--kubeconfig, --context, -n, --cluster).",
		Example: fmt.Sprintf("  dwnsync deadletters %s alice\n  dwnsync deadletters %s default/alice --addr 127.0.0.1:8089 -o json", action, action),
		Args: func(_ *cobra.Command, links []string) error {
			if len(links) != 1 {
				return fmt.Errorf("deadletters %s takes one LINK (NAME or NAMESPACE/NAME), got %d: %v", action, len(links), links)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, links []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o %q: want json (or nothing, for the table)", output)
			}
			if action == "list" && len(cids) > 0 {
				return fmt.Errorf("--cid narrows retry and clear; list shows every dead letter of the link")
			}
			out := stdout
			if out == nil {
				out = cmd.OutOrStdout()
			}
			cluster, err := inCluster(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
			defer cancel()
			if cluster {
				c, ns, err := cf.client()
				if err != nil {
					return err
				}
				d := &clusterDeadLetters{c: c, link: linkName(links[0], ns), out: out, json: output == "json", timeout: timeout}
				return d.run(ctx, action, cids)
			}
			reply, err := standalone.DeadLetterAction(ctx, addr, action, links[0], cids)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(out, reply)
			}
			return standalone.PrintDeadLetters(out, reply, time.Now())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&addr, "addr", standalone.DefaultListen, "address of a running 'dwnsync run' (its --listen)")
	fs.StringVarP(&output, "output", "o", "", "output: json (default: a table)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json"}, cobra.ShellCompDirectiveNoFileComp))
	// list has it too, to refuse it with a reason rather than as an unknown flag.
	fs.StringArrayVar(&cids, "cid", nil, "only the dead letter of this message CID (repeatable; retry and clear)")
	cf.register(fs, "the link")
	_ = cmd.MarkFlagFilename("kubeconfig")
	fs.DurationVar(&timeout, "timeout", time.Minute, "in a cluster, how long retry and clear wait for the operator to handle the request")
	aliases(fs, map[string]string{"n": "namespace", "o": "output"})
	return cmd
}
