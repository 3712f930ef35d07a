package health

import (
	"context"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/crds"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

const servingCorefile = `.:53 {
    errors
    kubernetes cluster.local clusterset.local {
        multicluster clusterset.local
    }
}
`

const plainCorefile = `.:53 {
    errors
    kubernetes cluster.local
}
`

var now = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

// healthyCluster is a fake cluster with the MCS CRDs, a CoreDNS serving
// clusterset.local, and namespace shop.
func healthyCluster(t *testing.T, name string, objects ...runtime.Object) *clustersettest.Fake {
	t.Helper()
	f := clustersettest.New(name, append([]runtime.Object{clustersettest.Namespace("shop")}, objects...)...)
	forgetFakeManagers(t, f)
	manifests, err := crds.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		f.Add(m)
	}
	f.Add(corefile(servingCorefile), corednsDeployment("registry.k8s.io/coredns/coredns:v1.12.2"))
	return f
}

func corefile(text string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Data: map[string]string{"Corefile": text}}
}

func corednsDeployment(image string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "coredns", Image: image}}}}}}
}

// exporter is cluster1 exporting shop/web.
func exporter(t *testing.T) *clustersettest.Fake {
	return healthyCluster(t, "cluster1", clustersettest.Service("shop", "web", false), clustersettest.Export("shop", "web"),
		clustersettest.Slice("shop", "web", "10.1.0.1"))
}

func members(fakes ...*clustersettest.Fake) []clusterset.Member {
	out := make([]clusterset.Member, len(fakes))
	for i, f := range fakes {
		out[i] = clusterset.Member{Context: f.Cluster.Context, Cluster: f.Cluster}
	}
	return out
}

var shop = Options{Scope: snapshot.Scope{Namespace: "shop"}, Now: func() time.Time { return now }}

func sync(t *testing.T, fakes ...*clustersettest.Fake) {
	t.Helper()
	var clusters []*clusterset.Cluster
	for _, f := range fakes {
		clusters = append(clusters, f.Cluster)
	}
	e := &engine.Engine{Sources: clusters, Consumers: clusters, Now: func() time.Time { return now }}
	if _, err := e.Sync(context.Background(), shop.Scope); err != nil {
		t.Fatal(err)
	}
}

// forgetFakeManagers hides the managedFields entries client-go's fake
// tracker records under the name "unknown" whenever the clustersettest
// apply reactor stores a typed object (a real API server records the
// applier, kubectl-mcs): they are the fake's, not another controller's.
func forgetFakeManagers(t *testing.T, f *clustersettest.Fake) {
	t.Helper()
	list := k8stesting.ObjectReaction(f.Kube.Tracker())
	f.Kube.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		handled, obj, err := list(a)
		if err != nil || obj == nil {
			return handled, obj, err
		}
		err = meta.EachListItem(obj, func(o runtime.Object) error {
			acc, err := meta.Accessor(o)
			if err == nil {
				acc.SetManagedFields(withoutUnknown(acc.GetManagedFields()))
			}
			return err
		})
		return handled, obj, err
	})
}

func withoutUnknown(entries []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	var out []metav1.ManagedFieldsEntry
	for _, e := range entries {
		if e.Manager != "unknown" {
			out = append(out, e)
		}
	}
	return out
}

// find returns the check of a category, name and cluster.
func find(t *testing.T, r Report, category, name, cluster string) Check {
	t.Helper()
	for _, cat := range r.Categories {
		if cat.Name != category {
			continue
		}
		for _, c := range cat.Checks {
			if c.Name == name && c.Cluster == cluster {
				return c
			}
		}
	}
	t.Fatalf("no check %q of %s in category %s; report:\n%s", name, cluster, category, dump(r))
	return Check{}
}

func dump(r Report) string {
	var b strings.Builder
	for _, cat := range r.Categories {
		b.WriteString(cat.Name + "\n")
		for _, c := range cat.Checks {
			b.WriteString("  " + string(c.Result) + " " + c.Name + " [" + c.Cluster + "] " + c.Message + "\n")
			for _, d := range c.Details {
				b.WriteString("      " + d + "\n")
			}
			for _, f := range c.Fix {
				b.WriteString("      fix: " + f + "\n")
			}
		}
	}
	return b.String()
}

