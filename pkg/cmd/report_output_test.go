package cmd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/resolve"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/status"
)

// statusOutputs are the -o values of outputs.txt: kubectl's template
// printers over the status document, and -o name.
var statusOutputs = []string{
	"jsonpath={.services[*].service}",
	`jsonpath={range .services[*]}{.namespace}/{.service} {.type} {.endpoints.ready}/{.endpoints.total}{"\n"}{end}`,
	`jsonpath={.clusters[?(@.context=="cluster2")].id}`,
	`go-template={{range .services}}{{.service}}:{{range .importedIn}} {{.cluster}}{{if .stale}}(STALE){{end}}{{end}}{{"\n"}}{{end}}`,
	"name",
}

var resolveOutputs = []string{
	"jsonpath={.names[*].answer}",
	`jsonpath={range .names[?(@.served==true)]}{.name} {.type} {.answer}{"\n"}{end}`,
	`go-template={{.consumer}} {{len .names}} names{{"\n"}}`,
}

// outputCommand is a command with the verb's -o flags, parsed from args.
func outputCommand(t *testing.T, own []string, withNames bool, args ...string) *reportOutput {
	t.Helper()
	cmd := &cobra.Command{Use: "test"}
	r := newReportOutput(cmd, own, withNames, "{}")
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := r.validate("test"); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStatusOutputsGolden prints each status case through kubectl's
// template printers and -o name (testdata/status/<case>/outputs.txt).
func TestStatusOutputsGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/status/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no status cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			states, now := loadStatusCase(t, filepath.Join(dir, "input.yaml"))
			report := status.Build(states, now)
			var got bytes.Buffer
			for _, o := range statusOutputs {
				r := outputCommand(t, []string{"wide", "dot", "mermaid"}, true, "-o", o)
				fmt.Fprintf(&got, "$ status -o '%s'\n", o)
				if o == "name" {
					err = r.printNames(&got, statusObjects(report))
				} else {
					err = r.printReport(&got, report)
				}
				if err != nil {
					t.Fatalf("-o %s: %v", o, err)
				}
				got.WriteString("\n")
			}
			golden(t, filepath.Join(dir, "outputs.txt"), got.Bytes())
		})
	}
}

// TestResolveOutputsGolden prints resolve answers through kubectl's
// template printers (testdata/status/seed/resolve-outputs.txt).
func TestResolveOutputsGolden(t *testing.T) {
	dir := filepath.Join("testdata", "status", "seed")
	report := seedResolveReport(t, dir, "mysql-0")
	var got bytes.Buffer
	for _, o := range resolveOutputs {
		r := outputCommand(t, nil, false, "-o", o)
		fmt.Fprintf(&got, "$ resolve mysql-0 -o '%s'\n", o)
		if err := r.printReport(&got, report); err != nil {
			t.Fatalf("-o %s: %v", o, err)
		}
		got.WriteString("\n")
	}
	golden(t, filepath.Join(dir, "resolve-outputs.txt"), got.Bytes())
}

func seedResolveReport(t *testing.T, dir, target string) resolve.Report {
	t.Helper()
	states, _ := loadStatusCase(t, filepath.Join(dir, "input.yaml"))
	setup := resolve.DNSSetup{Known: true, Source: "ConfigMap kube-system/coredns", ClusterSet: true}
	var state dns.State
	for _, st := range states {
		if st.Cluster.Context == "cluster2" {
			state = dns.State{ClusterID: "cluster2", Imports: st.Consumer.Imports, Services: st.Consumer.Services, EndpointSlices: st.Consumer.EndpointSlices}
		}
	}
	tgt, err := dns.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	report := resolve.Report{Consumer: "cluster2", Target: target, DNSSetup: setup}
	report.Names, report.Notes = resolve.Answers(state, setup, tgt, "provider-ns")
	return report
}

// TestTemplatesFollowKubectl holds -o jsonpath and -o go-template to what
// `kubectl get -o jsonpath|go-template` does with the JSON it would print
// as -o json: the template sees the -o json document as kubectl's decoder
// reads it (whole numbers as integers, not 2e+00), a missing key prints
// nothing (kubectl's --allow-missing-template-keys default), and
// --allow-missing-template-keys=false makes it an error; --template alone
// means go-template.
func TestTemplatesFollowKubectl(t *testing.T) {
	dir := filepath.Join("testdata", "status", "seed")
	states, now := loadStatusCase(t, filepath.Join(dir, "input.yaml"))
	report := status.Build(states, now)

	var js bytes.Buffer
	if err := outputCommand(t, nil, true, "-o", "json").printReport(&js, report); err != nil {
		t.Fatal(err)
	}
	// The document kubectl would evaluate: -o json's text, decoded as
	// kubectl decodes what it reads.
	content := map[string]any{}
	if err := utiljson.Unmarshal(js.Bytes(), &content); err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{
		"{.services[*].service}",
		"{.services[0].endpoints.ready}",
		"{range .services[*]}{.namespace}{\"\\t\"}{.ports[*]}{\"\\n\"}{end}",
		"{.services[*].noSuchField}",
	} {
		kubectl, err := printers.NewJSONPathPrinter(expr)
		if err != nil {
			t.Fatal(err)
		}
		kubectl.AllowMissingKeys(true)
		var want, got bytes.Buffer
		if err := kubectl.PrintObj(&unstructured.Unstructured{Object: content}, &want); err != nil {
			t.Fatal(err)
		}
		if err := outputCommand(t, nil, true, "-o", "jsonpath="+expr).printReport(&got, report); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("-o jsonpath=%s: got %q, kubectl's printer over -o json gives %q", expr, got.String(), want.String())
		}
	}
	var ready bytes.Buffer
	if err := outputCommand(t, nil, true, "-o", "jsonpath={.services[0].endpoints.ready}").printReport(&ready, report); err != nil {
		t.Fatal(err)
	}
	if ready.String() != "2" {
		t.Errorf("a count prints as %q, want 2 (an integer, as kubectl prints one)", ready.String())
	}

	var missing bytes.Buffer
	err := outputCommand(t, nil, true, "-o", "jsonpath={.nothing}", "--allow-missing-template-keys=false").printReport(&missing, report)
	if err == nil || !strings.Contains(err.Error(), "nothing is not found") {
		t.Errorf("a missing key with --allow-missing-template-keys=false: err %v, want kubectl's \"nothing is not found\"", err)
	}

	var tmpl bytes.Buffer
	if err := outputCommand(t, nil, true, "--template", "{{range .services}}{{.service}}{{end}}").printReport(&tmpl, report); err != nil {
		t.Fatal(err)
	}
	if tmpl.String() != "mysql" {
		t.Errorf("--template without -o printed %q, want go-template's mysql", tmpl.String())
	}
}

// TestOutputRefusals: what a verb cannot print is refused before any
// connection, naming what it can.
func TestOutputRefusals(t *testing.T) {
	for _, tc := range []struct {
		withNames bool
		args      []string
		want      string
	}{
		{false, []string{"-o", "name"}, `--output "name" is not supported by test (use wide, json, yaml, go-template`},
		{true, []string{"-o", "kyaml"}, `--output "kyaml" is not supported`},
		{true, []string{"-o", "jsonpath={.x"}, "error parsing jsonpath {.x"},
		{true, []string{"-o", "jsonpath"}, "template format specified but no template given"},
		{true, []string{"-o", "custom-columns=A:.a"}, `--output "custom-columns" is not supported`},
	} {
		cmd := &cobra.Command{Use: "test"}
		r := newReportOutput(cmd, []string{"wide"}, tc.withNames, "{}")
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := r.validate("test"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}
