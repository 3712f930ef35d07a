// Package cmd holds the `kubectl mcs` command tree: one file per verb, each
// following kubectl's Options pattern (Complete, Validate, Run).
package cmd

import (
	"errors"
	"flag"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	// Load every client-go auth provider (OIDC, exec, ...) so any kubeconfig
	// that works with kubectl works with the plugin.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/completion"
)

var rootLong = templates.LongDesc(`
	Multi-Cluster Services (MCS API, multicluster.x-k8s.io) across your kubeconfig contexts.

	kubectl mcs exports a Service from one cluster, imports it into another by doing
	on demand what an MCS controller would do (ServiceImport, derived Service and
	EndpointSlices in the consumer, status conditions on the exports), shows the
	whole clusterset in one table, and tells which DNS names reach a pod.`)

var rootExample = templates.Examples(`
	# Expose the headless Service mysql of cluster1 to the clusterset
	kubectl mcs export mysql -n provider-ns --context cluster1

	# Make it reachable from cluster2
	kubectl mcs import mysql -n provider-ns --from cluster1 --context cluster2`)

// NewCmdMCS builds the root `kubectl mcs` command with kubectl's standard
// connection flags (--kubeconfig, --context, -n, --request-timeout, ...).
func NewCmdMCS(streams genericiooptions.IOStreams) *cobra.Command {
	return NewCmdMCSWithLoader(streams, &clusterset.Loader{Flags: genericclioptions.NewConfigFlags(true)})
}

// NewCmdMCSWithLoader builds the root command around a given loader, whose
// Flags become the command's connection flags (tests hook OnConnect).
func NewCmdMCSWithLoader(streams genericiooptions.IOStreams, loader *clusterset.Loader) *cobra.Command {
	configFlags := loader.Flags
	if loader.Warnings == nil {
		// The clusters' warnings (e.g. an id from the context name although
		// the ClusterProperty CRD is served) go where errors go.
		loader.Warnings = streams.ErrOut
	}
	cmd := &cobra.Command{
		Use:     "mcs",
		Short:   "Export, import, inspect and resolve Multi-Cluster Services",
		Long:    rootLong,
		Example: rootExample,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl mcs",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	configFlags.AddFlags(cmd.PersistentFlags())
	addLogFlags(cmd)

	cmd.AddCommand(
		NewCmdExport(loader, streams),
		NewCmdUnexport(loader, streams),
		NewCmdImport(loader, streams),
		NewCmdSync(loader, streams),
		NewCmdStatus(loader, streams),
		NewCmdResolve(loader, streams),
		NewCmdDNS(loader, streams),
		NewCmdCRDs(loader, streams),
		NewCmdCheck(loader, streams),
		NewCmdVersion(streams),
		newCmdCompletion(streams),
	)
	completion.Register(cmd, loader, quietClientLogs)
	return cmd
}

// ExitError carries a specific exit code; errors that were already reported
// (for example per-cluster failures printed beside the results) use it with
// an empty message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Execute runs the command and turns its error into kubectl's convention:
// "error: ..." on stderr and exit code 1.
func Execute(cmd *cobra.Command, streams genericiooptions.IOStreams) int {
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	code := 1
	var exitErr *ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.Code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(streams.ErrOut, "error: %s\n", msg)
	}
	return code
}

// addLogFlags adds kubectl's -v. At the default level client-go's own log
// lines (e.g. discovery retries against an unreachable cluster) are
// dropped: every error that matters reaches the user through the command,
// named after its cluster.
func addLogFlags(cmd *cobra.Command) {
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	verbosity := klogFlags.Lookup("v")
	cmd.PersistentFlags().AddGoFlag(verbosity)
	cmd.PersistentFlags().Lookup("v").Shorthand = "v"
	cmd.PersistentPreRun = func(*cobra.Command, []string) {
		if verbosity.Value.String() == "0" {
			quietClientLogs()
		}
	}
}