func TestHealthyClustersetPassesEveryCheck(t *testing.T) {
	c1, c2 := exporter(t), healthyCluster(t, "cluster2")
	before := Run(context.Background(), members(c1, c2), shop)
	// Nothing synced yet: both imports are stale, with the sync as the fix.
	for _, ctx := range []string{"cluster1", "cluster2"} {
		c := find(t, before, CategoryImports, "imports up to date", ctx)
		if c.Result != Fail || !strings.Contains(c.Message, "shop/web") || len(c.Fix) != 1 || c.Fix[0] != "kubectl mcs sync --clusters cluster1,cluster2 -n shop" {
			t.Errorf("%s before the sync: %+v, want STALE shop/web fixed by the sync", ctx, c)
		}
	}
	if got := before.Named(Fail); len(got) != 2 {
		t.Errorf("before the sync, failing checks %v, want the two stale imports only\n%s", got, dump(before))
	}
	if before.Success {
		t.Error("a report with failed checks says Success")
	}

	sync(t, c1, c2)
	writes := len(c1.Writes()) + len(c2.Writes())
	after := Run(context.Background(), members(c1, c2), shop)
	if !after.Success || len(after.Named(Fail)) > 0 || len(after.Named(Warn)) > 0 {
		t.Errorf("after a sync, not every check passed:\n%s", dump(after))
	}
	if n := len(c1.Writes()) + len(c2.Writes()); n != writes {
		t.Errorf("check wrote %d times, want none", n-writes)
	}
	for _, category := range []string{CategoryAPI, CategoryCRDs, CategoryIDs, CategoryRBAC, CategoryDNS, CategoryNamespaces, CategoryExports, CategoryImports, CategoryControllers} {
		if !hasCategory(after, category) {
			t.Errorf("no category %s:\n%s", category, dump(after))
		}
	}
	if c := find(t, after, CategoryIDs, "cluster id", "cluster2"); !strings.Contains(c.Message, `"cluster2"`) || !strings.Contains(c.Message, "from the context name") {
		t.Errorf("cluster id check %+v does not say the id and its source", c)
	}
	if c := find(t, after, CategoryCRDs, "same release everywhere", ""); !strings.Contains(c.Message, "v0.5") {
		t.Errorf("release check %+v does not name the release", c)
	}
}

func hasCategory(r Report, name string) bool {
	for _, c := range r.Categories {
		if c.Name == name {
			return true
		}
	}
	return false
}

