package cmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/printers"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/resolve"
)

// ResolveOptions answers "which DNS names reach this pod or service, and
// what do they answer", from the consumer's imported state.
type ResolveOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Target        string
	AllNamespaces bool
	DNSServer     string

	output   *reportOutput
	clusters *clustersetFlag
}

// NewCmdResolve builds `kubectl mcs resolve`.
func NewCmdResolve(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ResolveOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "resolve NAME [-n NAMESPACE | -A] [--context CONSUMER] [--dns-server HOST:PORT]",
		Short: "Show every DNS name that reaches a pod or service, and its answer",
		Long: templates.LongDesc(`
			Answer, from what the consumer cluster (the current context) has imported, every DNS
			name that reaches a pod hostname (mysql-0), a service (mysql), or a full DNS name:

			  <host>.amcs-<svc>.<ns>.svc.cluster.local              the derived Service (any cluster DNS)
			  <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local    MCS DNS spec (CoreDNS >= 1.12.2, multicluster)
			  <host>.<svc>.<ns>.svc.clusterset.local                the vendor form (needs a rewrite rule)
			  <svc>.<ns>.svc.clusterset.local, _<port>._<proto>.<svc>.<ns>.svc.clusterset.local, dns-version.clusterset.local

			Answers follow the MCS DNS specification as upstream CoreDNS serves it: ready endpoints
			only. The HERE column says whether the consumer's CoreDNS (ConfigMap kube-system/coredns)
			is set up to serve the form. When nothing answers, resolve names the first broken link
			(no Service, no export, invalid export, not imported, namespace missing, endpoint not
			ready, DNS not set up) and the command that fixes it. --dns-server also asks a live DNS
			server and marks every disagreement.`),
		Example: templates.Examples(`
			kubectl mcs resolve mysql-0 -n provider-ns --context cluster2
			kubectl mcs resolve mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local --context cluster2
			kubectl mcs resolve mysql -n provider-ns --context cluster2 -o yaml
			kubectl mcs resolve mysql -n provider-ns --context cluster2 -o jsonpath='{.names[*].answer}'`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Target = args[0]
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.clusters = addClustersetFlag(cmd, "Kubeconfig contexts of the clusterset, to explain missing answers")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look in every namespace.")
	cmd.Flags().StringVar(&o.DNSServer, "dns-server", "", "Also query this DNS server (HOST:PORT) and mark every disagreement.")
	// A row is a DNS name and an answer, not an object: no -o name.
	o.output = newReportOutput(cmd, nil, false, "{.names[*].answer}")
	return cmd
}

// Validate checks the flags.
func (o *ResolveOptions) Validate() error {
	if err := o.output.validate("resolve"); err != nil {
		return err
	}
	if o.DNSServer != "" {
		if _, port, err := net.SplitHostPort(o.DNSServer); err != nil || port == "" {
			return fmt.Errorf("--dns-server %q is not HOST:PORT (e.g. 10.96.0.10:53)", o.DNSServer)
		}
	}
	return checkNamespaceScope(o.Loader, o.AllNamespaces)
}

// Run reads the consumer, answers, explains, and prints.
func (o *ResolveOptions) Run(ctx context.Context) error {
	target, err := dns.ParseTarget(o.Target)
	if err != nil {
		return err
	}
	consumer, err := connectCurrent(ctx, o.Loader)
	if err != nil {
		return err
	}
	namespace := ""
	if !o.AllNamespaces {
		namespace = consumer.Namespace
	}
	members := resolve.Clusterset{Loader: o.Loader, Warnings: o.ErrOut, Contexts: func() ([]string, error) {
		return o.clusters.contexts(o.Loader, nil)
	}}
	report, err := resolve.Build(ctx, consumer, target, o.Target, namespace, members, o.DNSServer)
	if err != nil {
		return err
	}
	if o.output.format() != "" {
		if err := o.output.printReport(o.Out, report); err != nil {
			return err
		}
	} else if err := printResolveReport(o.Out, report, o.DNSServer != ""); err != nil {
		return err
	}
	if report.Broken != nil {
		return &ExitError{Code: 1}
	}
	for _, n := range report.Names {
		if strings.HasPrefix(n.Live, "differs") {
			return &ExitError{Code: 1, Err: fmt.Errorf("the DNS server %s disagrees with the imported state (see LIVE)", o.DNSServer)}
		}
	}
	return nil
}

func printResolveReport(out io.Writer, r resolve.Report, live bool) error {
	headers := []string{"NAME", "TYPE", "ANSWER", "CLUSTER", "READY", "SERVED BY", "HERE"}
	if live {
		headers = append(headers, "LIVE")
	}
	var rows [][]string
	for _, n := range r.Names {
		ready := "yes"
		if !n.Ready {
			ready = "no"
		}
		if n.Reason != "" && !n.Served {
			ready += " (" + n.Reason + ")"
		}
		row := []string{n.Name, n.Type, orDash(n.Answer), orDash(n.Cluster), ready, n.ServedBy, n.Here}
		if live {
			row = append(row, orDash(n.Live))
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		if err := printers.Table(out, headers, rows); err != nil {
			return err
		}
	}
	if !r.DNSSetup.Known {
		fmt.Fprintf(out, "DNS setup of %s: unknown (%s); HERE says unknown for clusterset.local names\n", r.Consumer, r.DNSSetup.Source)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(out, "Note: %s\n", n)
	}
	if b := r.Broken; b != nil {
		where := ""
		if b.Cluster != "" {
			where = b.Cluster + ": "
		}
		fmt.Fprintf(out, "No answer for %s in %s: %s%s\n", r.Target, r.Consumer, where, b.Message)
		if b.Fix != "" {
			fmt.Fprintf(out, "Fix: %s\n", b.Fix)
		}
	}
	return nil
}
