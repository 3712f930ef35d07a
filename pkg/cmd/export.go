package cmd

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/exports"
)

var exportExample = templates.Examples(`
	# Export the Service mysql of namespace provider-ns in cluster1
	kubectl mcs export mysql -n provider-ns --context cluster1

	# Export every Service of the namespace
	kubectl mcs export --all -n provider-ns --context cluster1

	# Show the ServiceExport that would be created, without creating it
	kubectl mcs export mysql -n provider-ns --dry-run=client -o yaml`)

// ExportOptions creates ServiceExports for Services of one cluster.
type ExportOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Services     []string
	All          bool
	AllowMissing bool

	write *writeFlags
	now   func() time.Time
}

// NewCmdExport builds `kubectl mcs export`.
func NewCmdExport(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ExportOptions{Loader: loader, IOStreams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "export SERVICE... [-n NAMESPACE | --all]",
		Short: "Expose Services to the clusterset (create their ServiceExports)",
		Long: templates.LongDesc(`
			Expose Services of the current context's cluster to the clusterset by creating
			a ServiceExport with the name and namespace of each Service, and write its Valid
			condition. Run "kubectl mcs import" in the consuming cluster to make it reachable there.

			An ExternalName Service cannot be exported, nor a Service kubectl mcs derived from an
			import (amcs-*). A Service that does not exist is an error unless
			--allow-missing-service is given (the MCS API lets an export wait for its Service).
			Nothing is written unless every named Service can be exported.`),
		Example: exportExample,
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
	o.write = newWriteFlags(cmd, "exported")
	cmd.Flags().BoolVar(&o.All, "all", false, "Export every Service of the namespace (ExternalName and derived Services are skipped).")
	cmd.Flags().BoolVar(&o.AllowMissing, "allow-missing-service", false, "Create the ServiceExport even if its Service does not exist yet.")
	return cmd
}

// Complete parses the flags; nothing is contacted yet.
func (o *ExportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Services = args
	return o.write.complete(cmd)
}

// Validate checks the arguments before anything is read.
func (o *ExportOptions) Validate() error {
	if err := validateServiceNames(o.Services); err != nil {
		return err
	}
	if o.All && len(o.Services) > 0 {
		return errors.New("give Service names or --all, not both")
	}
	if !o.All && len(o.Services) == 0 {
		return errors.New("name at least one Service to export (or pass --all)")
	}
	if o.All && o.AllowMissing {
		return errors.New("--allow-missing-service only applies to Services named on the command line, not --all")
	}
	return o.write.validate()
}

// Run exports the Services of the current context's cluster.
func (o *ExportOptions) Run(ctx context.Context) error {
	c, err := connectCurrent(ctx, o.Loader)
	if err != nil {
		return err
	}
	out, err := exports.Export(ctx, exports.Request{
		Cluster: c, Namespace: c.Namespace, Services: o.Services, All: o.All, AllowMissing: o.AllowMissing,
		DryRun: o.write.DryRun, MaxWritesInFlight: o.write.MaxWritesInFlight, Now: o.now(), Warnings: o.ErrOut,
	})
	if err != nil {
		return err
	}
	if o.write.structured() {
		return o.write.printObjects(o.Out, out.Objects)
	}
	o.write.printResults(o.Out, out.Results, c.Context)
	return nil
}
