package cmd

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/controller"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

var importExample = templates.Examples(`
	# Make the exported Service mysql of cluster1 reachable in cluster2
	kubectl mcs import mysql -n provider-ns --from cluster1 --context cluster2

	# Sync every export of both clusters, in all namespaces, into cluster2
	kubectl mcs import -A --from cluster1,cluster2 --context cluster2

	# Print what would be applied in the consumer, without applying it
	kubectl mcs import mysql -n provider-ns --from cluster1 --dry-run=client -o yaml`)

// ImportOptions performs an MCS controller's sync on demand: the exports of
// the --from clusters become ServiceImports, derived Services and
// EndpointSlices in the current context's cluster, and the exports get
// their conditions.
type ImportOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services        []string
	From            string
	AllNamespaces   bool
	CreateNamespace bool

	write          *writeFlags
	watch          watchFlags
	policy         engine.Policy
	sourceContexts []string
	now            func() time.Time
}

// NewCmdImport builds `kubectl mcs import`.
func NewCmdImport(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ImportOptions{Loader: loader, IOStreams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "import [SERVICE...] --from CONTEXT[,CONTEXT...] [-n NAMESPACE | -A]",
		Short: "Sync exported Services into this cluster (ServiceImport, derived Service, EndpointSlices)",
		Long: templates.LongDesc(`
			Do on demand what a Multi-Cluster Services controller does: read the ServiceExports,
			Services and EndpointSlices of the --from clusters, and make the current context's
			cluster hold the matching ServiceImport, the derived Service amcs-<service> (so that
			<pod>.amcs-<service>.<namespace>.svc.cluster.local resolves with the cluster's own DNS)
			and one EndpointSlice set per source cluster; then write the Valid, Ready and Conflict
			conditions of every export. The current cluster may be one of the sources: its own
			endpoints are then imported too, labeled with its own cluster id (KEP-1645: every
			cluster of a clusterset imports, the exporting ones included).

			Only the difference is written, with server-side apply under the field manager
			"kubectl-mcs", each object at most once; a second run with nothing changed writes
			nothing. Objects that kubectl mcs does not manage are never changed or deleted: a
			Service or EndpointSlice in the way is an error, and nothing is written. A
			ServiceImport made by hand is adopted.`),
		Example: importExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.write = newWriteFlags(cmd, "imported")
	addWatchFlags(cmd, &o.watch)
	cmd.Flags().StringVar(&o.From, "from", "", "Source clusters: kubeconfig contexts whose exports to import, comma separated (the current context may be one of them).")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Import exports of every namespace (that exists in this cluster, unless --create-namespace).")
	cmd.Flags().BoolVar(&o.CreateNamespace, "create-namespace", false, "Create exported namespaces missing in this cluster (namespace sameness).")
	return cmd
}

// Complete parses the flags; nothing is contacted yet.
func (o *ImportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Services = args
	if err := o.write.complete(cmd); err != nil {
		return err
	}
	if !cmd.Flags().Changed("from") {
		return errors.New("--from is required: name the kubeconfig contexts of the clusters that export the services (e.g. --from cluster1)")
	}
	var err error
	o.sourceContexts, err = clusterset.ParseContextList("from", o.From)
	return err
}

// Validate checks flag combinations.
func (o *ImportOptions) Validate(cmd *cobra.Command) error {
	if err := validateServiceNames(o.Services); err != nil {
		return err
	}
	if err := o.watch.validate(cmd); err != nil {
		return err
	}
	if err := checkNamespaceScope(o.Loader, o.AllNamespaces); err != nil {
		return err
	}
	// The user named the consumer (the current context).
	var err error
	o.policy, err = engine.PolicyFor(engine.Mode{NamedConsumer: true, Watch: o.watch.Watch, CreateNamespace: o.CreateNamespace, DryRun: o.write.DryRun != cmdutil.DryRunNone})
	if err != nil {
		return err
	}
	return o.write.validate()
}

// Run connects the consumer and the sources, then syncs once through the
// engine, or keeps syncing with --watch.
func (o *ImportOptions) Run(ctx context.Context) error {
	consumer, sources, unreachable, err := o.connect(ctx)
	if err != nil {
		return err
	}
	scope := snapshot.Scope{Services: o.Services}
	if !o.AllNamespaces {
		scope.Namespace = consumer.Namespace
	}
	if err := o.policy.CheckStart(unreachable); err != nil {
		return err
	}
	if o.watch.Watch {
		return o.watch.run(ctx, o.Loader, controller.Options{
			Consumers:         []*clusterset.Cluster{consumer},
			Sources:           sources,
			Namespace:         scope.Namespace,
			Services:          o.Services,
			MissingNamespaces: o.policy.MissingNamespaces,
			Log:               o.ErrOut,
			MaxWritesInFlight: o.write.MaxWritesInFlight,
		})
	}
	eng := &engine.Engine{Sources: sources, Consumers: []*clusterset.Cluster{consumer}, DryRun: o.write.DryRun, MissingNamespaces: o.policy.MissingNamespaces, Now: o.now, MaxWritesInFlight: o.write.MaxWritesInFlight}
	report, err := eng.Sync(ctx, scope)
	// What was written is reported even when a source was unreachable or a
	// write failed half-way: a re-run converges, and the user sees where.
	if perr := o.write.print(o.Out, report, consumer.Context, err); perr != nil {
		return perr
	}
	return syncResult(err, unreachable)
}

// connect connects the consumer and the sources and resolves their cluster
// ids. A source that cannot be reached is set aside (its endpoints already
// imported are kept, and the command fails at the end); any other failure,
// or an unreachable consumer, stops the import before anything is read.
// Contexts that point at one API server are one cluster; the consumer may
// be among the sources.
func (o *ImportOptions) connect(ctx context.Context) (consumer *clusterset.Cluster, sources []*clusterset.Cluster, unreachable []engine.Unreachable, err error) {
	consumerContext, err := o.Loader.CurrentContext()
	if err != nil {
		return nil, nil, nil, err
	}
	members := o.Loader.ConnectEach(ctx, append([]string{consumerContext}, o.sourceContexts...))
	if err := members[0].Err; err != nil {
		return nil, nil, nil, err
	}
	consumer = members[0].Cluster
	// The consumer may be a source too, under its own or another context
	// naming its API server.
	if sources, unreachable, err = engine.SetAside(members[1:]); err != nil {
		return nil, nil, nil, err
	}
	if _, err := clusterset.Dedupe(append([]*clusterset.Cluster{consumer}, sources...)); err != nil {
		return nil, nil, nil, err
	}
	return consumer, sources, unreachable, nil
}
