package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dwnsync/dwnsync/internal/standalone"
)

const deadLettersUsage = `usage: dwnsync deadletters list|retry|clear LINK [--addr ADDR] [--cid CID]... [-o json]

  list   the link's dead letters: messages it gave up on (CID, direction, age, reason)
  retry  forget them and reconcile now: each is copied again through the normal path;
         one refused again is a dead letter again
  clear  forget them without copying

LINK is NAME or NAMESPACE/NAME of a link of a running 'dwnsync run' (--addr). --cid narrows
retry and clear to some messages. Only 'dwnsync run' serves this; in a cluster, the link's
status counts its dead letters (kubectl get rl -o wide).
`

func runDeadLetters(args []string, stdout io.Writer) error {
	if len(args) == 0 || !slices.Contains(standalone.DeadLetterActions, args[0]) {
		return fmt.Errorf("want an action, one of %v\n\n%s", standalone.DeadLetterActions, deadLettersUsage)
	}
	action := args[0]
	fs := flag.NewFlagSet("deadletters "+action, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), deadLettersUsage); fs.PrintDefaults() }
	addr := fs.String("addr", standalone.DefaultListen, "address of a running 'dwnsync run' (its --listen)")
	output := fs.String("o", "", "output: json (default: a table)")
	var cids stringList
	fs.Var(&cids, "cid", "only the dead letter of this message CID (repeatable; retry and clear)")
	// Flags may come before or after LINK.
	var links []string
	for rest := args[1:]; ; rest = fs.Args()[1:] {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		links = append(links, fs.Arg(0))
	}
	if len(links) != 1 {
		return fmt.Errorf("deadletters %s takes one LINK (NAME or NAMESPACE/NAME), got %d: %v", action, len(links), links)
	}
	if *output != "" && *output != "json" {
		return fmt.Errorf("-o %q: want json (or nothing, for the table)", *output)
	}
	if action == "list" && len(cids) > 0 {
		return fmt.Errorf("--cid narrows retry and clear; list shows every dead letter of the link")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reply, err := standalone.DeadLetterAction(ctx, *addr, action, links[0], cids)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reply)
	}
	return standalone.PrintDeadLetters(stdout, reply, time.Now())
}
