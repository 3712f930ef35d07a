package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// manyServices is a manifest of n headless Services without selectors,
// each with a hand-made EndpointSlice of `endpoints` ready endpoints with
// hostnames: a big export without waiting for pods.
func manyServices(n, endpoints, cluster int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata:
  name: db-%[1]d
spec:
  clusterIP: None
  ports: [{name: sql, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-%[1]d-hand
  labels: {kubernetes.io/service-name: db-%[1]d, endpointslice.kubernetes.io/managed-by: e2e-test}
addressType: IPv4
ports: [{name: sql, port: 5432, protocol: TCP}]
endpoints:
`, i)
		for j := range endpoints {
			// 198.18.128.0/17 is clear of the pod stand-in's ranges.
			n := i*endpoints + j + 1
			fmt.Fprintf(&b, "- {addresses: [198.18.%d.%d], hostname: db-%d-%d, conditions: {ready: true}}\n", 128+cluster*16+n/256, n%256, i, j)
		}
	}
	return b.String()
}

// TestConcurrentImports: two imports of the same services at once converge
// (no duplicate slices, no lost endpoints, update races retried), and a
// third run then has nothing left to do.
func TestConcurrentImports(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "race-ns"
	if _, err := set.Cluster("cluster1").Create(ctx, ns, []byte(namespaceManifest(ns)+manyServices(10, 20, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Cluster("cluster2").Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", "cluster1").mustSucceed(t)
	var wg sync.WaitGroup
	runs := make([]pluginRun, 2)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = kubectlMCS(t, set.Kubeconfig, "import", "-n", ns, "--from", "cluster1", "--context", "cluster2")
		}()
	}
	wg.Wait()
	for _, r := range runs {
		r.mustSucceed(t)
	}
	for i := range 10 {
		svc := fmt.Sprintf("db-%d", i)
		got := mirroredHostnames(ctx, t, set.Cluster("cluster2"), ns, svc)
		if len(got) != 20 {
			t.Errorf("%s: %d mirrored endpoints after concurrent imports, want 20", svc, len(got))
		}
	}
	list, err := set.Cluster("cluster2").Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelManagedBy + "=" + reconcile.FieldManager})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 10 {
		t.Errorf("%d mirrored slices, want 10 (one per service)", len(list.Items))
	}
	third := kubectlMCS(t, set.Kubeconfig, "import", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	if third.totalWrites() != 0 {
		t.Errorf("a run after the concurrent ones wrote %d times, want 0", third.totalWrites())
	}
}

// TestSourceUnreachableAndRestart: with a source's apiserver down, the other
// source is synced, the down source's endpoints are kept and its cluster
// listed as not synced, and the command fails within --request-timeout;
// once the apiserver is back, the next run converges.
func TestSourceUnreachableAndRestart(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	ns := "fault-ns"
	for i, name := range []string{"cluster1", "cluster3"} {
		if _, err := set.Cluster(name).Create(ctx, ns, []byte(namespaceManifest(ns)+manyServices(1, 3, i))); err != nil {
			t.Fatal(err)
		}
		kubectlMCS(t, set.Kubeconfig, "export", "db-0", "-n", ns, "--context", name).mustSucceed(t)
	}
	consumer := set.Cluster("cluster2")
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	importArgs := []string{"import", "db-0", "-n", ns, "--from", "cluster1,cluster3", "--context", "cluster2", "--request-timeout", "5s"}
	kubectlMCS(t, set.Kubeconfig, importArgs...).mustSucceed(t)
	before := mirroredBySource(ctx, t, consumer, ns, "db-0")
	if len(before["cluster1"]) != 3 || len(before["cluster3"]) != 3 || slices.Equal(before["cluster1"], before["cluster3"]) {
		t.Fatalf("mirrored endpoints per source %v, want 3 from each", before)
	}

	// cluster1 changes, cluster3 goes down.
	if _, err := set.Cluster("cluster1").Create(ctx, ns, []byte(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-0-extra
  labels: {kubernetes.io/service-name: db-0, endpointslice.kubernetes.io/managed-by: e2e-test}
addressType: IPv4
endpoints: [{addresses: [198.18.200.250], hostname: db-0-extra, conditions: {ready: true}}]
ports: [{name: sql, port: 5432, protocol: TCP}]
`)); err != nil {
		t.Fatal(err)
	}
	set.Cluster("cluster3").StopAPIServer()
	start := time.Now()
	down := kubectlMCS(t, set.Kubeconfig, importArgs...)
	elapsed := time.Since(start)
	down.mustFail(t, "cluster3", "cannot reach", "kept")
	if elapsed > 10*time.Second {
		t.Errorf("import with a source down took %s, want within the 5s request timeout (plus start-up)", elapsed)
	}
	after := mirroredBySource(ctx, t, consumer, ns, "db-0")
	if len(after["cluster1"]) != 4 {
		t.Errorf("cluster1 endpoints %v, want 4 (the reachable source is synced)", after["cluster1"])
	}
	if !reflect.DeepEqual(after["cluster3"], before["cluster3"]) {
		t.Errorf("cluster3 endpoints %v, want them kept as %v", after["cluster3"], before["cluster3"])
	}
	si := getServiceImport(ctx, t, consumer, ns, "db-0")
	if got := clustersOf(si); !slices.Equal(got, []string{"cluster1", "cluster3"}) {
		t.Errorf("status.clusters %v, want both (cluster3 kept)", got)
	}
	if len(si.Status.Conditions) == 0 || !strings.Contains(si.Status.Conditions[0].Message, "cluster3") {
		t.Errorf("ServiceImport conditions %v do not say cluster3 is kept from an earlier sync", si.Status.Conditions)
	}

	// The apiserver comes back (a restart between runs): the next run converges.
	if err := set.Cluster("cluster3").StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, set.Kubeconfig, importArgs...).mustSucceed(t)
	again := kubectlMCS(t, set.Kubeconfig, importArgs...).mustSucceed(t)
	if again.totalWrites() != 0 {
		t.Errorf("after the restart, a second run wrote %d times", again.totalWrites())
	}
	if si := getServiceImport(ctx, t, consumer, ns, "db-0"); strings.Contains(si.Status.Conditions[0].Message, "kept") {
		t.Errorf("after the restart the import still says %q", si.Status.Conditions[0].Message)
	}
}

