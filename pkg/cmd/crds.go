package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/crds"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// NewCmdCRDs builds `kubectl mcs crds install|check`.
func NewCmdCRDs(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crds",
		Short: "Install or check the MCS API CRDs (ServiceExport, ServiceImport)",
		Long: templates.LongDesc(`
			The MCS API is made of two CustomResourceDefinitions, which a plain cluster lacks.
			"install" applies the ones shipped with sigs.k8s.io/mcs-api (serving v1alpha1 and
			v1beta1); "check" tells which versions a cluster serves.`),
	}
	cmd.AddCommand(newCmdCRDsInstall(loader, streams), newCmdCRDsCheck(loader, streams))
	return cmd
}

// CRDsInstallOptions applies the embedded CRDs to one or more clusters.
type CRDsInstallOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams
	Clusters string
	write    *writeFlags
}

func newCmdCRDsInstall(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CRDsInstallOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "install [--clusters CONTEXT,...]",
		Short: "Install (or upgrade) the MCS API CRDs",
		Example: templates.Examples(`
			kubectl mcs crds install --context cluster1
			kubectl mcs crds install --clusters cluster1,cluster2
			kubectl mcs crds install --dry-run=client -o yaml`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.write.complete(cmd); err != nil {
				return err
			}
			if err := o.write.validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), cmd.Flags().Changed("clusters"))
		},
	}
	o.write = newWriteFlags(cmd, "installed")
	cmd.Flags().StringVar(&o.Clusters, "clusters", "", "Kubeconfig contexts to install into, comma separated (default: the current context).")
	return cmd
}

// Run applies the CRDs to every cluster; one cluster's failure does not
// stop the others, and is reported with its name.
func (o *CRDsInstallOptions) Run(ctx context.Context, clustersGiven bool) error {
	manifests, err := crds.Manifests()
	if err != nil {
		return err
	}
	if o.write.structured() && o.write.DryRun == cmdutil.DryRunClient {
		return o.write.printObjects(o.Out, manifests)
	}
	clusters, err := contextsToClusters(ctx, o.Loader, o.Clusters, clustersGiven)
	if err != nil {
		return err
	}
	var results []apply.Result
	errs := clusterset.ForEach(ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		if o.write.DryRun == cmdutil.DryRunClient {
			return nil
		}
		return crds.Apply(ctx, c.Dynamic, reconcile.FieldManager, o.write.DryRun == cmdutil.DryRunServer, manifests)
	})
	for i, c := range clusters {
		if errs[i] != nil {
			continue
		}
		for _, m := range manifests {
			results = append(results, apply.Result{Cluster: c.Context, Kind: "CustomResourceDefinition", Group: "apiextensions.k8s.io", Name: m.GetName(), Action: apply.Configured})
		}
	}
	if o.write.structured() {
		if err := o.write.printObjects(o.Out, manifests); err != nil {
			return err
		}
	} else {
		o.write.printResults(o.Out, results, homeContext(clusters))
	}
	return errors.Join(errs...)
}

// CRDsCheckOptions tells which MCS API versions each cluster serves.
type CRDsCheckOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Clusters      string
	clustersGiven bool
}

func newCmdCRDsCheck(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CRDsCheckOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "check [--clusters CONTEXT,...]",
		Short: "Tell which MCS API versions each cluster serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.clustersGiven = cmd.Flags().Changed("clusters")
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Clusters, "clusters", "", "Kubeconfig contexts to check, comma separated (default: the current context).")
	return cmd
}

// Run reads every cluster's CRDs in parallel and prints one line each; a
// cluster without them is an error with the command that installs them.
func (o *CRDsCheckOptions) Run(ctx context.Context) error {
	clusters, err := contextsToClusters(ctx, o.Loader, o.Clusters, o.clustersGiven)
	if err != nil {
		return err
	}
	lines := make([]string, len(clusters))
	errs := clusterset.ForEach(ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		served, err := servedCRDVersions(ctx, c)
		if err != nil {
			return err
		}
		if len(served) == 0 {
			return fmt.Errorf("the MCS CRDs are not installed (install them with: kubectl mcs crds install --context %s)", c.Context)
		}
		v, err := c.MCSVersion()
		if err != nil {
			return err
		}
		lines[slices.Index(clusters, c)] = fmt.Sprintf("%s: MCS API served (%s); kubectl mcs uses %s", c.Context, strings.Join(served, ", "), v)
		return nil
	})
	for i, l := range lines {
		if errs[i] == nil {
			fmt.Fprintln(o.Out, l)
		}
	}
	return errors.Join(errs...)
}

// servedCRDVersions lists the versions both MCS CRDs serve (from the CRD
// objects themselves, which also says whether they are installed at all).
func servedCRDVersions(ctx context.Context, c *clusterset.Cluster) ([]string, error) {
	installed, err := crds.ReadInstalled(ctx, c.Dynamic)
	if err != nil {
		return nil, err
	}
	return crds.CommonServed(installed), nil
}

// contextsToClusters connects the --clusters contexts, or the current one.
func contextsToClusters(ctx context.Context, loader *clusterset.Loader, list string, given bool) ([]*clusterset.Cluster, error) {
	var names []string
	if given {
		var err error
		if names, err = clusterset.ParseContextList("clusters", list); err != nil {
			return nil, err
		}
	} else {
		name, err := loader.CurrentContext()
		if err != nil {
			return nil, err
		}
		names = []string{name}
	}
	var out []*clusterset.Cluster
	var errs []error
	for _, n := range names {
		c, err := loader.Connect(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// homeContext is the context whose results need no prefix: the only one.
func homeContext(clusters []*clusterset.Cluster) string {
	if len(clusters) == 1 {
		return clusters[0].Context
	}
	return ""
}
