package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/crds"
	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestBadInput: each mistake a user can make gets an error that names the
// cluster, the object and the fix, a non-zero exit, and not one write in
// any cluster.
func TestBadInput(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "bad-ns"
	provider := set.Cluster("cluster1")
	if _, err := provider.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+webManifest("http", 80, 8080)+`---
apiVersion: v1
kind: Service
metadata:
  name: external
spec:
  type: ExternalName
  externalName: db.example.com
`)); err != nil {
		t.Fatal(err)
	}
	waitForReadyEndpoints(ctx, t, provider, ns, "web", 1)
	kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", "cluster1").mustSucceed(t)

	// A kubeconfig with extra contexts: one at a closed port, one whose name
	// is not a DNS label (so it cannot be a cluster id).
	kubeconfig := extendKubeconfig(t, set, map[string]string{"dead": "https://127.0.0.1:1", "Prod_Cluster": ""})

	cases := []struct {
		name      string
		args      []string
		fragments []string
	}{
		{"unknown context", []string{"import", "web", "-n", ns, "--from", "nosuch", "--context", "cluster2"},
			[]string{"nosuch", "context not found in the kubeconfig", "cluster1, cluster2, cluster3"}},
		{"unreachable consumer", []string{"import", "web", "-n", ns, "--from", "cluster1", "--context", "dead", "--request-timeout", "5s"},
			[]string{"dead", "cannot reach the API server https://127.0.0.1:1"}},
		{"watch with an unreachable source", []string{"import", "web", "-n", ns, "--from", "cluster1,dead", "--context", "cluster2", "--watch", "--request-timeout", "5s"},
			[]string{"--watch did not start", "dead cannot be reached", "cannot reach the API server https://127.0.0.1:1", "--stale-ttl"}},
		{"missing Service", []string{"export", "nosuch", "-n", ns, "--context", "cluster1"},
			[]string{"cluster1", "Service bad-ns/nosuch not found", "--allow-missing-service", "nothing was exported"}},
		{"missing namespace, not a missing Service", []string{"export", "web", "-n", "no-such-ns", "--context", "cluster1"},
			[]string{"cluster1", "namespace no-such-ns does not exist", "kubectl create namespace no-such-ns --context cluster1", "nothing was exported"}},
		{"ExternalName Service", []string{"export", "external", "web", "-n", ns, "--context", "cluster1"},
			[]string{"cluster1", "bad-ns/external", "ExternalName", "nothing was exported"}},
		{"namespace missing in the consumer", []string{"import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2"},
			[]string{"cluster2", "bad-ns", "--create-namespace", "nothing was written"}},
		{"invalid cluster id", []string{"import", "web", "-n", ns, "--from", "Prod_Cluster", "--context", "cluster2"},
			[]string{"Prod_Cluster", "not a valid DNS label", "ClusterProperty cluster.clusterset.k8s.io"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := kubectlMCS(t, kubeconfig, tc.args...)
			run.mustFail(t, tc.fragments...)
			if n := run.totalWrites(); n != 0 {
				t.Errorf("%d write requests (%v), want none", n, run.writes)
			}
		})
	}

	// Dry runs of an import that would create a namespace write nothing: a
	// client dry run shows it all; a server dry run cannot check objects in
	// a namespace that does not exist, and says so before sending anything.
	client := kubectlMCS(t, kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2", "--create-namespace", "--dry-run=client").mustSucceed(t)
	if client.totalWrites() != 0 {
		t.Errorf("--dry-run=client sent %d writes", client.totalWrites())
	}
	server := kubectlMCS(t, kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2", "--create-namespace", "--dry-run=server")
	server.mustFail(t, "cluster2", "bad-ns", "use --dry-run=client")
	if server.totalWrites() != 0 {
		t.Errorf("refused --dry-run=server sent %d writes", server.totalWrites())
	}
	if _, err := set.Cluster("cluster2").Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Errorf("a dry run created namespace %s", ns)
	}
}

// TestUserOwnedEndpointSliceRefused: an EndpointSlice we did not make,
// with the name a mirrored slice needs, stops the import.
func TestUserOwnedEndpointSliceRefused(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "slice-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	exportWeb(ctx, t, set, provider, ns)
	userSlice := `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: amcs-web.cluster1-ipv4-0
  labels: {team: payments}
addressType: IPv4
endpoints: [{addresses: [198.18.200.1]}]
`
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+userSlice)); err != nil {
		t.Fatal(err)
	}
	run := kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2")
	run.mustFail(t, "cluster2", "amcs-web.cluster1-ipv4-0", "not managed by kubectl-mcs", "nothing was written")
	if n := run.totalWrites(); n != 0 {
		t.Errorf("%d write requests, want none", n)
	}
	slice, err := consumer.Client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "amcs-web.cluster1-ipv4-0", metav1.GetOptions{})
	if err != nil || slice.Labels["team"] != "payments" || len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "198.18.200.1" {
		t.Errorf("the user's slice changed: %v %+v", err, slice)
	}
}

