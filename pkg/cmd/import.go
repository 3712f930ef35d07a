package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/controller"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

var importExample = templates.Examples(`
	# Make the exported Service mysql of cluster1 reachable in cluster2
	kubectl mcs import mysql -n provider-ns --from cluster1 --context cluster2

	# Sync every export of two clusters, in all namespaces, into cluster3
	kubectl mcs import -A --from cluster1,cluster2 --context cluster3

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

	write    *writeFlags
	watch    watchFlags
	consumer *clusterset.Cluster
	sources  []*clusterset.Cluster
	scope    snapshot.Scope
	now      func() time.Time
	// existingNamespaces are the consumer's namespaces as read.
	existingNamespaces []string
	// unreachable sources, found while connecting or reading.
	unreachable []unreachableSource
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
			conditions of every export.

			Only the difference is written, with server-side apply under the field manager
			"kubectl-mcs"; a second run with nothing changed writes nothing. Objects that
			kubectl mcs does not manage are never changed or deleted: a Service or EndpointSlice
			in the way is an error, and nothing is written. A ServiceImport made by hand is adopted.`),
		Example: importExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.watch.validate(cmd); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.write = newWriteFlags(cmd, "imported")
	addWatchFlags(cmd, &o.watch)
	cmd.Flags().StringVar(&o.From, "from", "", "Source clusters: kubeconfig contexts whose exports to import, comma separated.")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Import exports of every namespace (that exists in this cluster, unless --create-namespace).")
	cmd.Flags().BoolVar(&o.CreateNamespace, "create-namespace", false, "Create exported namespaces missing in this cluster (namespace sameness).")
	return cmd
}

// Complete parses the flags and connects the consumer and every source.
func (o *ImportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Services = args
	if err := o.write.complete(cmd); err != nil {
		return err
	}
	if !cmd.Flags().Changed("from") {
		return errors.New("--from is required: name the kubeconfig contexts of the clusters that export the services (e.g. --from cluster1)")
	}
	sourceContexts, err := clusterset.ParseContextList("from", o.From)
	if err != nil {
		return err
	}
	consumerContext, err := o.Loader.CurrentContext()
	if err != nil {
		return err
	}
	if err := o.connect(cmd.Context(), consumerContext, sourceContexts); err != nil {
		return err
	}
	if !o.AllNamespaces {
		o.scope.Namespace = o.consumer.Namespace
	}
	o.scope.Services = args
	return nil
}

