package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestSeedWalkthrough is the seed scenario with kubectl mcs: cluster1 runs
// the MySQL StatefulSet, cluster2 has the hand-made Headless ServiceImport
// of seed step 2; export in cluster1, import into cluster2, and every DNS
// name of the seed resolves through a real CoreDNS serving cluster2.
func TestSeedWalkthrough(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	ns := fixtures.SeedNamespaceName
	applySeedWorkload(ctx, t, provider)
	pods := waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0", "mysql-1")

	// Seed step 2, by hand, as the guide instructs.
	for _, file := range []string{fixtures.SeedNamespace, fixtures.SeedServiceImport} {
		if _, err := consumer.Create(ctx, ns, fixtures.MustRead(file)); err != nil {
			t.Fatal(err)
		}
	}

	out := kubectlMCS(t, set.Kubeconfig, "export", "mysql", "-n", ns, "--context", "cluster1").mustSucceed(t)
	if want := "serviceexport.multicluster.x-k8s.io/mysql created\n"; out.stdout != want {
		t.Errorf("export printed %q, want %q", out.stdout, want)
	}
	// kubectl's printers: -o name and -o jsonpath over the objects the
	// import would apply, without sending anything.
	names := kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2", "--dry-run=client", "-o", "name").mustSucceed(t)
	if want := "service/amcs-mysql\nserviceimport.multicluster.x-k8s.io/mysql\nendpointslice.discovery.k8s.io/amcs-mysql.cluster1-ipv4-0\n"; names.stdout != want {
		t.Errorf("import -o name printed %q, want %q", names.stdout, want)
	}
	paths := kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2", "--dry-run=client",
		"-o", "jsonpath={.items[*].metadata.name}").mustSucceed(t)
	if want := "amcs-mysql mysql amcs-mysql.cluster1-ipv4-0"; paths.stdout != want {
		t.Errorf("import -o jsonpath printed %q, want %q", paths.stdout, want)
	}
	if n := names.totalWrites() + paths.totalWrites(); n != 0 {
		t.Errorf("client dry runs wrote %d times", n)
	}
	imp := kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	for _, line := range []string{
		"serviceimport.multicluster.x-k8s.io/mysql configured", // the hand-made one, adopted
		"service/amcs-mysql created",
		"endpointslice.discovery.k8s.io/amcs-mysql.cluster1-ipv4-0 created",
	} {
		if !strings.Contains(imp.stdout, line) {
			t.Errorf("import output lacks %q", line)
		}
	}

	si := getServiceImport(ctx, t, consumer, ns, "mysql")
	if si.Spec.Type != mcsv1beta1.Headless {
		t.Errorf("ServiceImport type %q, want Headless", si.Spec.Type)
	}
	if len(si.Spec.Ports) != 1 || si.Spec.Ports[0].Name != "tcp" || si.Spec.Ports[0].Port != 3306 || si.Spec.Ports[0].Protocol != "TCP" {
		t.Errorf("ServiceImport ports %+v, want [tcp 3306/TCP]", si.Spec.Ports)
	}
	if len(si.Spec.IPs) != 0 {
		t.Errorf("Headless ServiceImport has ips %v", si.Spec.IPs)
	}
	if got := clustersOf(si); !slices.Equal(got, []string{"cluster1"}) {
		t.Errorf("ServiceImport status.clusters %v, want [cluster1]", got)
	}
	if si.Labels[reconcile.ManagedByLabel] != reconcile.FieldManager {
		t.Errorf("hand-made ServiceImport was not adopted: labels %v", si.Labels)
	}
	derived, err := consumer.Client.CoreV1().Services(ns).Get(ctx, "amcs-mysql", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("derived Service: %v", err)
	}
	if derived.Spec.ClusterIP != "None" || len(derived.Spec.Selector) != 0 {
		t.Errorf("derived Service: clusterIP %q selector %v, want headless without selector", derived.Spec.ClusterIP, derived.Spec.Selector)
	}
	if got := mirroredHostnames(ctx, t, consumer, ns, "mysql"); !mapsEqual(got, pods) {
		t.Errorf("mirrored endpoints %v, want cluster1's %v", got, pods)
	}
	assertExportConditions(ctx, t, provider, ns, "mysql", map[string]string{"Valid": "True/Valid", "Ready": "True/Exported", "Conflict": "False/NoConflicts"})

	dns, err := consumer.StartCoreDNS(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"mysql-0.amcs-mysql.provider-ns.svc.cluster.local.",
		"mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local.",
	} {
		if got := lookupEventually(ctx, t, dns, name); !slices.Equal(got, []string{pods["mysql-0"]}) {
			t.Errorf("%s -> %v, want [%s]", name, got, pods["mysql-0"])
		}
	}
	all := []string{pods["mysql-0"], pods["mysql-1"]}
	slices.Sort(all)
	if got := lookupEventually(ctx, t, dns, "mysql.provider-ns.svc.clusterset.local."); !slices.Equal(got, all) {
		t.Errorf("mysql.provider-ns.svc.clusterset.local -> %v, want %v", got, all)
	}
	if set.HasDataPlane() {
		// Seed step 4: from cluster2's node, each name reaches its pod in
		// cluster1, and the service name reaches both.
		for name, want := range map[string][]string{
			"mysql-0.amcs-mysql.provider-ns.svc.cluster.local.":        {"cluster1/mysql-0"},
			"mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local.": {"cluster1/mysql-0"},
			"mysql-1.cluster1.mysql.provider-ns.svc.clusterset.local.": {"cluster1/mysql-1"},
			"mysql.provider-ns.svc.clusterset.local.":                  {"cluster1/mysql-0", "cluster1/mysql-1"},
		} {
			if got := connectByName(ctx, t, consumer, dns, name, "3306"); !slices.Equal(got, want) {
				t.Errorf("%s: %s:3306 answered by %v, want %v", consumer.Name, name, got, want)
			}
		}
	}

	// Nothing changed: the re-run reads, writes nothing, and says so.
	again := kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	if n := again.totalWrites(); n != 0 {
		t.Errorf("re-run with nothing changed sent %d write requests (%v), want 0", n, again.writes)
	}
	if strings.Contains(again.stdout, " created") || strings.Contains(again.stdout, " configured") {
		t.Errorf("re-run reported changes:\n%s", again.stdout)
	}

	// Scale up: mysql-2 appears in the consumer's slices and DNS.
	scale(ctx, t, provider, ns, "mysql", 3)
	pods = waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0", "mysql-1", "mysql-2")
	kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	if got := mirroredHostnames(ctx, t, consumer, ns, "mysql"); !mapsEqual(got, pods) {
		t.Errorf("after scaling to 3: mirrored endpoints %v, want %v", got, pods)
	}
	if got := lookupEventually(ctx, t, dns, "mysql-2.cluster1.mysql.provider-ns.svc.clusterset.local."); !slices.Equal(got, []string{pods["mysql-2"]}) {
		t.Errorf("mysql-2 -> %v, want [%s]", got, pods["mysql-2"])
	}

	// Scale down: mysql-1 and mysql-2 leave the slices and DNS.
	scale(ctx, t, provider, ns, "mysql", 1)
	pods = waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0")
	kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	if got := mirroredHostnames(ctx, t, consumer, ns, "mysql"); !mapsEqual(got, pods) {
		t.Errorf("after scaling to 1: mirrored endpoints %v, want %v", got, pods)
	}
	for _, name := range []string{
		"mysql-1.cluster1.mysql.provider-ns.svc.clusterset.local.",
		"mysql-2.cluster1.mysql.provider-ns.svc.clusterset.local.",
		"mysql-1.amcs-mysql.provider-ns.svc.cluster.local.",
	} {
		waitNXDOMAIN(ctx, t, dns, name)
	}
	scale(ctx, t, provider, ns, "mysql", 2)
}

