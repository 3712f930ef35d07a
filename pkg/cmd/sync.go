package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/controller"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// SyncOptions syncs a whole clusterset: every cluster is a source and a
// consumer, and each export is imported into every cluster where its
// namespace exists, the exporting ones included (KEP-1645).
type SyncOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services        []string
	AllNamespaces   bool
	CreateNamespace bool

	clusters *clustersetFlag
	write    *writeFlags
	watch    watchFlags
	policy   engine.Policy
}

// NewCmdSync builds `kubectl mcs sync`.
func NewCmdSync(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &SyncOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "sync [SERVICE...] --clusters CONTEXT,... [-n NAMESPACE | -A] [--watch]",
		Short: "Sync a whole clusterset: every export into every cluster, exporters included",
		Long: templates.LongDesc(`
			Treat every listed cluster as both source and consumer, as KEP-1645 defines a
			clusterset: each export is imported into every cluster where its namespace exists,
			the exporting clusters included (a cluster's own endpoints are one source among the
			others, labeled with its own cluster id), with the same engine as
			"kubectl mcs import". A cluster that lacks the namespace is named, with the command
			that creates it (or pass --create-namespace).

			Without --watch it syncs once and exits; a second run with nothing changed writes
			nothing. With --watch it keeps every cluster in step (informers on every cluster, a
			rate-limited work queue per service) until interrupted. An unreachable cluster's
			endpoints are kept for --stale-ttl, then removed; each decision is logged on stderr.`),
		Example: templates.Examples(`
			kubectl mcs sync -A --clusters cluster1,cluster2
			kubectl mcs sync -A --clusters cluster1,cluster2 --watch --stale-ttl 2m`),
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
	o.write = newWriteFlags(cmd, "synced")
	o.clusters = addClustersetFlag(cmd, "Kubeconfig contexts of the clusterset, comma separated")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Sync exports of every namespace.")
	cmd.Flags().BoolVar(&o.CreateNamespace, "create-namespace", false, "Create exported namespaces in the clusters that lack them (namespace sameness), instead of skipping those clusters.")
	addWatchFlags(cmd, &o.watch)
	return cmd
}

// Complete parses the flags.
func (o *SyncOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Services = args
	return o.write.complete(cmd)
}

// Validate checks flag combinations.
func (o *SyncOptions) Validate(cmd *cobra.Command) error {
	if err := validateServiceNames(o.Services); err != nil {
		return err
	}
	if err := o.watch.validate(cmd); err != nil {
		return err
	}
	if err := checkNamespaceScope(o.Loader, o.AllNamespaces); err != nil {
		return err
	}
	// Clusterset-wide: no consumer is named.
	var err error
	o.policy, err = engine.PolicyFor(engine.Mode{Watch: o.watch.Watch, CreateNamespace: o.CreateNamespace, DryRun: o.write.DryRun != cmdutil.DryRunNone})
	if err != nil {
		return err
	}
	return o.write.validate()
}

// Run connects the clusterset and syncs it once, or until interrupted.
func (o *SyncOptions) Run(ctx context.Context) error {
	contexts, err := o.clusters.contexts(o.Loader, o.ErrOut)
	if err != nil {
		return err
	}
	clusters, unreachable, err := connectClusterset(ctx, o.Loader, contexts)
	if err != nil {
		return err
	}
	if n := len(clusters) + len(unreachable); n < 2 {
		return fmt.Errorf("a clusterset sync needs at least two clusters (got %d distinct from %v)", n, contexts)
	}
	if err := o.policy.CheckStart(unreachable); err != nil {
		return err
	}
	scope := snapshot.Scope{Services: o.Services}
	if !o.AllNamespaces {
		scope.Namespace = clusters[0].Namespace
		if ns := namespaceFlag(o.Loader); ns != "" {
			scope.Namespace = ns
		}
	}
	if o.watch.Watch {
		return o.watch.run(ctx, o.Loader, controller.Options{
			Consumers: clusters, Sources: clusters, Namespace: scope.Namespace, Services: o.Services,
			MissingNamespaces: o.policy.MissingNamespaces, Log: o.ErrOut,
			MaxWritesInFlight: o.write.MaxWritesInFlight,
		})
	}
	eng := &engine.Engine{Sources: clusters, Consumers: clusters, DryRun: o.write.DryRun, MissingNamespaces: o.policy.MissingNamespaces, MaxWritesInFlight: o.write.MaxWritesInFlight}
	report, err := eng.Sync(ctx, scope)
	if perr := o.write.print(o.Out, report, "", err); perr != nil {
		return perr
	}
	printSkipped(o.ErrOut, report.Skipped)
	return syncResult(err, unreachable)
}

// syncResult is a one-shot sync's outcome under the policy, with exit code
// 1 when clusters were left out.
func syncResult(err error, unreachable []engine.Unreachable) error {
	err = engine.Outcome(err, unreachable)
	var unreachableErr *engine.UnreachableError
	if errors.As(err, &unreachableErr) {
		return &ExitError{Code: 1, Err: err}
	}
	return err
}

// connectClusterset connects every context of the clusterset. A cluster
// that cannot be reached is set aside (the policy decides whether the run
// goes on without it); any other failure stops the sync before a read.
func connectClusterset(ctx context.Context, loader *clusterset.Loader, contexts []string) ([]*clusterset.Cluster, []engine.Unreachable, error) {
	clusters, unreachable, err := engine.SetAside(loader.ConnectEach(ctx, contexts))
	if err != nil {
		return nil, nil, err
	}
	clusters, err = clusterset.Dedupe(clusters)
	return clusters, unreachable, err
}

// printSkipped names each cluster that lacks an exported namespace, with
// the fix: namespace sameness is the most common reason an import is not
// where a user expects it.
func printSkipped(out io.Writer, skipped []engine.Skipped) {
	for _, s := range skipped {
		fmt.Fprintf(out, "%s: not imported: %s (namespace %s does not exist there; fix: %s, or pass --create-namespace)\n",
			s.Cluster.Context, qualify(s.Namespace, s.Services), s.Namespace, s.Fix())
	}
}

func qualify(namespace string, services []string) string {
	out := make([]string, len(services))
	for i, s := range services {
		out[i] = namespace + "/" + s
	}
	return strings.Join(out, ", ")
}