// connect connects the consumer and the sources and resolves their cluster
// ids. A source that cannot be reached is set aside (its endpoints already
// imported are kept, and the command fails at the end); any other failure,
// or an unreachable consumer, stops the import before anything is read.
func (o *ImportOptions) connect(ctx context.Context, consumerContext string, sourceContexts []string) error {
	var all []*clusterset.Cluster
	var errs []error
	for _, name := range append([]string{consumerContext}, sourceContexts...) {
		c, err := o.Loader.Connect(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, c)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var reachable []*clusterset.Cluster
	for i, err := range clusterset.ForEach(ctx, all, func(ctx context.Context, c *clusterset.Cluster) error { return c.ResolveID(ctx) }) {
		switch {
		case err == nil:
			reachable = append(reachable, all[i])
		case i > 0 && clusterset.Unreachable(err):
			o.unreachable = append(o.unreachable, unreachableSource{cluster: all[i], err: err})
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	clusters, err := clusterset.Dedupe(reachable)
	if err != nil {
		return err
	}
	o.consumer = clusters[0]
	if o.consumer.Context != consumerContext {
		return fmt.Errorf("context %q is the same cluster as %q", consumerContext, o.consumer.Context)
	}
	o.sources = clusters[1:]
	return nil
}

// Validate checks flag combinations.
func (o *ImportOptions) Validate() error {
	if err := checkNamespaceScope(o.Loader, o.AllNamespaces); err != nil {
		return err
	}
	if o.watch.Watch && o.write.DryRun != cmdutil.DryRunNone {
		return errors.New("--watch writes continuously; it cannot be combined with --dry-run")
	}
	if len(o.sources) == 0 && len(o.unreachable) == 0 {
		return fmt.Errorf("--from %s names only the consumer cluster %s itself; name the clusters that export the services", o.From, o.consumer.Context)
	}
	return o.write.validate()
}

// Run reads every cluster in parallel, reconciles, refuses to write
// anything if the plan has problems, and applies the rest.
func (o *ImportOptions) Run(ctx context.Context) error {
	if o.watch.Watch && o.watch.LeaderElect {
		// Only the leader may write, the first sync included: the
		// controller does it once it holds the Lease.
		return o.runWatch(ctx)
	}
	results, objects, err := o.sync(ctx)
	// What was written is reported even when a source was unreachable or a
	// write failed half-way: a re-run converges, and the user sees where.
	if o.write.structured() && err == nil {
		if err := o.write.printObjects(o.Out, objects); err != nil {
			return err
		}
	} else {
		o.write.printResults(o.Out, results, o.consumer.Context)
	}
	if !o.watch.Watch {
		return err
	}
	if err != nil {
		// The watch goes on: it keeps retrying what failed.
		fmt.Fprintf(o.ErrOut, "Warning: %v\n", err)
	}
	return o.runWatch(ctx)
}

func (o *ImportOptions) runWatch(ctx context.Context) error {
	sources := slices.Clone(o.sources)
	for _, u := range o.unreachable {
		sources = append(sources, u.cluster)
	}
	return o.watch.run(ctx, controller.Options{
		Consumers: []*clusterset.Cluster{o.consumer},
		Sources:   sources,
		Namespace: o.scope.Namespace,
		Services:  o.Services,
		Log:       o.ErrOut,
	})
}

func (o *ImportOptions) sync(ctx context.Context) ([]apply.Result, []*unstructured.Unstructured, error) {
	snap, unreachable, err := o.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	plan := reconcile.Reconcile(snap)
	if len(plan.Problems) > 0 {
		return nil, nil, problemsError(plan.Problems)
	}
	exec := &apply.Executor{Consumer: o.consumer, Sources: o.sourcesByID(), DryRun: o.write.DryRun}
	if err := exec.Preflight(ctx, plan); err != nil {
		return nil, nil, err
	}
	if o.CreateNamespace {
		if missing := o.missingNamespaces(snap); len(missing) > 0 && o.write.DryRun == cmdutil.DryRunServer {
			// The server cannot check objects in a namespace whose creation
			// it only simulated; say so rather than fail half-way.
			return nil, nil, o.consumer.Errorf("--dry-run=server cannot check objects in namespace(s) %s, which do not exist yet (their creation would only be simulated); use --dry-run=client, or create the namespaces first",
				strings.Join(missing, ", "))
		}
		if err := o.createNamespaces(ctx, snap); err != nil {
			return nil, nil, err
		}
	}
	results, objects, err := exec.Execute(ctx, plan)
	if err != nil {
		return results, objects, err
	}
	// A ClusterSetIP import carries the derived Service's cluster IP, which
	// the consumer allocates when it creates that Service: read it back and
	// let the library fill it in.
	if o.write.DryRun == cmdutil.DryRunNone && needsSecondPass(plan) {
		con, err := snapshot.ReadConsumer(ctx, o.consumer, o.scope)
		if err != nil {
			return results, objects, err
		}
		snap.Consumer = con
		plan = reconcile.Reconcile(snap)
		second, secondObjects, err := exec.Execute(ctx, plan)
		if err != nil {
			return results, objects, err
		}
		results, objects = mergeResults(results, second), secondObjects
	}
	if len(unreachable) > 0 {
		return results, objects, &ExitError{Code: 1, Err: fmt.Errorf("synced without %s: %w; their endpoints already imported were kept",
			strings.Join(contextsOf(unreachable), ", "), errors.Join(errsOf(unreachable)...))}
	}
	return results, objects, nil
}

type unreachableSource struct {
	cluster *clusterset.Cluster
	err     error
}

func contextsOf(u []unreachableSource) []string {
	out := make([]string, len(u))
	for i, s := range u {
		out[i] = s.cluster.Context
	}
	return out
}

func errsOf(u []unreachableSource) []error {
	out := make([]error, len(u))
	for i, s := range u {
		out[i] = s.err
	}
	return out
}

// read takes the snapshot: every source and the consumer in parallel. A
// source that cannot be reached is synced as unreachable (its endpoints are
// kept); any other failure stops the import before anything is written.
func (o *ImportOptions) read(ctx context.Context) (reconcile.Snapshot, []unreachableSource, error) {
	snap := reconcile.Snapshot{Now: metav1.NewTime(o.now().UTC().Truncate(time.Second))}
	snap.Sources = make([]reconcile.Source, len(o.sources))
	all := append([]*clusterset.Cluster{o.consumer}, o.sources...)
	errs := clusterset.ForEach(ctx, all, func(ctx context.Context, c *clusterset.Cluster) error {
		if c == o.consumer {
			con, err := snapshot.ReadConsumer(ctx, c, o.scope)
			snap.Consumer = con
			return err
		}
		i := slices.Index(o.sources, c)
		src, err := snapshot.ReadSource(ctx, c, o.scope)
		snap.Sources[i] = src
		return err
	})
	unreachable := o.unreachable
	var fatal []error
	for i, err := range errs {
		if err == nil {
			continue
		}
		if i > 0 && clusterset.Unreachable(err) {
			unreachable = append(unreachable, unreachableSource{cluster: all[i], err: err})
			snap.Sources[i-1] = reconcile.Source{ClusterID: all[i].ID, Unreachable: true}
			continue
		}
		fatal = append(fatal, err)
	}
	if len(fatal) > 0 {
		return snap, nil, fmt.Errorf("nothing was written:\n%w", errors.Join(fatal...))
	}
	o.existingNamespaces = slices.Clone(snap.Consumer.Namespaces)
	if o.CreateNamespace {
		snap.Consumer.Namespaces = mergeNamespaces(snap.Consumer.Namespaces, exportedNamespaces(snap))
	}
	return snap, unreachable, nil
}

func (o *ImportOptions) sourcesByID() map[string]*clusterset.Cluster {
	out := map[string]*clusterset.Cluster{}
	for _, c := range o.sources {
		out[c.ID] = c
	}
	return out
}

// missingNamespaces lists the exported namespaces the consumer lacks.
func (o *ImportOptions) missingNamespaces(snap reconcile.Snapshot) []string {
	var missing []string
	for _, name := range exportedNamespaces(snap) {
		if !slices.Contains(o.existingNamespaces, name) {
			missing = append(missing, name)
		}
	}
	return missing
}

// createNamespaces creates the exported namespaces the consumer lacks.
func (o *ImportOptions) createNamespaces(ctx context.Context, snap reconcile.Snapshot) error {
	for _, name := range o.missingNamespaces(snap) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{reconcile.ManagedByLabel: reconcile.FieldManager}}}
		opts := metav1.CreateOptions{FieldManager: reconcile.FieldManager}
		if o.write.DryRun == cmdutil.DryRunServer {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		if o.write.DryRun != cmdutil.DryRunClient {
			if _, err := o.consumer.Kube.CoreV1().Namespaces().Create(ctx, ns, opts); err != nil && !apierrors.IsAlreadyExists(err) {
				return o.consumer.Errorf("creating namespace %s: %w", name, err)
			}
		}
		fmt.Fprintf(o.Out, "namespace/%s created%s\n", name, apply.DryRunSuffix(o.write.DryRun))
	}
	return nil
}

func exportedNamespaces(snap reconcile.Snapshot) []string {
	var out []string
	for _, s := range snap.Sources {
		for _, e := range s.Exports {
			if !slices.Contains(out, e.Namespace) {
				out = append(out, e.Namespace)
			}
		}
	}
	slices.Sort(out)
	return out
}

func mergeNamespaces(a, b []string) []string {
	out := slices.Clone(a)
	for _, ns := range b {
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// needsSecondPass reports whether a ClusterSetIP import still lacks the IPs
// of its derived Service.
func needsSecondPass(plan reconcile.Plan) bool {
	for _, si := range plan.Imports {
		if si.Spec.Type == mcsv1beta1.ClusterSetIP && len(si.Spec.IPs) == 0 {
			return true
		}
	}
	return false
}

// mergeResults folds a second pass into the first: an object created in the
// first pass and completed in the second is reported once, as created.
func mergeResults(first, second []apply.Result) []apply.Result {
	out := slices.Clone(first)
	for _, r := range second {
		i := slices.IndexFunc(out, func(f apply.Result) bool {
			return f.Cluster == r.Cluster && f.Kind == r.Kind && f.Namespace == r.Namespace && f.Name == r.Name && f.Subject == r.Subject
		})
		switch {
		case i < 0:
			out = append(out, r)
		case out[i].Action == apply.Unchanged && r.Action != apply.Unchanged:
			out[i].Action = r.Action
		}
	}
	return out
}

// problemsError lists every blocking problem with its fix.
func problemsError(problems []reconcile.Problem) error {
	var b strings.Builder
	b.WriteString("nothing was written:")
	for _, p := range problems {
		fmt.Fprintf(&b, "\n  %s: %s\n    fix: %s", p.Cluster, p.Message, p.Fix)
	}
	return errors.New(b.String())
}