// TestTwoSourcesPortConflict: cluster1 and cluster3 export web with
// different ports; the consumer gets the union and both exports say
// Conflict=True/PortConflict.
func TestTwoSourcesPortConflict(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "ports-ns"
	consumer := set.Cluster("cluster2")
	webs := map[string]string{
		"cluster1": webManifest("http", 80, 8080),
		"cluster3": webManifest("http", 80, 8080) + webExtraPort("metrics", 9090),
	}
	for _, name := range []string{"cluster1", "cluster3"} {
		c := set.Cluster(name)
		if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+webs[name])); err != nil {
			t.Fatal(err)
		}
		waitForReadyEndpoints(ctx, t, c, ns, "web", 1)
		kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", name).mustSucceed(t)
	}
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1,cluster3", "--context", "cluster2").mustSucceed(t)

	si := getServiceImport(ctx, t, consumer, ns, "web")
	var ports []string
	for _, p := range si.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s:%d/%s", p.Name, p.Port, p.Protocol))
	}
	slices.Sort(ports)
	if want := []string{"http:80/TCP", "metrics:9090/TCP"}; !slices.Equal(ports, want) {
		t.Errorf("ServiceImport ports %v, want the union %v", ports, want)
	}
	if si.Spec.Type != mcsv1beta1.ClusterSetIP || len(si.Spec.IPs) == 0 {
		t.Errorf("ServiceImport type %s ips %v, want ClusterSetIP with the derived Service's IP", si.Spec.Type, si.Spec.IPs)
	}
	derived, err := consumer.Client.CoreV1().Services(ns).Get(ctx, "amcs-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(si.Spec.IPs, derived.Spec.ClusterIPs) {
		t.Errorf("ServiceImport ips %v, derived Service clusterIPs %v: want equal", si.Spec.IPs, derived.Spec.ClusterIPs)
	}
	if got := clustersOf(si); !slices.Equal(got, []string{"cluster1", "cluster3"}) {
		t.Errorf("status.clusters %v, want [cluster1 cluster3]", got)
	}
	for _, name := range []string{"cluster1", "cluster3"} {
		assertExportConditions(ctx, t, set.Cluster(name), ns, "web", map[string]string{"Valid": "True/Valid", "Conflict": "True/PortConflict"})
	}
	sources := map[string]int{}
	list, err := consumer.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: mcsv1beta1.LabelServiceName + "=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		sources[s.Labels[mcsv1beta1.LabelSourceCluster]] += len(s.Endpoints)
	}
	if sources["cluster1"] != 1 || sources["cluster3"] != 1 || len(sources) != 2 {
		t.Errorf("mirrored endpoints per source cluster %v, want one from each of cluster1 and cluster3", sources)
	}
}

