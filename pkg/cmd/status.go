package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/status"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// StatusOptions shows every export and import across a clusterset.
type StatusOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services      []string
	AllNamespaces bool

	clusters *clustersetFlag
	output   *reportOutput
	now      func() time.Time
}

// NewCmdStatus builds `kubectl mcs status`.
func NewCmdStatus(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{Loader: loader, IOStreams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "status [SERVICE...] [--clusters CONTEXT,...] [-n NAMESPACE | -A]",
		Short: "Show every exported and imported service across the clusterset",
		Long: templates.LongDesc(`
			One table of every exported and imported service across a clusterset: who exports
			it, where it is imported, its ports, endpoints and conflicts. An import that no
			longer matches what its sources export is flagged STALE, with the command that
			fixes it.

			The clusterset is a list of kubeconfig contexts: --clusters, else $` + ClustersEnv + `,
			else every context of the kubeconfig. Clusters are read in parallel; one that cannot be
			read is reported by name while the others are still shown, and the exit code is 1.`),
		Example: templates.Examples(`
			kubectl mcs status -A --clusters cluster1,cluster2
			kubectl mcs status mysql -n provider-ns -o wide
			KUBECTL_MCS_CLUSTERS=cluster1,cluster2 kubectl mcs status -A -o yaml
			kubectl mcs status -A --clusters cluster1,cluster2 -o jsonpath='{range .services[*]}{.namespace}/{.service}{"\n"}{end}'
			kubectl mcs status -n provider-ns --clusters cluster1,cluster2 -o name`),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Services = args
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.clusters = addClustersetFlag(cmd, "Kubeconfig contexts of the clusterset, comma separated")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Show services of every namespace.")
	// dot (-o dot | dot -Tsvg) and mermaid draw the clusterset; -o name
	// prints the ServiceExport (or, for an import alone, ServiceImport) a
	// row is about.
	o.output = newReportOutput(cmd, []string{"wide", "dot", "mermaid"}, true, "{.services[*].service}")
	return cmd
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	if err := validateServiceNames(o.Services); err != nil {
		return err
	}
	if err := o.output.validate("status"); err != nil {
		return err
	}
	return checkNamespaceScope(o.Loader, o.AllNamespaces)
}

// Run reads every cluster in parallel and prints the table.
func (o *StatusOptions) Run(ctx context.Context) error {
	contexts, err := o.clusters.contexts(o.Loader, o.ErrOut)
	if err != nil {
		return err
	}
	scope := snapshot.Scope{Services: o.Services}
	if !o.AllNamespaces {
		scope.Namespace = kubeconfigNamespace(o.Loader)
	}
	scope.Services = status.ServicesOfDerived(ctx, o.Loader, o.Services, scope.Namespace)
	states := status.Read(ctx, o.Loader, contexts, scope)
	report := status.Build(states, o.now())
	var failed []string
	for _, cr := range report.Clusters {
		if cr.Error != "" {
			failed = append(failed, cr.Context)
		}
	}
	switch format := o.output.format(); {
	case format == "dot":
		if err := status.WriteDot(o.Out, report); err != nil {
			return err
		}
	case format == "mermaid":
		if err := status.WriteMermaid(o.Out, report); err != nil {
			return err
		}
	case format == "name":
		if err := o.output.printNames(o.Out, statusObjects(report)); err != nil {
			return err
		}
	case format != "" && format != "wide":
		// json, yaml, jsonpath, go-template: the report as one document.
		if err := o.output.printReport(o.Out, report); err != nil {
			return err
		}
	case len(failed) == len(report.Clusters):
		// Nothing could be read: the errors below say it all.
	default:
		if err := printStatusTable(o.Out, report, format == "wide", scope, o.now()); err != nil {
			return err
		}
	}
	for _, cr := range report.Clusters {
		if cr.Error != "" {
			fmt.Fprintf(o.ErrOut, "error: %s\n", cr.Error)
		}
	}
	if len(failed) > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}
