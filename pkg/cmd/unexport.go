package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// UnexportOptions deletes ServiceExports.
type UnexportOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services []string
	Force    bool

	write     *writeFlags
	cluster   *clusterset.Cluster
	namespace string
}

// NewCmdUnexport builds `kubectl mcs unexport`.
func NewCmdUnexport(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UnexportOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "unexport SERVICE... [-n NAMESPACE]",
		Short: "Stop exporting Services (delete their ServiceExports)",
		Long: templates.LongDesc(`
			Delete the ServiceExports of the named Services in the current context's cluster.
			The next "kubectl mcs import" in each consumer removes the service's endpoints from
			this cluster, and the ServiceImport once no cluster exports it any more.

			Only exports created (or adopted) by "kubectl mcs export" are deleted; pass --force
			to delete one made by other means.`),
		Example: templates.Examples(`
			kubectl mcs unexport mysql -n provider-ns --context cluster1`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.write = newWriteFlags(cmd, "deleted")
	cmd.Flags().BoolVar(&o.Force, "force", false, "Also delete ServiceExports that kubectl mcs did not create.")
	return cmd
}

// Complete parses the flags; nothing is contacted yet.
func (o *UnexportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Services = args
	return o.write.complete(cmd)
}

// Validate checks the arguments before anything is read.
func (o *UnexportOptions) Validate() error {
	if len(o.Services) == 0 {
		return errors.New("name at least one Service to unexport")
	}
	if err := validateServiceNames(o.Services); err != nil {
		return err
	}
	return o.write.validate()
}

// Run checks every named export before deleting any.
func (o *UnexportOptions) Run(ctx context.Context) error {
	c, err := connectCurrent(ctx, o.Loader)
	if err != nil {
		return err
	}
	o.cluster, o.namespace = c, c.Namespace
	gvr, err := c.MCSResource(clusterset.ServiceExports)
	if err != nil {
		return err
	}
	existing, err := listExports(ctx, c, o.namespace)
	if err != nil {
		return err
	}
	var problems []error
	for _, name := range o.Services {
		e := existing[name]
		switch {
		case e == nil:
			problems = append(problems, c.Errorf("ServiceExport %s/%s not found (check -n/--context; `kubectl mcs status` lists the exports)", o.namespace, name))
		case e.Labels[reconcile.ManagedByLabel] != reconcile.FieldManager && !o.Force:
			problems = append(problems, c.Errorf("ServiceExport %s/%s was not created by kubectl mcs (no label %s=%s); pass --force to delete it anyway",
				o.namespace, name, reconcile.ManagedByLabel, reconcile.FieldManager))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing was deleted:\n%w", errors.Join(problems...))
	}
	w := &apply.Writer{Client: c.Dynamic, FieldManager: reconcile.FieldManager, DryRun: o.write.DryRun}
	var results []apply.Result
	var deleted []*unstructured.Unstructured
	for _, name := range o.Services {
		if err := w.Delete(ctx, gvr, o.namespace, name, string(existing[name].UID)); err != nil {
			return c.Errorf("deleting ServiceExport %s/%s: %w", o.namespace, name, err)
		}
		results = append(results, apply.Result{Cluster: c.Context, Kind: "ServiceExport", Group: gvr.Group, Namespace: o.namespace, Name: name, Action: apply.Deleted})
		obj, err := apply.ToUnstructured(existing[name], gvr.GroupVersion().WithKind("ServiceExport"))
		if err != nil {
			return err
		}
		deleted = append(deleted, obj)
	}
	if o.write.structured() {
		return o.write.printObjects(o.Out, deleted)
	}
	o.write.printResults(o.Out, results, c.Context)
	return nil
}
