package main

import (
	goflag "flag"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// egressList is a repeatable flag of comma-separated CIDRs, IPs and host names.
type egressList struct{ list *[]string }

func (e egressList) String() string {
	if e.list == nil {
		return ""
	}
	return strings.Join(*e.list, ",")
}

func (e egressList) Set(v string) error {
	*e.list = append(*e.list, wire.SplitEgressList(v)...)
	return nil
}

func (egressList) Type() string { return "hosts" }

// egressFlags binds --egress-allow and --egress-deny (operator and run share them).
func egressFlags(fs *pflag.FlagSet, p *wire.EgressPolicy) {
	fs.Var(egressList{&p.Allow}, "egress-allow", "CIDRs, IPs or host names the DWN client may reach even if denied (comma-separated, repeatable)")
	fs.Var(egressList{&p.Deny}, "egress-deny", "CIDRs, IPs or host names the DWN client must not reach, beyond the default (link-local and cloud metadata addresses) (comma-separated, repeatable)")
}

// validateEgress names the flag of a bad entry.
func validateEgress(p wire.EgressPolicy) error {
	if err := (wire.EgressPolicy{Allow: p.Allow}).Validate(); err != nil {
		return fmt.Errorf("--egress-allow: %w", err)
	}
	if err := (wire.EgressPolicy{Deny: p.Deny}).Validate(); err != nil {
		return fmt.Errorf("--egress-deny: %w", err)
	}
	return nil
}

// dialects are the values of --local-dialect.
var dialects = []string{"auto", "web5", "enbox", "enbox-smt"}

func localDialectFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "local-dialect", "auto", "dialect of the local server: "+strings.Join(dialects, ", "))
	_ = cmd.RegisterFlagCompletionFunc("local-dialect", cobra.FixedCompletions(dialects, cobra.ShellCompDirectiveNoFileComp))
}

// zapFlags adds controller-runtime's --zap-* flags (a Go flag set) to cmd.
func zapFlags(cmd *cobra.Command, o *zap.Options) {
	gofs := goflag.NewFlagSet(cmd.Name(), goflag.ContinueOnError)
	o.BindFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
}

// aliases makes each key a second name of its value's flag (--watch-namespace for
// --watch-namespaces); help lists the main name only.
func aliases(fs *pflag.FlagSet, alias map[string]string) {
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := alias[name]; ok {
			name = to
		}
		return pflag.NormalizedName(name)
	})
}
