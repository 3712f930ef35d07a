package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/health"
	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// checkCorefile serves clusterset.local the upstream way.
const checkCorefile = `.:53 {
    errors
    kubernetes cluster.local clusterset.local {
        multicluster clusterset.local
    }
}
`

// corednsManifest is what a kubeadm cluster has of CoreDNS: its Corefile
// and its Deployment (scaled to zero: only its image is read).
func corednsManifest(corefile string) string {
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(corefile), "\n", "\n    ")
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: coredns}
data:
  Corefile: |
%s
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns}
spec:
  replicas: 0
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers: [{name: coredns, image: "registry.k8s.io/coredns/coredns:v1.12.2"}]
`, indented)
}

// checkReport runs `kubectl mcs check ARGS -o json` and decodes it.
func checkReport(t *testing.T, kubeconfig string, args ...string) (health.Report, pluginRun) {
	t.Helper()
	run := kubectlMCS(t, kubeconfig, append([]string{"check", "-o", "json"}, args...)...)
	var r health.Report
	if err := json.Unmarshal([]byte(run.stdout), &r); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, run.stdout)
	}
	if want := map[bool]int{true: 0, false: 1}[r.Success]; run.code != want {
		t.Errorf("check exit code %d with success=%v, want %d", run.code, r.Success, want)
	}
	return r, run
}

// expectOnly asserts that exactly the named check fails (or warns), with
// every fragment in its message, details or fix, and nothing else fails.
func expectOnly(t *testing.T, r health.Report, result health.Result, category, name, cluster string, fragments ...string) {
	t.Helper()
	key := category + "/" + name + "/" + cluster
	for _, res := range []health.Result{health.Fail, health.Warn} {
		want := []string{}
		if res == result {
			want = []string{key}
		}
		if got := r.Named(res); !slices.Equal(got, want) {
			t.Errorf("checks with result %s: %v, want %v", res, got, want)
		}
	}
	for _, cat := range r.Categories {
		for _, c := range cat.Checks {
			if cat.Name+"/"+c.Name+"/"+c.Cluster != key {
				continue
			}
			text := c.Message + "\n" + strings.Join(c.Details, "\n") + "\n" + strings.Join(c.Fix, "\n")
			for _, f := range fragments {
				if !strings.Contains(text, f) {
					t.Errorf("%s does not say %q:\n%s", key, f, text)
				}
			}
		}
	}
}

// TestCheck: a healthy clusterset passes every check; broken one way at a
// time, that check fails (or warns) with its fix while the others pass,
// and running the fix makes it pass again. Its own three clusters:
// cluster3 has the v1alpha1-only CRDs of an older install and has its API
// server stopped at the end.
func TestCheck(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 3, CRDVersion: map[string]string{"cluster3": "v1alpha1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	kc := set.Kubeconfig
	c1, c2 := set.Cluster("cluster1"), set.Cluster("cluster2")
	for _, c := range set.Clusters {
		if _, err := c.Create(ctx, "kube-system", []byte(corednsManifest(checkCorefile))); err != nil {
			t.Fatal(err)
		}
	}
	ns := "check-ns"
	if _, err := c2.Create(ctx, "", []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	exportWeb(ctx, t, set, c1, ns)
	two := []string{"--clusters", "cluster1,cluster2", "-n", ns}

	t.Run("healthy", func(t *testing.T) {
		// Exported, not yet imported anywhere (the exporter imports too).
		r, _ := checkReport(t, kc, two...)
		expectOnlyFailing(t, r, health.CategoryImports+"/imports up to date/cluster1", health.CategoryImports+"/imports up to date/cluster2")
		for _, cat := range r.Categories {
			for _, c := range cat.Checks {
				if c.Result == health.Fail && (!strings.Contains(c.Message, "STALE") || !slices.Equal(c.Fix, []string{"kubectl mcs sync --clusters cluster1,cluster2 -n " + ns})) {
					t.Errorf("stale import check without the sync that fixes it: %+v", c)
				}
			}
		}
		kubectlMCS(t, kc, append([]string{"sync"}, two...)...).mustSucceed(t)
		r, _ = checkReport(t, kc, two...)
		if got := append(r.Named(health.Fail), r.Named(health.Warn)...); len(got) > 0 {
			t.Errorf("a healthy clusterset does not pass: %v", got)
		}
		categories := 0
		for _, cat := range r.Categories {
			categories++
			if len(cat.Checks) == 0 {
				t.Errorf("category %s has no checks", cat.Name)
			}
		}
		if categories != 9 {
			t.Errorf("%d categories, want the nine of a run without --dns-server", categories)
		}
		text := kubectlMCS(t, kc, append([]string{"check"}, two...)...).mustSucceed(t)
		for _, want := range []string{"Kubernetes API\n--------------\n✓ API reachable [cluster1]: ", "✓ cluster id [cluster2]: id \"cluster2\"", "✓ every check passed"} {
			if !strings.Contains(text.stdout, want) {
				t.Errorf("check output lacks %q", want)
			}
		}
		if n := text.totalWrites(); n != 0 {
			t.Errorf("check wrote %d times, want none", n)
		}

		// A live CoreDNS of cluster2 answers the clusterset name with the
		// import's ClusterSetIP.
		coredns, err := c2.StartCoreDNS(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer coredns.Stop()
		ip := getServiceImport(ctx, t, c2, ns, "web").Spec.IPs
		r, _ = checkReport(t, kc, append([]string{"--dns-server", coredns.Addr}, two...)...)
		expectOnlyFailing(t, r)
		live := false
		for _, cat := range r.Categories {
			if cat.Name == health.CategoryLiveDNS {
				live = len(cat.Checks) == 1 && cat.Checks[0].Name == "web."+ns+".svc.clusterset.local." && len(ip) == 1 && strings.Contains(cat.Checks[0].Message, ip[0])
			}
		}
		if !live {
			t.Errorf("no live DNS check answering %v for web", ip)
		}
	})

	t.Run("v1alpha1-only CRDs", func(t *testing.T) {
		three := []string{"--pre", "--clusters", "cluster1,cluster2,cluster3"}
		r, _ := checkReport(t, kc, three...)
		for _, cat := range r.Categories {
			if cat.Name == health.CategoryCRDs {
				for _, c := range cat.Checks {
					if c.Cluster == "cluster3" && (c.Result != health.Fail || !strings.Contains(c.Message, "serves only v1alpha1") || !slices.Contains(c.Fix, "kubectl mcs crds install --context cluster3")) {
						t.Errorf("cluster3's CRDs: %+v", c)
					}
				}
			}
		}
		if got := r.Named(health.Fail); !slices.Equal(got, []string{health.CategoryCRDs + "/CRDs installed/cluster3"}) {
			t.Errorf("failing checks %v, want cluster3's CRDs only", got)
		}
		kubectlMCS(t, kc, "crds", "install", "--context", "cluster3").mustSucceed(t)
		r, _ = checkReport(t, kc, three...)
		if got := r.Named(health.Fail); len(got) > 0 {
			t.Errorf("after the fix, failing checks %v", got)
		}
	})

	t.Run("duplicate ClusterProperty id", func(t *testing.T) {
		for _, c := range set.Clusters {
			if _, err := c.Create(ctx, "", fixtures.MustRead(fixtures.ClusterPropertyCRD)); err != nil {
				t.Fatal(err)
			}
		}
		waitCRD(ctx, t, set, "clusterproperties.about.k8s.io")
		if _, err := c2.Create(ctx, "", []byte("apiVersion: about.k8s.io/v1alpha1\nkind: ClusterProperty\nmetadata:\n  name: cluster.clusterset.k8s.io\nspec:\n  value: cluster1\n")); err != nil {
			t.Fatal(err)
		}
		r, _ := checkReport(t, kc, two...)
		// Both clusters' ids fail: which one to rename is the user's call.
		if got := r.Named(health.Fail); !slices.Equal(got, []string{health.CategoryIDs + "/cluster id/cluster1", health.CategoryIDs + "/cluster id/cluster2"}) {
			t.Errorf("failing checks %v, want both cluster ids", got)
		}
		found := false
		for _, cat := range r.Categories {
			for _, c := range cat.Checks {
				if cat.Name == health.CategoryIDs && c.Cluster == "cluster2" {
					found = strings.Contains(c.Message, "ClusterProperty "+clusterset.ClusterIDProperty) && len(c.Fix) == 1 &&
						strings.HasPrefix(c.Fix[0], "kubectl patch clusterproperty.about.k8s.io cluster.clusterset.k8s.io") && strings.HasSuffix(c.Fix[0], "--context cluster2")
				}
			}
		}
		if !found {
			t.Errorf("cluster2's id check does not name its source and the patch that fixes it")
		}
		if err := c2.Dynamic().Resource(clusterPropertyGVR).Delete(ctx, clusterset.ClusterIDProperty, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r, _ = checkReport(t, kc, two...)
		expectOnlyFailing(t, r)
	})

	t.Run("missing namespace", func(t *testing.T) {
		only1 := "check-only1"
		exportWeb(ctx, t, set, c1, only1)
		scope := []string{"--clusters", "cluster1,cluster2", "-n", only1}
		kubectlMCS(t, kc, append([]string{"sync"}, scope...)...).mustSucceed(t)
		r, _ := checkReport(t, kc, scope...)
		expectOnly(t, r, health.Fail, health.CategoryNamespaces, "exported namespaces exist", "cluster2", "kubectl create namespace "+only1+" --context cluster2")
		kubectlMCS(t, kc, append([]string{"sync", "--create-namespace"}, scope...)...).mustSucceed(t)
		r, _ = checkReport(t, kc, scope...)
		if got := r.Named(health.Fail); len(got) > 0 {
			t.Errorf("after --create-namespace, failing checks %v", got)
		}
	})

	t.Run("unpatched Corefile", func(t *testing.T) {
		cm, err := c2.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["Corefile"] = string(fixtures.MustRead(fixtures.SeedCorefile))
		if _, err := c2.Client.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		r, _ := checkReport(t, kc, two...)
		expectOnly(t, r, health.Fail, health.CategoryDNS, "serves clusterset.local", "cluster2", "kubectl mcs dns --patch --context cluster2")
		kubectlMCS(t, kc, "dns", "--patch", "--context", "cluster2").mustSucceed(t)
		r, _ = checkReport(t, kc, two...)
		if got := r.Named(health.Fail); len(got) > 0 {
			t.Errorf("after dns --patch, failing checks %v", got)
		}
	})

	t.Run("second field manager on an import", func(t *testing.T) {
		patch := []byte(`{"metadata":{"labels":{"other.example/owner":"me"}}}`)
		gvr := schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: "v1beta1", Resource: clusterset.ServiceImports}
		if _, err := c2.Dynamic().Resource(gvr).Namespace(ns).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "other-mcs-controller"}); err != nil {
			t.Fatal(err)
		}
		r, run := checkReport(t, kc, two...)
		expectOnly(t, r, health.Warn, health.CategoryControllers, "no other writer", "cluster2", `"other-mcs-controller"`, "ServiceImport "+ns+"/web")
		if run.code != 0 {
			t.Errorf("a warning made check exit %d", run.code)
		}
		text := kubectlMCS(t, kc, append([]string{"check"}, two...)...)
		if !strings.Contains(text.stdout, "‼ no other writer [cluster2]") {
			t.Errorf("the warning is not marked ‼:\n%s", text.stdout)
		}
	})

	t.Run("stopped API server", func(t *testing.T) {
		set.Cluster("cluster3").StopAPIServer()
		r, _ := checkReport(t, kc, "--pre", "--clusters", "cluster1,cluster2,cluster3", "--request-timeout", "5s")
		expectOnlyFailing(t, r, health.CategoryAPI+"/API reachable/cluster3")
		for _, cat := range r.Categories {
			for _, c := range cat.Checks {
				if c.Cluster == "cluster3" && cat.Name == health.CategoryAPI && !strings.Contains(c.Message, "cannot reach the API server") {
					t.Errorf("cluster3's API check: %+v", c)
				}
			}
		}
	})
}

func expectOnlyFailing(t *testing.T, r health.Report, keys ...string) {
	t.Helper()
	if got := r.Named(health.Fail); !slices.Equal(got, keys) {
		t.Errorf("failing checks %v, want %v", got, keys)
	}
}

var clusterPropertyGVR = schema.GroupVersionResource{Group: clusterset.ClusterPropertyGroup, Version: "v1alpha1", Resource: "clusterproperties"}