// TestEachBreakageFailsItsCheck breaks a synced clusterset one way at a
// time and sees that check, and only it, fail (or warn) with its fix.
func TestEachBreakageFailsItsCheck(t *testing.T) {
	cases := []struct {
		name     string
		breakIt  func(t *testing.T, c1, c2 *clustersettest.Fake)
		opts     Options
		category string
		check    string
		cluster  string
		result   Result
		want     []string // in the message, details or fix
	}{
		{"v1alpha1-only CRDs", func(t *testing.T, _, c2 *clustersettest.Fake) {
			for _, m := range mustManifests(t) {
				if err := crds.RestrictToVersion(m, "v1alpha1"); err != nil {
					t.Fatal(err)
				}
				if err := c2.Dynamic.Tracker().Update(crds.GVR, m, ""); err != nil {
					t.Fatal(err)
				}
			}
		}, shop, CategoryCRDs, "CRDs installed", "cluster2", Fail, []string{"serves only v1alpha1", "kubectl mcs crds install --context cluster2"}},
		{"CRDs missing", func(t *testing.T, _, c2 *clustersettest.Fake) {
			if err := c2.Dynamic.Tracker().Delete(crds.GVR, "", crds.ServiceImportCRDName); err != nil {
				t.Fatal(err)
			}
		}, Options{Pre: true}, CategoryCRDs, "CRDs installed", "cluster2", Fail, []string{"not installed: " + crds.ServiceImportCRDName, "kubectl mcs crds install --context cluster2"}},
		{"duplicate cluster id", func(t *testing.T, _, c2 *clustersettest.Fake) {
			c2.ServeClusterProperty("v1beta1")
			c2.Add(clusterProperty("cluster1"))
		}, shop, CategoryIDs, "cluster id", "cluster2", Fail, []string{`id "cluster1" (from ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)) is also the id of cluster1`, "kubectl patch clusterproperty.about.k8s.io cluster.clusterset.k8s.io"}},
		{"invalid cluster id", func(t *testing.T, _, c2 *clustersettest.Fake) {
			c2.ServeClusterProperty("v1beta1")
			c2.Add(clusterProperty("Not_A_Label"))
		}, shop, CategoryIDs, "cluster id", "cluster2", Fail, []string{"not a valid DNS label"}},
		{"missing namespace", func(t *testing.T, _, c2 *clustersettest.Fake) {
			if err := c2.Kube.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", "shop"); err != nil {
				t.Fatal(err)
			}
		}, Options{Now: shop.Now}, CategoryNamespaces, "exported namespaces exist", "cluster2", Fail, []string{"shop", "kubectl create namespace shop --context cluster2"}},
		{"unpatched Corefile", func(t *testing.T, _, c2 *clustersettest.Fake) {
			if err := c2.Kube.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, corefile(plainCorefile), "kube-system"); err != nil {
				t.Fatal(err)
			}
		}, shop, CategoryDNS, "serves clusterset.local", "cluster2", Fail, []string{"kubectl mcs dns --patch --context cluster2"}},
		{"old CoreDNS", func(t *testing.T, _, c2 *clustersettest.Fake) {
			if err := c2.Kube.Tracker().Update(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, corednsDeployment("coredns/coredns:1.11.1"), "kube-system"); err != nil {
				t.Fatal(err)
			}
		}, shop, CategoryDNS, "CoreDNS >= 1.12.2", "cluster2", Fail, []string{"1.11.1", "upgrade"}},
		{"second field manager on an import", func(t *testing.T, _, c2 *clustersettest.Fake) {
			gvr := c2.MCSResource(clusterset.ServiceImports)
			si := c2.Get(gvr, "shop", "web")
			mf := si.GetManagedFields()
			si.SetManagedFields(append(mf, metav1.ManagedFieldsEntry{Manager: "other-mcs-controller", Operation: metav1.ManagedFieldsOperationUpdate}))
			if err := c2.Dynamic.Tracker().Update(gvr, si, "shop"); err != nil {
				t.Fatal(err)
			}
		}, shop, CategoryControllers, "no other writer", "cluster2", Warn, []string{`"other-mcs-controller"`, "ServiceImport shop/web"}},
		{"export without its Service", func(t *testing.T, c1, _ *clustersettest.Fake) {
			if err := c1.Kube.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "services"}, "shop", "web"); err != nil {
				t.Fatal(err)
			}
		}, shop, CategoryExports, "exports valid, without conflict", "cluster1", Fail, []string{"shop/web is not valid (NoService)", "kubectl mcs unexport web -n shop --context cluster1"}},
		{"orphaned slices", func(t *testing.T, c1, _ *clustersettest.Fake) {
			if err := c1.Dynamic.Tracker().Delete(c1.MCSResource(clusterset.ServiceExports), "shop", "web"); err != nil {
				t.Fatal(err)
			}
		}, shop, CategoryImports, "no orphaned objects", "cluster2", Fail, []string{"shop/web", "delete EndpointSlice", "kubectl mcs sync --clusters cluster1,cluster2 -n shop"}},
		{"forbidden", func(t *testing.T, _, c2 *clustersettest.Fake) {
			c2.Rules = []authorizationv1.ResourceRule{{Verbs: []string{"get", "list"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
		}, shop, CategoryRBAC, "may sync", "cluster2", Fail, []string{"may not", "serviceimports.multicluster.x-k8s.io in namespace shop", "deploy/rbac/"}},
		{"API server down", func(t *testing.T, _, c2 *clustersettest.Fake) {
			c2.Kube.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, &url.Error{Op: "Get", URL: "https://cluster2.test:6443/version", Err: syscall.ECONNREFUSED}
			})
			c2.Dynamic.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, &url.Error{Op: "Get", URL: "https://cluster2.test:6443/apis", Err: syscall.ECONNREFUSED}
			})
		}, shop, CategoryAPI, "API reachable", "cluster2", Fail, []string{"cannot reach the API server", "kubectl cluster-info --context cluster2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := exporter(t), healthyCluster(t, "cluster2")
			sync(t, c1, c2)
			tc.breakIt(t, c1, c2)
			opts := tc.opts
			if opts.Now == nil {
				opts.Now = shop.Now
			}
			r := Run(context.Background(), members(c1, c2), opts)
			got := find(t, r, tc.category, tc.check, tc.cluster)
			if got.Result != tc.result {
				t.Errorf("%s [%s] is %s, want %s:\n%s", tc.check, tc.cluster, got.Result, tc.result, dump(r))
			}
			text := got.Message + "\n" + strings.Join(got.Details, "\n") + "\n" + strings.Join(got.Fix, "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s [%s] does not say %q:\n%s", tc.check, tc.cluster, w, text)
				}
			}
			if tc.result == Warn && !r.Success {
				t.Errorf("a warning failed the run:\n%s", dump(r))
			}
			if tc.result == Fail && r.Success {
				t.Errorf("a failed check left Success true")
			}
			// The checks of other subjects still pass, except those that
			// follow from this breakage by the rules themselves.
			for _, other := range r.Named(Fail) {
				if !strings.HasPrefix(other, tc.category+"/") && !follows(tc.name, other) {
					t.Errorf("breaking %q also failed %s:\n%s", tc.name, other, dump(r))
				}
			}
		})
	}
}