// TestUserOwnedDerivedServiceRefused: a Service the user made, named like
// the derived one, stops the import with a clear error and nothing written.
func TestUserOwnedDerivedServiceRefused(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "owned-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	exportWeb(ctx, t, set, provider, ns)
	userService := `apiVersion: v1
kind: Service
metadata:
  name: amcs-web
spec:
  ports: [{name: http, port: 80}]
`
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+userService)); err != nil {
		t.Fatal(err)
	}
	before, err := consumer.Client.CoreV1().Services(ns).Get(ctx, "amcs-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exportBefore := getExport(ctx, t, provider, ns, "web")

	run := kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2")
	run.mustFail(t, "cluster2", "amcs-web", "not managed by kubectl-mcs", "nothing was written")
	if n := run.totalWrites(); n != 0 {
		t.Errorf("refused import sent %d write requests", n)
	}
	after, err := consumer.Client.CoreV1().Services(ns).Get(ctx, "amcs-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the user's Service was modified (resourceVersion %s -> %s)", before.ResourceVersion, after.ResourceVersion)
	}
	if _, err := getServiceImportErr(ctx, consumer, ns, "web"); !apierrors.IsNotFound(err) {
		t.Errorf("a ServiceImport was created despite the refusal (err %v)", err)
	}
	if exportAfter := getExport(ctx, t, provider, ns, "web"); exportAfter.ResourceVersion != exportBefore.ResourceVersion {
		t.Errorf("the export's status was written despite the refusal")
	}
}

// TestV1Alpha1OnlyClusters: clusters whose MCS CRDs serve only v1alpha1
// (older installs) work end to end.
func TestV1Alpha1OnlyClusters(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 2, CRDVersion: map[string]string{"cluster1": "v1alpha1", "cluster2": "v1alpha1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	applySeedWorkload(ctx, t, provider)
	pods := waitForHostnames(ctx, t, provider, fixtures.SeedNamespaceName, "mysql", "mysql-0", "mysql-1")
	if _, err := consumer.Create(ctx, "", fixtures.MustRead(fixtures.SeedNamespace)); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, set.Kubeconfig, "export", "mysql", "-n", "provider-ns", "--context", "cluster1").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", "provider-ns", "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	si := getServiceImport(ctx, t, consumer, "provider-ns", "mysql")
	if si.APIVersion != "multicluster.x-k8s.io/v1alpha1" || si.Spec.Type != mcsv1beta1.Headless {
		t.Errorf("ServiceImport %s type %s, want v1alpha1 Headless", si.APIVersion, si.Spec.Type)
	}
	if got := mirroredHostnames(ctx, t, consumer, "provider-ns", "mysql"); !mapsEqual(got, pods) {
		t.Errorf("mirrored endpoints %v, want %v", got, pods)
	}
	assertExportConditions(ctx, t, provider, "provider-ns", "mysql", map[string]string{"Valid": "True/Valid", "Ready": "True/Exported"})
	dns, err := consumer.StartCoreDNS(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupEventually(ctx, t, dns, "mysql-1.cluster1.mysql.provider-ns.svc.clusterset.local."); !slices.Equal(got, []string{pods["mysql-1"]}) {
		t.Errorf("mysql-1 -> %v, want [%s]", got, pods["mysql-1"])
	}
}

// --- helpers ---

// createNamespaceEverywhere creates namespace ns in every cluster of set.
func createNamespaceEverywhere(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	t.Helper()
	for _, c := range set.Clusters {
		if _, err := c.Create(ctx, "", []byte(namespaceManifest(ns))); err != nil {
			t.Fatal(err)
		}
	}
}

func namespaceManifest(ns string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)
}

