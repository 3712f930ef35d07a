package cmd

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/health"
)

func TestPrintCheckReport(t *testing.T) {
	r := health.Report{Categories: []health.Category{
		{Name: health.CategoryAPI, Checks: []health.Check{{Name: "API reachable", Cluster: "cluster1", Result: health.Pass, Message: "answers"}}},
		{Name: health.CategoryDNS, Checks: []health.Check{
			{Name: "serves clusterset.local", Cluster: "cluster2", Result: health.Fail, Message: "does not", Details: []string{"no zone"}, Fix: []string{"kubectl mcs dns --patch --context cluster2"}},
			{Name: "CoreDNS >= 1.12.2", Cluster: "cluster2", Result: health.Warn, Message: "cannot tell"},
		}},
	}}
	var out bytes.Buffer
	printCheckReport(&out, r)
	want := `Kubernetes API
--------------
✓ API reachable [cluster1]: answers

CoreDNS
-------
× serves clusterset.local [cluster2]: does not
    no zone
    fix: kubectl mcs dns --patch --context cluster2
‼ CoreDNS >= 1.12.2 [cluster2]: cannot tell

× 1 of 3 checks failed, 1 warning(s)
`
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestCheckValidate(t *testing.T) {
	for _, tc := range []struct {
		o    CheckOptions
		want string
	}{
		{CheckOptions{Output: "wide"}, `--output "wide" is not supported by check`},
		{CheckOptions{DNSServer: "10.96.0.10"}, "is not HOST:PORT"},
		{CheckOptions{DNSServer: "10.96.0.10:53", Pre: true}, "--pre does not look at"},
	} {
		tc.o.Loader = &clusterset.Loader{Flags: genericclioptions.NewConfigFlags(true)}
		err := tc.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}
