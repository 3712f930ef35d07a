package cmd

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/resolve"
)

// TestResolveGolden renders resolve's answers (table and json) from the
// consumer state of the status cases, for a known DNS setup (CoreDNS with
// multicluster, no vendor rewrite).
func TestResolveGolden(t *testing.T) {
	cases := []struct {
		status, consumer, namespace, target, golden string
	}{
		{"seed", "cluster2", "provider-ns", "mysql-0", "resolve-mysql-0"},
		{"seed", "cluster2", "provider-ns", "mysql", "resolve-mysql"},
		{"seed", "cluster2", "", "mysql-1.cluster1.mysql.provider-ns.svc.clusterset.local", "resolve-fqdn"},
		{"two-sources", "cluster2", "shop", "web", "resolve-web"},
		{"two-sources", "cluster2", "", "_http._tcp.web.shop.svc.clusterset.local", "resolve-srv"},
	}
	setup := resolve.DNSSetup{Known: true, Source: "ConfigMap kube-system/coredns", ClusterSet: true}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			dir := filepath.Join("testdata", "status", tc.status)
			states, _ := loadStatusCase(t, filepath.Join(dir, "input.yaml"))
			var state dns.State
			for _, st := range states {
				if st.Cluster.Context == tc.consumer {
					state = dns.State{ClusterID: tc.consumer, Imports: st.Consumer.Imports, Services: st.Consumer.Services, EndpointSlices: st.Consumer.EndpointSlices}
				}
			}
			target, err := dns.ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			report := resolve.Report{Consumer: tc.consumer, Target: tc.target, DNSSetup: setup}
			report.Names, report.Notes = resolve.Answers(state, setup, target, tc.namespace)
			if len(report.Names) == 0 {
				t.Fatalf("no names for %s", tc.target)
			}
			var table, js bytes.Buffer
			if err := printResolveReport(&table, report, false); err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(report, "", "    ")
			if err != nil {
				t.Fatal(err)
			}
			js.Write(append(b, '\n'))
			golden(t, filepath.Join(dir, tc.golden+".txt"), table.Bytes())
			golden(t, filepath.Join(dir, tc.golden+".json"), js.Bytes())
		})
	}
}
