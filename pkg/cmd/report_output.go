package cmd

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/printers"
)

// reportOutput is -o of the verbs that print a report rather than objects
// (status, resolve): the verb's own formats (its table, and wide, dot,
// mermaid where it has them), json and yaml of the report, and the rest of
// what kubectl's PrintFlags give: jsonpath and go-template (and their -file
// forms), evaluated by cli-runtime's printers over the same JSON document
// -o json prints, and name where a row of the report names an object.
type reportOutput struct {
	flags *genericclioptions.PrintFlags
	own   []string
}

// newReportOutput binds -o, --template and --allow-missing-template-keys.
// own are the verb's formats besides its table; withNames allows -o name;
// example is a jsonpath over the verb's document, for the help.
func newReportOutput(cmd *cobra.Command, own []string, withNames bool, example string) *reportOutput {
	r := &reportOutput{flags: genericclioptions.NewPrintFlags(""), own: own}
	if !withNames {
		r.flags.NamePrintFlags = nil
	}
	r.flags.OutputFlagSpecified = func() bool { return cmd.Flags().Changed("output") }
	cmd.Flags().StringVarP(r.flags.OutputFormat, "output", "o", "", "Output format: "+strings.Join(r.allowed(), "|")+
		". jsonpath and go-template are evaluated over the document -o json prints, e.g. -o jsonpath='"+example+"'.")
	r.flags.TemplatePrinterFlags.AddFlags(cmd)
	return r
}

func (r *reportOutput) allowed() []string {
	formats := slices.Clone(r.own)
	for _, f := range r.flags.AllowedFormats() {
		// kyaml needs a Kubernetes object (apiVersion, kind); the report
		// is not one.
		if f != "kyaml" && !slices.Contains(formats, f) {
			formats = append(formats, f)
		}
	}
	return formats
}

// format is the -o value without its template: "" for the verb's table,
// or go-template when only --template was given, as kubectl does.
func (r *reportOutput) format() string {
	format := strings.SplitN(*r.flags.OutputFormat, "=", 2)[0]
	if format == "" && *r.flags.TemplatePrinterFlags.TemplateArgument != "" {
		return "go-template"
	}
	return format
}

// own reports whether the verb prints the format itself (its table, wide,
// dot, mermaid, and json and yaml of its report).
func (r *reportOutput) ownFormat() bool {
	f := r.format()
	return f == "" || f == "json" || f == "yaml" || slices.Contains(r.own, f)
}

// validate rejects a format the verb does not print, and a template that
// does not parse, before any connection.
func (r *reportOutput) validate(verb string) error {
	if err := validateOutput(verb, r.format(), r.allowed()...); err != nil {
		return err
	}
	if r.ownFormat() {
		return nil
	}
	_, err := r.flags.ToPrinter()
	return err
}

// printReport prints the report as json or yaml, or through the template
// printer over its JSON document.
func (r *reportOutput) printReport(out io.Writer, report any) error {
	switch f := r.format(); f {
	case "json", "yaml":
		return printers.Structured(out, f, report)
	case "name":
		return fmt.Errorf("-o name prints objects, not this report")
	}
	printer, err := r.flags.ToPrinter()
	if err != nil {
		return err
	}
	doc, err := printers.Document(report)
	if err != nil {
		return err
	}
	return printer.PrintObj(doc, out)
}

// printNames prints -o name: kind.group/name per object, as kubectl get does.
func (r *reportOutput) printNames(out io.Writer, objects []*unstructured.Unstructured) error {
	printer, err := r.flags.ToPrinter()
	if err != nil {
		return err
	}
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
	for _, o := range objects {
		list.Items = append(list.Items, *o)
	}
	return printer.PrintObj(list, out)
}
