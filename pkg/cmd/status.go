package cmd

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// StatusOptions shows every export and import across a clusterset.
type StatusOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services      []string
	Clusters      string
	AllNamespaces bool

	output        *reportOutput
	clustersGiven bool
	now           func() time.Time
	getenv        func(string) string
}

// NewCmdStatus builds `kubectl mcs status`.
func NewCmdStatus(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{Loader: loader, IOStreams: streams, now: time.Now, getenv: os.Getenv}
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
			o.clustersGiven = cmd.Flags().Changed("clusters")
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Clusters, "clusters", "", "Kubeconfig contexts of the clusterset, comma separated (default $"+ClustersEnv+", else all contexts).")
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

// clusterState is what status read from one cluster.
type clusterState struct {
	cluster  *clusterset.Cluster
	source   reconcile.Source
	consumer reconcile.Consumer
	err      error
}

// Run reads every cluster in parallel and prints the table.
func (o *StatusOptions) Run(ctx context.Context) error {
	contexts, origin, err := clustersetContexts(o.Loader, o.Clusters, o.clustersGiven, o.getenv)
	if err != nil {
		return err
	}
	if origin != "--clusters" {
		fmt.Fprintf(o.ErrOut, "Clusterset from %s: %s\n", origin, strings.Join(contexts, ", "))
	}
	scope := snapshot.Scope{Services: o.Services}
	if !o.AllNamespaces {
		// -n, else the current context's namespace, else "default": read
		// from the kubeconfig alone, no client needed.
		ns, _, err := o.Loader.Flags.ToRawKubeConfigLoader().Namespace()
		if err != nil || ns == "" {
			ns = "default"
		}
		scope.Namespace = ns
	}
	scope.Services = o.servicesOfDerived(ctx, scope.Namespace)
	states := o.read(ctx, contexts, scope)
	report := buildStatus(states, o.now())
	var failed []string
	for _, cr := range report.Clusters {
		if cr.Error != "" {
			failed = append(failed, cr.Context)
		}
	}
	switch format := o.output.format(); {
	case format == "dot":
		if err := printStatusDot(o.Out, report); err != nil {
			return err
		}
	case format == "mermaid":
		if err := printStatusMermaid(o.Out, report); err != nil {
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

// read connects every context and reads it, in parallel; contexts that are
// the same API server are read once, and a failure stays with its cluster.
func (o *StatusOptions) read(ctx context.Context, contexts []string, scope snapshot.Scope) []*clusterState {
	var states []*clusterState
	var clusters []*clusterset.Cluster
	for _, m := range o.Loader.ConnectEach(ctx, contexts) {
		switch {
		case m.Err != nil:
			states = append(states, &clusterState{cluster: &clusterset.Cluster{Context: m.Context}, err: m.Err})
		case !slices.Contains(clusters, m.Cluster):
			states = append(states, &clusterState{cluster: m.Cluster})
			clusters = append(clusters, m.Cluster)
		}
	}
	errs := clusterset.ForEach(ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		st := states[slices.IndexFunc(states, func(s *clusterState) bool { return s.cluster == c })]
		// Both reads at once: one round trip for the cluster.
		var srcErr error
		read := make(chan struct{})
		go func() {
			defer close(read)
			st.source, srcErr = snapshot.ReadSource(ctx, c, scope)
		}()
		var err error
		st.consumer, err = snapshot.ReadConsumer(ctx, c, scope)
		<-read
		if srcErr != nil {
			return srcErr
		}
		return err
	})
	for i, c := range clusters {
		if errs[i] != nil {
			states[slices.IndexFunc(states, func(s *clusterState) bool { return s.cluster == c })].err = errs[i]
		}
	}
	// Two reachable clusters with one id would be indistinguishable in DNS.
	byID := map[string]*clusterState{}
	for _, st := range states {
		if st.err != nil || st.cluster.ID == "" {
			continue
		}
		if prev, ok := byID[st.cluster.ID]; ok {
			st.err = clusterset.IDCollision(prev.cluster, st.cluster)
			continue
		}
		byID[st.cluster.ID] = st
	}
	return states
}

// servicesOfDerived maps a named derived Service (amcs-mysql, as a k9s
// shortcut passes from the Services view of a consumer) to the service it
// carries, through its multicluster.kubernetes.io/service-name label in the
// current context; other names, and any name that cannot be looked up, stay
// as given. Only names with the derived prefix cost a request.
func (o *StatusOptions) servicesOfDerived(ctx context.Context, namespace string) []string {
	out := slices.Clone(o.Services)
	var c *clusterset.Cluster
	for i, name := range out {
		if !strings.HasPrefix(name, reconcile.DerivedServiceName("")) || namespace == "" {
			continue
		}
		if c == nil {
			current, err := o.Loader.CurrentContext()
			if err != nil {
				return out
			}
			if c, err = o.Loader.Connect(current); err != nil {
				return out
			}
		}
		svc, err := c.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && svc.Labels[mcsv1beta1.LabelServiceName] != "" {
			out[i] = svc.Labels[mcsv1beta1.LabelServiceName]
		}
	}
	return out
}
