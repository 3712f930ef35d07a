package cmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/health"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/printers"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// CheckOptions checks the health of a clusterset.
type CheckOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	AllNamespaces bool
	Pre           bool
	DNSServer     string
	Output        string

	clusters *clustersetFlag
	now      func() time.Time
}

// NewCmdCheck builds `kubectl mcs check`.
func NewCmdCheck(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CheckOptions{Loader: loader, IOStreams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "check [--clusters CONTEXT,...] [-n NAMESPACE | -A] [--pre] [--dns-server HOST:PORT]",
		Short: "Check the clusterset's health, with the fix for each problem",
		Long: templates.LongDesc(`
			Check everything a clusterset's services depend on, one line per check and cluster:
			the API servers, the MCS CRDs, the cluster ids, the permissions a sync needs, each
			cluster's CoreDNS, namespace sameness, the exports' validity and conflicts, imports
			that are stale or orphaned, and other controllers writing the same objects.
			Each failure comes with the command that fixes it. --pre checks only the setup
			(API, CRDs, ids, permissions, CoreDNS), before the first export; --dns-server also
			asks a live DNS server every exported service's clusterset name.

			It only reads. Clusters are read in parallel; one that cannot be reached is a failed
			check, and the others are still checked. The exit code is 0 when every check passed
			(warnings do not count), 1 otherwise.

			The clusterset is a list of kubeconfig contexts: --clusters, else $` + ClustersEnv + `,
			else every context of the kubeconfig.`),
		Example: templates.Examples(`
			kubectl mcs check --pre --clusters cluster1,cluster2
			kubectl mcs check -A --clusters cluster1,cluster2
			kubectl mcs check -n provider-ns --clusters cluster1,cluster2 -o json`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.clusters = addClustersetFlag(cmd, "Kubeconfig contexts of the clusterset, comma separated")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Check the exports and imports of every namespace.")
	cmd.Flags().BoolVar(&o.Pre, "pre", false, "Check only the setup (API, CRDs, cluster ids, permissions, CoreDNS), before the first export.")
	cmd.Flags().StringVar(&o.DNSServer, "dns-server", "", "Also ask this DNS server (HOST:PORT) every exported service's clusterset name.")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: json or yaml.")
	return cmd
}

// Validate checks the flags.
func (o *CheckOptions) Validate() error {
	if err := validateOutput("check", o.Output, "json", "yaml"); err != nil {
		return err
	}
	if o.DNSServer != "" {
		if _, _, err := net.SplitHostPort(o.DNSServer); err != nil {
			return fmt.Errorf("--dns-server %q is not HOST:PORT (e.g. 10.96.0.10:53)", o.DNSServer)
		}
		if o.Pre {
			return fmt.Errorf("--dns-server asks for the exported services, which --pre does not look at; give one or the other")
		}
	}
	return checkNamespaceScope(o.Loader, o.AllNamespaces)
}

// Run connects every context, runs the checks and prints them.
func (o *CheckOptions) Run(ctx context.Context) error {
	contexts, err := o.clusters.contexts(o.Loader, o.ErrOut)
	if err != nil {
		return err
	}
	opts := health.Options{Pre: o.Pre, DNSServer: o.DNSServer, Now: o.now}
	if !o.AllNamespaces {
		opts.Scope = snapshot.Scope{Namespace: kubeconfigNamespace(o.Loader)}
	}
	// Connecting only builds clients; the checks contact the clusters.
	members := make([]clusterset.Member, len(contexts))
	for i, name := range contexts {
		members[i].Context = name
		members[i].Cluster, members[i].Err = o.Loader.Connect(name)
	}
	report := health.Run(ctx, members, opts)
	if o.Output != "" {
		if err := printers.Structured(o.Out, o.Output, report); err != nil {
			return err
		}
	} else {
		printCheckReport(o.Out, report)
	}
	if !report.Success {
		return &ExitError{Code: 1}
	}
	return nil
}

var checkMarks = map[health.Result]string{health.Pass: "✓", health.Warn: "‼", health.Fail: "×"}

// printCheckReport prints the categories as linkerd check does: a
// heading each, one line per check, the details and fixes indented below.
func printCheckReport(out io.Writer, r health.Report) {
	counts := map[health.Result]int{}
	for i, cat := range r.Categories {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "%s\n%s\n", cat.Name, strings.Repeat("-", len(cat.Name)))
		for _, c := range cat.Checks {
			counts[c.Result]++
			who := ""
			if c.Cluster != "" {
				who = " [" + c.Cluster + "]"
			}
			fmt.Fprintf(out, "%s %s%s: %s\n", checkMarks[c.Result], c.Name, who, c.Message)
			for _, d := range c.Details {
				fmt.Fprintf(out, "    %s\n", d)
			}
			for _, f := range c.Fix {
				fmt.Fprintf(out, "    fix: %s\n", f)
			}
		}
	}
	fmt.Fprintln(out)
	switch {
	case counts[health.Fail] > 0:
		fmt.Fprintf(out, "× %d of %d checks failed, %d warning(s)\n", counts[health.Fail], counts[health.Pass]+counts[health.Warn]+counts[health.Fail], counts[health.Warn])
	case counts[health.Warn] > 0:
		fmt.Fprintf(out, "✓ every check passed, %d warning(s)\n", counts[health.Warn])
	default:
		fmt.Fprintln(out, "✓ every check passed")
	}
}