// TestMCSCRDsMissingAndClusterIDs: a cluster without the MCS CRDs is an
// error with the install command; `crds install` fixes it; ClusterProperty
// ids are used, and two clusters with the same id are refused.
func TestMCSCRDsMissingAndClusterIDs(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 2, CRDVersion: map[string]string{"cluster1": "none", "cluster2": "none"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	ns := "ids-ns"
	for _, c := range set.Clusters {
		if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+webManifest("http", 80, 8080))); err != nil {
			t.Fatal(err)
		}
	}
	run := kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", "cluster1")
	run.mustFail(t, "cluster1", "not installed", "kubectl mcs crds install --context cluster1")
	if run.totalWrites() != 0 {
		t.Errorf("%d writes without CRDs", run.totalWrites())
	}
	kubectlMCS(t, set.Kubeconfig, "crds", "install", "--clusters", "cluster1,cluster2").mustSucceed(t)
	check := kubectlMCS(t, set.Kubeconfig, "crds", "check", "--clusters", "cluster1,cluster2").mustSucceed(t)
	if want := "cluster1: MCS API served (v1alpha1, v1beta1); kubectl mcs uses v1beta1\ncluster2: MCS API served (v1alpha1, v1beta1); kubectl mcs uses v1beta1\n"; check.stdout != want {
		t.Errorf("crds check printed %q, want %q", check.stdout, want)
	}

	// KEP-2149 ids: cluster1 calls itself east, cluster2 claims the same.
	// cluster1 has the CRD as about-api publishes it today (v1beta1 only),
	// cluster2 the v1alpha1 of older installs. The CRDs come after the
	// runs above filled the discovery cache.
	crd := map[string]string{"cluster1": fixtures.ClusterPropertyV1beta1CRD, "cluster2": fixtures.ClusterPropertyCRD}
	version := map[string]string{"cluster1": "v1beta1", "cluster2": "v1alpha1"}
	for name, file := range crd {
		if _, err := set.Cluster(name).Create(ctx, "", fixtures.MustRead(file)); err != nil {
			t.Fatal(err)
		}
	}
	waitCRD(ctx, t, set, "clusterproperties.about.k8s.io")
	property := func(cluster, value string) []byte {
		return []byte(fmt.Sprintf("apiVersion: about.k8s.io/%s\nkind: ClusterProperty\nmetadata:\n  name: cluster.clusterset.k8s.io\nspec:\n  value: %s\n", version[cluster], value))
	}
	// The CRD without the property: the context name, said out loud.
	run = kubectlMCS(t, set.Kubeconfig, "status", "-n", ns, "-o", "json", "--clusters", "cluster1,cluster2").mustSucceed(t)
	if want := `Warning: cluster1: using the context name "cluster1" as cluster id: ClusterProperty about.k8s.io/v1beta1 is served but has no cluster.clusterset.k8s.io`; !strings.Contains(run.stderr, want) {
		t.Errorf("status did not warn %q; stderr:\n%s", want, run.stderr)
	}
	if id, source := statusClusterID(t, run.stdout, "cluster1"); id != "cluster1" || !strings.HasPrefix(source, "the context name (ClusterProperty about.k8s.io/v1beta1 is served") {
		t.Errorf("cluster1: id %q from %q, want the context name and why", id, source)
	}
	if _, err := set.Cluster("cluster1").Create(ctx, "", property("cluster1", "east")); err != nil {
		t.Fatal(err)
	}
	// KEP-2149 read in the version the cluster serves: v1beta1 only.
	run = kubectlMCS(t, set.Kubeconfig, "status", "-n", ns, "-o", "json", "--clusters", "cluster1,cluster2").mustSucceed(t)
	if id, source := statusClusterID(t, run.stdout, "cluster1"); id != "east" || source != "ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)" {
		t.Errorf("cluster1: id %q from %q, want east from its v1beta1 ClusterProperty", id, source)
	}
	waitForReadyEndpoints(ctx, t, set.Cluster("cluster1"), ns, "web", 1)
	kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", "cluster1").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	si := getServiceImport(ctx, t, set.Cluster("cluster2"), ns, "web")
	if got := clustersOf(si); len(got) != 1 || got[0] != "east" {
		t.Errorf("status.clusters %v, want [east] from cluster1's ClusterProperty", got)
	}
	if _, err := set.Cluster("cluster2").Create(ctx, "", property("cluster2", "east")); err != nil {
		t.Fatal(err)
	}
	run = kubectlMCS(t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2")
	run.mustFail(t, "cluster1", "cluster2", "same cluster id \"east\"", "ClusterProperty cluster.clusterset.k8s.io")
	if run.totalWrites() != 0 {
		t.Errorf("%d writes with clashing cluster ids", run.totalWrites())
	}
}

// statusClusterID is the id and its source `status -o json` gives a context.
func statusClusterID(t *testing.T, statusJSON, context string) (id, source string) {
	t.Helper()
	var report struct {
		Clusters []struct{ Context, ID, IDSource string }
	}
	if err := json.Unmarshal([]byte(statusJSON), &report); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, statusJSON)
	}
	for _, c := range report.Clusters {
		if c.Context == context {
			return c.ID, c.IDSource
		}
	}
	t.Fatalf("status -o json has no cluster %s:\n%s", context, statusJSON)
	return "", ""
}

// extendKubeconfig writes a copy of the set's kubeconfig with extra
// contexts: name -> server ("" reuses cluster1's server and credentials).
func extendKubeconfig(t *testing.T, set *localcluster.Set, extra map[string]string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(set.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for name, server := range extra {
		cluster := cfg.Clusters["cluster1"].DeepCopy()
		if server != "" {
			cluster.Server = server
		}
		cfg.Clusters[name] = cluster
		cfg.AuthInfos[name] = cfg.AuthInfos["cluster1"].DeepCopy()
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitCRD(ctx context.Context, t *testing.T, set *localcluster.Set, name string) {
	t.Helper()
	for _, c := range set.Clusters {
		if err := crds.WaitEstablished(ctx, c.Dynamic(), []string{name}, 30*time.Second); err != nil {
			t.Fatalf("%s: CRD %s: %v", c.Name, name, err)
		}
	}
}
