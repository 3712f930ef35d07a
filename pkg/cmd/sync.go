package cmd

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/controller"
)

// SyncOptions syncs a whole clusterset: every cluster is a source and a
// consumer, and each export is imported into every other cluster where
// its namespace exists.
type SyncOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services      []string
	Clusters      string
	AllNamespaces bool

	clustersGiven bool
	watch         watchFlags
}

// NewCmdSync builds `kubectl mcs sync`.
func NewCmdSync(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &SyncOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "sync [SERVICE...] --clusters CONTEXT,... [-n NAMESPACE | -A] [--watch]",
		Short: "Sync a whole clusterset: every export into every other cluster",
		Long: templates.LongDesc(`
			Treat every listed cluster as both source and consumer: each export is imported into
			every other cluster where its namespace exists, with the same reconcile library as
			"kubectl mcs import". Without --watch it syncs once and exits; with --watch it keeps
			every cluster in step (informers on every cluster, a rate-limited work queue per
			service) until interrupted. An unreachable cluster's endpoints are kept for --stale-ttl,
			then removed; each decision is logged on stderr.`),
		Example: templates.Examples(`
			kubectl mcs sync -A --clusters cluster1,cluster2,cluster3
			kubectl mcs sync -A --clusters cluster1,cluster2,cluster3 --watch --stale-ttl 2m`),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Services = args
			o.clustersGiven = cmd.Flags().Changed("clusters")
			if err := o.watch.validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Clusters, "clusters", "", "Kubeconfig contexts of the clusterset, comma separated (default $"+ClustersEnv+", else all contexts).")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Sync exports of every namespace.")
	addWatchFlags(cmd, &o.watch)
	return cmd
}

// Run connects the clusterset and syncs it once, or until interrupted.
func (o *SyncOptions) Run(ctx context.Context) error {
	if err := checkNamespaceScope(o.Loader, o.AllNamespaces); err != nil {
		return err
	}
	contexts, origin, err := clustersetContexts(o.Loader, o.Clusters, o.clustersGiven, os.Getenv)
	if err != nil {
		return err
	}
	if origin != "--clusters" {
		fmt.Fprintf(o.ErrOut, "Clusterset from %s: %v\n", origin, contexts)
	}
	clusters, err := o.Loader.ConnectAll(ctx, contexts)
	if err != nil {
		return err
	}
	if len(clusters) < 2 {
		return fmt.Errorf("a clusterset sync needs at least two clusters (got %d distinct from %v)", len(clusters), contexts)
	}
	namespace := ""
	if !o.AllNamespaces {
		namespace = clusters[0].Namespace
		if ns := namespaceFlag(o.Loader); ns != "" {
			namespace = ns
		}
	}
	opts := controller.Options{
		Consumers: clusters, Sources: clusters, Namespace: namespace, Services: o.Services,
		Log: o.ErrOut, SkipMissingNamespaces: true,
	}
	if o.watch.Watch {
		return o.watch.run(ctx, opts)
	}
	opts.Log = o.Out
	ctrl, err := controller.New(opts)
	if err != nil {
		return err
	}
	return ctrl.RunOnce(ctx)
}