func mirroredBySource(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, service string) map[string][]string {
	t.Helper()
	eps, err := mcsEndpoints(ctx, c, ns, service, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, ep := range eps {
		if ep.address != "" {
			out[ep.source] = append(out[ep.source], ep.address)
		}
	}
	for _, addrs := range out {
		slices.Sort(addrs)
	}
	return out
}

// TestKilledImportConverges kills the plugin binary with SIGKILL at random
// points of an import of many services; a re-run must always reach exactly
// the state an uninterrupted import produces in another consumer.
// MCS_SOAK_ITERATIONS sets the number of kills (default 5; make soak: 20).
func TestKilledImportConverges(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	iterations := 5
	if v, err := strconv.Atoi(os.Getenv("MCS_SOAK_ITERATIONS")); err == nil && v > 0 {
		iterations = v
	}
	binary := pluginrun.Binary(t)
	ns := "kill-ns"
	if _, err := set.Cluster("cluster1").Create(ctx, ns, []byte(namespaceManifest(ns)+manyServices(40, 10, 1))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cluster2", "cluster3"} {
		if _, err := set.Cluster(name).Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
			t.Fatal(err)
		}
	}
	kubectlMCS(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", "cluster1").mustSucceed(t)

	// The reference: an uninterrupted run of the same binary into cluster3,
	// timed, so the kill points below fall within a run.
	start := time.Now()
	if out, err := exec.CommandContext(ctx, binary, "--kubeconfig", set.Kubeconfig, "import", "-n", ns, "--from", "cluster1", "--context", "cluster3").CombinedOutput(); err != nil {
		t.Fatalf("reference import: %v\n%s", err, out)
	}
	full := time.Since(start)
	want := consumerState(ctx, t, set.Cluster("cluster3"), ns)
	if len(want) != 3*40 {
		t.Fatalf("reference state has %d objects, want 120", len(want))
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range iterations {
		clearManaged(ctx, t, set.Cluster("cluster2"), ns)
		delay := time.Duration(rng.Int64N(int64(full)))
		cmd := exec.CommandContext(ctx, binary, "--kubeconfig", set.Kubeconfig, "import", "-n", ns, "--from", "cluster1", "--context", "cluster2")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		partial := len(consumerState(ctx, t, set.Cluster("cluster2"), ns))
		kubectlMCS(t, set.Kubeconfig, "import", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
		got := consumerState(ctx, t, set.Cluster("cluster2"), ns)
		t.Logf("kill %d: after %s (a full run takes %s): %d of %d objects written before the kill", i+1, delay.Round(time.Millisecond), full.Round(time.Millisecond), partial, len(want))
		if !reflect.DeepEqual(got, want) {
			for name, w := range want {
				if !reflect.DeepEqual(got[name], w) {
					t.Errorf("kill %d: %s differs from the uninterrupted run:\n got %v\nwant %v", i+1, name, got[name], w)
					break
				}
			}
			t.Fatalf("kill %d: the re-run did not converge (%d objects, want %d)", i+1, len(got), len(want))
		}
	}
}

var managedKinds = []schema.GroupVersionResource{
	{Group: "multicluster.x-k8s.io", Version: "v1beta1", Resource: "serviceimports"},
	{Version: "v1", Resource: "services"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
}

// consumerState returns the objects kubectl mcs manages in a namespace,
// keyed by kind/name, reduced to what must be equal between two consumers
// (no uid, resourceVersion, timestamps or allocated cluster IPs).
func consumerState(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, gvr := range managedKinds {
		list, err := c.Dynamic().Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range list.Items {
			labels := item.GetLabels()
			if labels[reconcile.ManagedByLabel] != reconcile.FieldManager && labels[discoveryv1.LabelManagedBy] != reconcile.FieldManager {
				continue
			}
			obj := item.DeepCopy().Object
			for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"} {
				unstructured.RemoveNestedField(obj, "metadata", f)
			}
			unstructured.RemoveNestedField(obj, "spec", "clusterIP")
			unstructured.RemoveNestedField(obj, "spec", "clusterIPs")
			if conds, ok, _ := unstructured.NestedSlice(obj, "status", "conditions"); ok {
				for _, cnd := range conds {
					delete(cnd.(map[string]any), "lastTransitionTime")
				}
				_ = unstructured.SetNestedSlice(obj, conds, "status", "conditions")
			}
			out[gvr.Resource+"/"+item.GetName()] = obj
		}
	}
	return out
}

// clearManaged deletes what kubectl mcs made in a namespace, so the next
// import starts from nothing.
func clearManaged(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string) {
	t.Helper()
	for _, gvr := range managedKinds {
		selector := reconcile.ManagedByLabel + "=" + reconcile.FieldManager
		if gvr.Resource == "endpointslices" {
			selector = discoveryv1.LabelManagedBy + "=" + reconcile.FieldManager
		}
		list, err := c.Dynamic().Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range list.Items {
			if err := c.Dynamic().Resource(gvr).Namespace(ns).Delete(ctx, item.GetName(), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
