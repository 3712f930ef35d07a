package cmd

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/exports"
)

// UnexportOptions deletes ServiceExports.
type UnexportOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services []string
	Force    bool

	write *writeFlags
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
	out, err := exports.Unexport(ctx, exports.Request{
		Cluster: c, Namespace: c.Namespace, Services: o.Services, Force: o.Force, DryRun: o.write.DryRun,
	})
	if out == nil || o.write.structured() && err != nil {
		return err
	}
	if o.write.structured() {
		return o.write.printObjects(o.Out, out.Objects)
	}
	// What was deleted before a failure, then the failure.
	o.write.printResults(o.Out, out.Results, c.Context)
	return err
}
