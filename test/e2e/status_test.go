package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestStatusShowsDrift: status lists an export and its import; when the
// source's endpoints change, the import is STALE with the fixing command,
// and running that command clears it.
func TestStatusShowsDrift(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "status-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	exportWeb(ctx, t, set, provider, ns)
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)

	status := kubectlMCS(t, set.Kubeconfig, "status", "-n", ns, "--clusters", "cluster1,cluster2,cluster3").mustSucceed(t)
	row := tableRow(t, status.stdout, "web")
	for col, want := range map[string]string{
		"NAMESPACE": ns, "TYPE": "ClusterSetIP", "EXPORTED BY": "cluster1", "IMPORTED IN": "cluster2",
		"PORTS": "http:80/TCP", "ENDPOINTS": "1/1", "CONFLICT": "-",
	} {
		if row[col] != want {
			t.Errorf("status column %s = %q, want %q", col, row[col], want)
		}
	}

	if _, err := provider.Client.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForReadyEndpoints(ctx, t, provider, ns, "web", 2)
	stale := kubectlMCS(t, set.Kubeconfig, "status", "-n", ns, "--clusters", "cluster1,cluster2,cluster3").mustSucceed(t)
	if got := tableRow(t, stale.stdout, "web")["IMPORTED IN"]; got != "cluster2(STALE)" {
		t.Errorf("IMPORTED IN = %q after the source scaled, want cluster2(STALE)", got)
	}
	fix := "kubectl mcs import web -n status-ns --from cluster1 --context cluster2"
	if !strings.Contains(stale.stdout, fix) {
		t.Errorf("status does not show the fix %q:\n%s", fix, stale.stdout)
	}
	kubectlMCS(t, set.Kubeconfig, strings.Fields(strings.TrimPrefix(fix, "kubectl mcs "))...).mustSucceed(t)
	fresh := kubectlMCS(t, set.Kubeconfig, "status", "-n", ns, "--clusters", "cluster1,cluster2,cluster3", "-o", "wide").mustSucceed(t)
	row = tableRow(t, fresh.stdout, "web")
	if row["IMPORTED IN"] != "cluster2" || row["ENDPOINTS"] != "2/2" {
		t.Errorf("after the fix: IMPORTED IN %q ENDPOINTS %q, want cluster2 and 2/2", row["IMPORTED IN"], row["ENDPOINTS"])
	}
	if row["DERIVED"] != "amcs-web" || !strings.Contains(row["DNS"], "web.status-ns.svc.clusterset.local") || row["IPS"] == "-" {
		t.Errorf("wide columns DERIVED %q DNS %q IPS %q", row["DERIVED"], row["DNS"], row["IPS"])
	}
}

// TestStatusWithStoppedCluster: one of three clusters is down; the other
// two are shown, the stopped one is named, the exit code is 1, and the
// command returns within the request timeout.
func TestStatusWithStoppedCluster(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	ns := "down-ns"
	for _, name := range []string{"cluster1", "cluster2"} {
		exportWeb(ctx, t, set, set.Cluster(name), ns)
	}
	set.Cluster("cluster3").StopAPIServer()

	start := time.Now()
	run := kubectlMCS(t, set.Kubeconfig, "status", "-A", "--clusters", "cluster1,cluster2,cluster3", "--request-timeout", "5s")
	elapsed := time.Since(start)
	run.mustFail(t, "cluster3")
	if got := tableRow(t, run.stdout, "web")["EXPORTED BY"]; got != "cluster1,cluster2" {
		t.Errorf("EXPORTED BY = %q, want cluster1,cluster2 (the reachable clusters)", got)
	}
	if elapsed > 6*time.Second {
		t.Errorf("status took %s with a 5s request timeout", elapsed)
	}
}

// tableRow parses a kubectl-style table and returns the row whose SERVICE
// column is service, as header -> cell.
func tableRow(t *testing.T, table, service string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("no table in:\n%s", table)
	}
	header := lines[0]
	// Column starts are where header words begin after a run of spaces.
	var starts []int
	for i := range header {
		if header[i] != ' ' && (i == 0 || (i >= 2 && header[i-1] == ' ' && header[i-2] == ' ')) {
			starts = append(starts, i)
		}
	}
	cell := func(line string, i int) string {
		if starts[i] >= len(line) {
			return ""
		}
		end := len(line)
		if i+1 < len(starts) && starts[i+1] < end {
			end = starts[i+1]
		}
		return strings.TrimSpace(line[starts[i]:end])
	}
	for _, line := range lines[1:] {
		row := map[string]string{}
		for i := range starts {
			row[cell(header, i)] = cell(line, i)
		}
		if row["SERVICE"] == service {
			return row
		}
	}
	t.Fatalf("no row for service %s in:\n%s", service, table)
	return nil
}
