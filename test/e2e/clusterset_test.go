package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// TestSyncOnceEveryClusterImports: `kubectl mcs sync` run once imports an
// export into every cluster of the clusterset where its namespace exists,
// the exporting cluster included (KEP-1645), with the ClusterSetIP's ips
// right after the first run, each object written once; a second run writes
// nothing, and the cluster without the namespace is named with the fix.
// `import --from` accepts the consumer among its sources.
func TestSyncOnceEveryClusterImports(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "sync-once"
	exporter, other := set.Cluster("cluster1"), set.Cluster("cluster2")
	if _, err := other.Create(ctx, "", []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	exportWeb(ctx, t, set, exporter, ns)

	// A server dry run of the new imports: the API servers check every
	// object, nothing is stored.
	dry := kubectlMCS(t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3", "--dry-run=server").mustSucceed(t)
	if !strings.Contains(dry.stdout, "cluster2: serviceimport.multicluster.x-k8s.io/web created (server dry run)") {
		t.Errorf("sync --dry-run=server output:\n%s", dry.stdout)
	}
	if _, err := getServiceImportErr(ctx, other, ns, "web"); err == nil {
		t.Errorf("sync --dry-run=server stored a ServiceImport in cluster2")
	}
	first := kubectlMCS(t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3").mustSucceed(t)
	for _, want := range []string{"cluster3: not imported: sync-once/web", "kubectl create namespace sync-once --context cluster3"} {
		if !strings.Contains(first.stderr, want) {
			t.Errorf("sync does not name the cluster without the namespace: stderr lacks %q:\n%s", want, first.stderr)
		}
	}
	for _, want := range []string{"cluster1: serviceimport.multicluster.x-k8s.io/web created", "cluster2: serviceimport.multicluster.x-k8s.io/web created"} {
		if !strings.Contains(first.stdout, want) {
			t.Errorf("sync output lacks %q:\n%s", want, first.stdout)
		}
	}
	for _, c := range []string{"cluster1", "cluster2"} {
		cl := set.Cluster(c)
		si := getServiceImport(ctx, t, cl, ns, "web")
		svc, err := cl.Client.CoreV1().Services(ns).Get(ctx, reconcile.DerivedServiceName("web"), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: derived Service: %v", c, err)
		}
		if si.Spec.Type != mcsv1beta1.ClusterSetIP || !slices.Equal(si.Spec.IPs, svc.Spec.ClusterIPs) || len(si.Spec.IPs) != 1 {
			t.Errorf("%s: ServiceImport type %s ips %v after one sync, want ClusterSetIP with the derived Service's %v", c, si.Spec.Type, si.Spec.IPs, svc.Spec.ClusterIPs)
		}
		if got := si.Annotations[reconcile.DerivedServiceAnnotation]; got != svc.Name {
			t.Errorf("%s: ServiceImport annotation %s = %q, want %q", c, reconcile.DerivedServiceAnnotation, got, svc.Name)
		}
		if got := clustersOf(si); !slices.Equal(got, []string{"cluster1"}) {
			t.Errorf("%s: ServiceImport status.clusters = %v, want [cluster1]", c, got)
		}
		bySource := mirroredBySource(ctx, t, cl, ns, "web")
		if len(bySource["cluster1"]) != 1 || len(bySource) != 1 {
			t.Errorf("%s: MCS EndpointSlices by source cluster = %v, want cluster1's endpoint only", c, bySource)
		}
	}
	if _, err := getServiceImportErr(ctx, set.Cluster("cluster3"), ns, "web"); err == nil {
		t.Errorf("cluster3 has no namespace %s, yet got a ServiceImport", ns)
	}

	// The derived Service stands for its service (k9s's Services view
	// passes amcs-web to the shortcuts).
	st := kubectlMCS(t, set.Kubeconfig, "status", "amcs-web", "-n", ns, "--context", "cluster2", "--clusters", "cluster1,cluster2").mustSucceed(t)
	if row := tableRow(t, st.stdout, "web"); row["TYPE"] != "ClusterSetIP" || row["IMPORTED IN"] != "cluster1,cluster2" {
		t.Errorf("status amcs-web: row %v, want web imported in cluster1,cluster2", row)
	}
	res := kubectlMCS(t, set.Kubeconfig, "resolve", "amcs-web", "-n", ns, "--context", "cluster2", "--clusters", "cluster1,cluster2").mustSucceed(t)
	if !strings.Contains(res.stdout, "derived Service of the ServiceImport sync-once/web") || !strings.Contains(res.stdout, "web.sync-once.svc.clusterset.local.") {
		t.Errorf("resolve amcs-web does not resolve web:\n%s", res.stdout)
	}
	again := kubectlMCS(t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3").mustSucceed(t)
	if n := again.totalWrites(); n != 0 {
		t.Errorf("second sync wrote %d times (%v), want nothing", n, again.writes)
	}
	// The exporter may name itself among the sources of an import.
	self := kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster1").mustSucceed(t)
	if n := self.totalWrites(); n != 0 {
		t.Errorf("import --from cluster1,cluster2 --context cluster1 after the sync wrote %d times, want nothing", n)
	}
	kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster1").mustSucceed(t)

	// The watch mode says it once per cluster and namespace, not at every
	// sync: touch the export's Service a few times to make it sync again.
	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan pluginRun, 1)
	go func() {
		done <- kubectlMCSContext(watchCtx, t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3", "--watch")
	}()
	for i := range 3 {
		time.Sleep(time.Second)
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"touch":"%d"}}}`, i))
		if _, err := exporter.Client.CoreV1().Services(ns).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	stop()
	watch := <-done
	if n := strings.Count(watch.stderr, "cluster3: not importing sync-once/web"); n != 1 {
		t.Errorf("the watch named cluster3's missing namespace %d times, want once:\n%s", n, watch.stderr)
	}
	if n := watch.totalWrites(); n != 0 {
		t.Errorf("the watch wrote %d times with nothing to change (%v)", n, watch.writes)
	}
}
