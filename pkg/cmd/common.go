package cmd

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
)

// writeFlags are the flags of every verb that writes: --dry-run, -o and
// --max-writes-in-flight.
type writeFlags struct {
	PrintFlags *genericclioptions.PrintFlags
	DryRun     cmdutil.DryRunStrategy
	// MaxWritesInFlight bounds the write requests in flight to one cluster.
	MaxWritesInFlight int
	cmd               *cobra.Command
}

func newWriteFlags(cmd *cobra.Command, operation string) *writeFlags {
	f := &writeFlags{PrintFlags: genericclioptions.NewPrintFlags(operation), cmd: cmd}
	// No default format: the default output is one kubectl-style line per
	// object, whose verb (created, unchanged, ...) varies per object.
	f.PrintFlags.OutputFlagSpecified = nil
	cmd.Flags().StringVarP(f.PrintFlags.OutputFormat, "output", "o", "", "Output format, as kubectl's: "+strings.Join(f.PrintFlags.AllowedFormats(), "|")+
		". Prints the objects as applied (or, with --dry-run=client, as they would be applied) instead of one line per object.")
	cmd.Flags().StringVar(f.PrintFlags.TemplatePrinterFlags.TemplateArgument, "template", "", "Template string or path to template file to use when -o=go-template, -o=go-template-file, -o=jsonpath or -o=jsonpath-file.")
	cmdutil.AddDryRunFlag(cmd)
	cmd.Flags().IntVar(&f.MaxWritesInFlight, "max-writes-in-flight", apply.DefaultMaxWritesInFlight,
		fmt.Sprintf("Write requests in flight to each cluster at once (1-%d). Clusters are written at the same time, each up to this bound; "+
			"far-away clusters sync faster with more, 1 writes one object at a time.", apply.MaxWritesInFlightLimit))
	return f
}

func (f *writeFlags) complete(cmd *cobra.Command) error {
	var err error
	f.DryRun, err = cmdutil.GetDryRunStrategy(cmd)
	return err
}

func (f *writeFlags) validate() error {
	if f.MaxWritesInFlight < 1 || f.MaxWritesInFlight > apply.MaxWritesInFlightLimit {
		return fmt.Errorf("--max-writes-in-flight=%d is out of range: give 1 to %d (default %d)", f.MaxWritesInFlight, apply.MaxWritesInFlightLimit, apply.DefaultMaxWritesInFlight)
	}
	return validateOutput(f.cmd.CommandPath(), strings.SplitN(*f.PrintFlags.OutputFormat, "=", 2)[0], f.PrintFlags.AllowedFormats()...)
}

// structured reports whether -o json|yaml was asked for.
func (f *writeFlags) structured() bool { return *f.PrintFlags.OutputFormat != "" }

// printResults prints one kubectl-style line per result, with the dry-run
// suffix kubectl uses. Results of clusters other than home (the context the
// command acts on) start with that cluster's context name.
func (f *writeFlags) printResults(out io.Writer, results []apply.Result, home string) {
	suffix := apply.DryRunSuffix(f.DryRun)
	for _, r := range results {
		if r.Cluster != home {
			fmt.Fprintf(out, "%s: %s%s\n", r.Cluster, r, suffix)
		} else {
			fmt.Fprintf(out, "%s%s\n", r, suffix)
		}
	}
}

// printObjects prints objects as json or yaml: one object alone, several as
// a v1 List, as kubectl does.
func (f *writeFlags) printObjects(out io.Writer, objs []*unstructured.Unstructured) error {
	printer, err := f.PrintFlags.ToPrinter()
	if err != nil {
		return err
	}
	if len(objs) == 1 {
		return printer.PrintObj(objs[0], out)
	}
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{}}}
	for _, o := range objs {
		list.Items = append(list.Items, *o)
	}
	var obj runtime.Object = list
	return printer.PrintObj(obj, out)
}

// print reports one sync: the namespaces it created, then, with -o, the
// consumer objects as applied (only when the sync succeeded, so that a
// partial List is never mistaken for the result), else one line per object.
// Objects of a sync over several consumers are printed as one List; each
// object's cluster is in its line's prefix in the default output.
func (f *writeFlags) print(out io.Writer, report engine.Report, home string, syncErr error) error {
	if f.structured() {
		if syncErr != nil {
			return nil
		}
		objs := make([]*unstructured.Unstructured, len(report.Objects))
		for i, a := range report.Objects {
			objs[i] = a.Object
		}
		return f.printObjects(out, objs)
	}
	f.printResults(out, append(slices.Clone(report.Namespaces), report.Results...), home)
	return nil
}

// validateOutput rejects an -o value the verb does not print; "" (the
// verb's own table or lines) is always allowed.
func validateOutput(verb, value string, allowed ...string) error {
	if value == "" || slices.Contains(allowed, value) {
		return nil
	}
	return fmt.Errorf("--output %q is not supported by %s (use %s)", value, verb, strings.Join(allowed, ", "))
}

// validateServiceNames rejects, before any request, a name no Service can
// have (a DNS-1035 label), instead of reporting it later as not found.
func validateServiceNames(names []string) error {
	for _, name := range names {
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid Service name: %s", name, strings.Join(errs, "; "))
		}
	}
	return nil
}