// webManifest is a one-replica Deployment behind a ClusterIP Service, the
// most common thing exported in the wild.
func webManifest(portName string, port, targetPort int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        ports: [{name: %[1]s, containerPort: %[3]d}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: %[1]s, port: %[2]d, targetPort: %[3]d}
`, portName, port, targetPort)
}

// exportWeb runs webManifest in namespace ns of c, waits for its endpoint
// and exports it from c with kubectl mcs.
func exportWeb(ctx context.Context, t *testing.T, set *localcluster.Set, c *localcluster.Cluster, ns string) {
	t.Helper()
	if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+webManifest("http", 80, 8080))); err != nil {
		t.Fatal(err)
	}
	waitForReadyEndpoints(ctx, t, c, ns, "web", 1)
	kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", c.Name).mustSucceed(t)
}

// webExtraPort appends a port to the Service of webManifest.
func webExtraPort(name string, port int) string {
	return fmt.Sprintf("  - {name: %s, port: %d, targetPort: %d}\n", name, port, port)
}

var serviceImportsGVR = schema.GroupVersionResource{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Resource: "serviceimports"}
var serviceExportsGVR = schema.GroupVersionResource{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Resource: "serviceexports"}

func getServiceImportErr(ctx context.Context, c *localcluster.Cluster, ns, name string) (*mcsv1beta1.ServiceImport, error) {
	u, err := c.Dynamic().Resource(serviceImportsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	si := &mcsv1beta1.ServiceImport{}
	return si, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, si)
}

func getServiceImport(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, name string) *mcsv1beta1.ServiceImport {
	t.Helper()
	si, err := getServiceImportErr(ctx, c, ns, name)
	if err != nil {
		t.Fatalf("%s: ServiceImport %s/%s: %v", c.Name, ns, name, err)
	}
	return si
}

func getExport(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, name string) *mcsv1beta1.ServiceExport {
	t.Helper()
	u, err := c.Dynamic().Resource(serviceExportsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s: ServiceExport %s/%s: %v", c.Name, ns, name, err)
	}
	e := &mcsv1beta1.ServiceExport{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// assertExportConditions checks "Type" -> "Status/Reason" of an export.
func assertExportConditions(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, name string, want map[string]string) {
	t.Helper()
	e := getExport(ctx, t, c, ns, name)
	got := map[string]string{}
	for _, cond := range e.Status.Conditions {
		got[cond.Type] = string(cond.Status) + "/" + cond.Reason
	}
	for typ, w := range want {
		if got[typ] != w {
			t.Errorf("%s: ServiceExport %s/%s condition %s = %q, want %q (all: %v)", c.Name, ns, name, typ, got[typ], w, e.Status.Conditions)
		}
	}
}

func clustersOf(si *mcsv1beta1.ServiceImport) []string {
	var out []string
	for _, c := range si.Status.Clusters {
		out = append(out, c.Cluster)
	}
	return out
}

// mirroredHostnames returns hostname -> address of the ready endpoints in
// the consumer's mirrored slices of a service.
func mirroredHostnames(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, service string) map[string]string {
	t.Helper()
	eps, err := mcsEndpoints(ctx, c, ns, service, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ep := range eps {
		if ep.managedBy != reconcile.FieldManager {
			continue
		}
		if ep.service != reconcile.DerivedServiceName(service) {
			t.Errorf("mirrored slice %s is labeled for Service %q", ep.slice, ep.service)
		}
		if ep.hostname != "" && ep.address != "" && ep.ready {
			out[ep.hostname] = ep.address
		}
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func scale(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, name string, replicas int) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := c.Client.AppsV1().StatefulSets(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitForReadyEndpoints waits until a Service has n ready endpoints.
func waitForReadyEndpoints(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, service string, n int) {
	t.Helper()
	var got int
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return false, err
		}
		got = 0
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					got++
				}
			}
		}
		return got == n, nil
	})
	if err != nil {
		t.Fatalf("%s: %s/%s has %d ready endpoints, want %d: %v", c.Name, ns, service, got, n, err)
	}
}

// waitNXDOMAIN waits until name no longer resolves (CoreDNS follows the API
// through informers, so it may lag a moment).
func waitNXDOMAIN(ctx context.Context, t *testing.T, dns *localcluster.CoreDNS, name string) {
	t.Helper()
	var addrs []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		addrs, err = dns.Resolver().LookupHost(ctx, name)
		var dnsErr *net.DNSError
		return errors.As(err, &dnsErr) && dnsErr.IsNotFound, nil
	})
	if err != nil {
		t.Errorf("%s still resolves to %v, want NXDOMAIN", name, addrs)
	}
}