// follows lists the failures a breakage brings by the rules themselves:
// an API server that is down cannot be checked further; a namespace
// missing leaves its imports there to be deleted.
func follows(breakage, check string) bool {
	switch breakage {
	case "missing namespace":
		return check == CategoryImports+"/no orphaned objects/cluster2"
	case "export without its Service":
		// Its imports go with it, everywhere.
		return strings.HasPrefix(check, CategoryImports+"/no orphaned objects/")
	case "duplicate cluster id":
		return check == CategoryIDs+"/cluster id/cluster1"
	}
	return false
}

func mustManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	m, err := crds.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func clusterProperty(value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": clusterset.ClusterPropertyGroup + "/v1beta1", "kind": "ClusterProperty",
		"metadata": map[string]any{"name": clusterset.ClusterIDProperty},
		"spec":     map[string]any{"value": value},
	}}
	return u
}

// TestPreChecksOnlyTheSetup: --pre runs before any export and names no
// export, import or namespace check.
func TestPreChecksOnlyTheSetup(t *testing.T) {
	c1, c2 := healthyCluster(t, "cluster1"), healthyCluster(t, "cluster2")
	r := Run(context.Background(), members(c1, c2), Options{Pre: true})
	for _, cat := range r.Categories {
		switch cat.Name {
		case CategoryAPI, CategoryCRDs, CategoryIDs, CategoryRBAC, CategoryDNS:
		default:
			t.Errorf("--pre ran category %s", cat.Name)
		}
	}
	if !r.Success {
		t.Errorf("--pre on a healthy clusterset failed:\n%s", dump(r))
	}
	if c := find(t, r, CategoryRBAC, "may sync", "cluster1"); !strings.Contains(c.Message, "namespace default") {
		t.Errorf("--pre -A reviews permissions in %q, want the context's namespace (default)", c.Message)
	}
}

// TestConnectErrorIsAFailedCheck: a context that cannot be connected fails
// the API check and the others are checked all the same.
func TestConnectErrorIsAFailedCheck(t *testing.T) {
	c1 := healthyCluster(t, "cluster1")
	ms := append(members(c1), clusterset.Member{Context: "gone", Err: &clusterset.Error{Context: "gone", Err: errString("context not found in the kubeconfig")}})
	r := Run(context.Background(), ms, Options{Pre: true})
	if c := find(t, r, CategoryAPI, "API reachable", "gone"); c.Result != Fail || !strings.Contains(c.Message, "context not found") {
		t.Errorf("unconnected context: %+v", c)
	}
	if c := find(t, r, CategoryDNS, "serves clusterset.local", "cluster1"); c.Result != Pass {
		t.Errorf("the other cluster was not checked: %+v", c)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestConflictIsAWarning: two exports of one service that disagree on a
// port are in conflict, which warns but does not fail the run.
func TestConflictIsAWarning(t *testing.T) {
	other := clustersettest.Service("shop", "web", false)
	other.Spec.Ports[0].Port = 81
	c1 := exporter(t)
	c2 := healthyCluster(t, "cluster2", other, clustersettest.Export("shop", "web"), clustersettest.Slice("shop", "web", "10.2.0.1"))
	sync(t, c1, c2)
	r := Run(context.Background(), members(c1, c2), shop)
	c := find(t, r, CategoryExports, "exports valid, without conflict", "cluster2")
	if c.Result != Warn || !strings.Contains(strings.Join(c.Details, "\n"), string(mcsv1beta1.ServiceExportReasonPortConflict)) {
		t.Errorf("conflicting export: %+v\n%s", c, dump(r))
	}
	if !r.Success {
		t.Errorf("a conflict failed the run:\n%s", dump(r))
	}
}
