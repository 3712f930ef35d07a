package engine_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

var (
	servicesGVR       = corev1.SchemeGroupVersion.WithResource("services")
	endpointSlicesGVR = discoveryv1.SchemeGroupVersion.WithResource("endpointslices")
	namespacesGVR     = corev1.SchemeGroupVersion.WithResource("namespaces")
	serviceImportsGVR = schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: "v1beta1", Resource: clusterset.ServiceImports}
	now               = clustersettest.Created.Add(time.Hour)
	shop              = snapshot.Scope{Namespace: "shop"}
)

func clusters(fakes ...*clustersettest.Fake) []*clusterset.Cluster {
	out := make([]*clusterset.Cluster, len(fakes))
	for i, f := range fakes {
		out[i] = f.Cluster
	}
	return out
}

func newEngine(sources, consumers []*clustersettest.Fake, missing engine.MissingNamespaces) *engine.Engine {
	return &engine.Engine{
		Sources: clusters(sources...), Consumers: clusters(consumers...),
		MissingNamespaces: missing, Now: func() time.Time { return now },
	}
}

// exporter is a cluster holding namespace shop and exporting web from it.
func exporter(name string, headless bool, address string) *clustersettest.Fake {
	return clustersettest.New(name, append([]runtime.Object{clustersettest.Namespace("shop")},
		clustersettest.Exported("shop", "web", headless, address)...)...)
}

func resultLines(results []apply.Result) []string {
	out := make([]string, len(results))
	for i, r := range results {
		out[i] = r.Cluster + ": " + r.String()
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func assertNoWrites(t *testing.T, fakes ...*clustersettest.Fake) {
	t.Helper()
	for _, f := range fakes {
		if w := f.Writes(); len(w) > 0 {
			t.Errorf("%s: %d writes, want none: %v", f.Cluster.Context, len(w), w)
		}
	}
}

// Both clusters are sources and consumers (sync); c1 exports a ClusterIP
// service. Each consumer gets the derived Service first, then the
// ServiceImport, written once and complete: its ips are the cluster IP the
// API server allocated to that consumer's derived Service.
func TestSyncClusterSetIPImportWrittenOnceWithAllocatedIP(t *testing.T) {
	c1 := exporter("c1", false, "10.1.0.1")
	c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
	c1.ClusterIPPrefix, c2.ClusterIPPrefix = "10.11.0.", "10.22.0."
	all := []*clustersettest.Fake{c1, c2}
	eng := newEngine(all, all, engine.SkipMissingNamespaces)

	report, err := eng.Sync(context.Background(), shop)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for _, f := range all {
		writes := f.Writes()
		svc := slices.Index(writes, "patch services shop/amcs-web")
		imp := slices.Index(writes, "patch serviceimports shop/web")
		if svc < 0 || imp < 0 || svc > imp {
			t.Errorf("%s: derived Service (#%d) not written before the ServiceImport (#%d): %v", f.Cluster.Context, svc, imp, writes)
		}
		for _, w := range writes {
			if n := count(writes, w); n != 1 {
				t.Errorf("%s: %q written %d times in one sync", f.Cluster.Context, w, n)
			}
		}
		for _, want := range []string{"patch serviceimports/status shop/web", "patch endpointslices shop/amcs-web.c1-ipv4-0"} {
			if !slices.Contains(writes, want) {
				t.Errorf("%s: no %q among %v", f.Cluster.Context, want, writes)
			}
		}

		stored := f.Get(servicesGVR, "shop", "amcs-web")
		if stored == nil {
			t.Fatalf("%s: no derived Service", f.Cluster.Context)
		}
		ip, _, _ := unstructured.NestedString(stored.Object, "spec", "clusterIP")
		if !strings.HasPrefix(ip, f.ClusterIPPrefix) {
			t.Errorf("%s: derived Service has clusterIP %q, want one allocated by this cluster (%s*)", f.Cluster.Context, ip, f.ClusterIPPrefix)
		}
		si := f.Get(serviceImportsGVR, "shop", "web")
		if si == nil {
			t.Fatalf("%s: no ServiceImport", f.Cluster.Context)
		}
		ips, _, _ := unstructured.NestedStringSlice(si.Object, "spec", "ips")
		if !slices.Equal(ips, []string{ip}) {
			t.Errorf("%s: ServiceImport ips %q, want the derived Service's [%s]", f.Cluster.Context, ips, ip)
		}
		if typ, _, _ := unstructured.NestedString(si.Object, "spec", "type"); typ != "ClusterSetIP" {
			t.Errorf("%s: ServiceImport type %q", f.Cluster.Context, typ)
		}
		clustersOf, _, _ := unstructured.NestedSlice(si.Object, "status", "clusters")
		if len(clustersOf) != 1 || clustersOf[0].(map[string]any)["cluster"] != "c1" {
			t.Errorf("%s: ServiceImport status.clusters %v, want c1", f.Cluster.Context, clustersOf)
		}
	}
	if n := count(c1.Writes(), "patch serviceexports/status shop/web"); n != 1 {
		t.Errorf("c1: export status written %d times, want once", n)
	}
	if w := c2.Writes(); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "serviceexports") }) {
		t.Errorf("c2 exports nothing but got %v", w)
	}
	wantLines := []string{
		"c1: service/amcs-web created",
		"c2: service/amcs-web created",
		"c1: serviceimport.multicluster.x-k8s.io/web created",
		"c2: serviceimport.multicluster.x-k8s.io/web created",
		"c1: endpointslice.discovery.k8s.io/amcs-web.c1-ipv4-0 created",
		"c2: endpointslice.discovery.k8s.io/amcs-web.c1-ipv4-0 created",
		"c1: serviceexport.multicluster.x-k8s.io/web status configured",
	}
	if got := resultLines(report.Results); !slices.Equal(got, wantLines) {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	// The reported plan is the one applied: with the IPs filled in.
	if im := report.Plan.Consumer("c2").Imports; len(im) != 1 || len(im[0].Spec.IPs) != 1 {
		t.Errorf("reported plan holds %d imports for c2, want web with its IP", len(im))
	}
	if len(report.Unreachable)+len(report.Skipped) > 0 {
		t.Errorf("unreachable %v, skipped %v", report.Unreachable, report.Skipped)
	}
	reviews := len(c1.Reviews()) + len(c2.Reviews())
	if reviews != 2 {
		t.Errorf("%d permission reviews, want one per cluster and namespace (2)", reviews)
	}

	// A new endpoint: only the mirrored slices change, and the engine does
	// not ask again for permissions it was granted.
	slice := clustersettest.Slice("shop", "web", "10.1.0.1", "10.1.0.2")
	if err := c1.Kube.Tracker().Update(endpointSlicesGVR, slice, "shop"); err != nil {
		t.Fatal(err)
	}
	before := map[*clustersettest.Fake]int{c1: len(c1.Writes()), c2: len(c2.Writes())}
	if _, err := eng.Sync(context.Background(), shop); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	for _, f := range all {
		if got := f.Writes()[before[f]:]; !slices.Equal(got, []string{"patch endpointslices shop/amcs-web.c1-ipv4-0"}) {
			t.Errorf("%s: second sync wrote %v, want the mirrored slice only", f.Cluster.Context, got)
		}
	}
	if n := len(c1.Reviews()) + len(c2.Reviews()); n != reviews {
		t.Errorf("second sync sent %d more permission reviews, want none", n-reviews)
	}

	// Nothing changed: nothing written, by a new engine too.
	before = map[*clustersettest.Fake]int{c1: len(c1.Writes()), c2: len(c2.Writes())}
	again, err := newEngine(all, all, engine.SkipMissingNamespaces).Sync(context.Background(), shop)
	if err != nil {
		t.Fatalf("third Sync: %v", err)
	}
	for _, f := range all {
		if got := f.Writes()[before[f]:]; len(got) > 0 {
			t.Errorf("%s: a sync with nothing to change wrote %v", f.Cluster.Context, got)
		}
	}
	for _, r := range again.Results {
		if r.Action != apply.Unchanged {
			t.Errorf("result %s, want unchanged", r)
		}
	}
}

func TestSyncHeadlessImportHasNoIPs(t *testing.T) {
	c1 := exporter("c1", true, "10.1.0.1")
	c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
	if _, err := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	svc := c2.Get(servicesGVR, "shop", "amcs-web")
	if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != corev1.ClusterIPNone {
		t.Errorf("derived Service clusterIP %q, want None", ip)
	}
	si := c2.Get(serviceImportsGVR, "shop", "web")
	if typ, _, _ := unstructured.NestedString(si.Object, "spec", "type"); typ != "Headless" {
		t.Errorf("import type %q, want Headless", typ)
	}
	if ips, found, _ := unstructured.NestedStringSlice(si.Object, "spec", "ips"); found {
		t.Errorf("headless import has ips %q", ips)
	}
	if n := count(c2.Writes(), "patch serviceimports shop/web"); n != 1 {
		t.Errorf("ServiceImport written %d times", n)
	}
}

func TestSyncMissingNamespaces(t *testing.T) {
	t.Run("fail: nothing written, cluster, namespace and fix named", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2")
		report, err := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c1, c2}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop)
		if err == nil {
			t.Fatal("Sync passed with namespace shop missing in c2")
		}
		for _, want := range []string{"nothing was written", "c2: namespace shop does not exist; it is needed to import web",
			"fix: kubectl create namespace shop --context c2, or pass --create-namespace"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%s", want, err)
			}
		}
		if strings.Contains(err.Error(), "c1:") {
			t.Errorf("error names c1, which has the namespace:\n%s", err)
		}
		assertNoWrites(t, c1, c2)
		if len(report.Results) > 0 {
			t.Errorf("results %v", resultLines(report.Results))
		}
	})
	t.Run("skip: reported, the others synced", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2")
		all := []*clustersettest.Fake{c1, c2}
		report, err := newEngine(all, all, engine.SkipMissingNamespaces).Sync(context.Background(), shop)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if len(report.Skipped) != 1 {
			t.Fatalf("skipped %+v, want c2 shop", report.Skipped)
		}
		s := report.Skipped[0]
		if s.Cluster.Context != "c2" || s.Namespace != "shop" || !slices.Equal(s.Services, []string{"web"}) {
			t.Errorf("skipped %s %s %v, want c2 shop [web]", s.Cluster.Context, s.Namespace, s.Services)
		}
		if fix := s.Fix(); fix != "kubectl create namespace shop --context c2" {
			t.Errorf("fix %q", fix)
		}
		assertNoWrites(t, c2)
		if c1.Get(serviceImportsGVR, "shop", "web") == nil {
			t.Error("c1 was not synced")
		}
	})
	t.Run("create: namespace first, labeled, then the import", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2")
		report, err := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2}, engine.CreateMissingNamespaces).Sync(context.Background(), shop)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		writes := c2.Writes()
		if len(writes) == 0 || writes[0] != "create namespaces /shop" || !slices.Contains(writes, "patch serviceimports shop/web") {
			t.Errorf("c2 writes %v, want the namespace first, then the import", writes)
		}
		ns := c2.Get(namespacesGVR, "", "shop")
		if ns == nil || ns.GetLabels()[reconcile.ManagedByLabel] != reconcile.FieldManager {
			t.Errorf("namespace shop not created with the managed-by label: %v", ns)
		}
		if got := resultLines(report.Namespaces); !slices.Equal(got, []string{"c2: namespace/shop created"}) {
			t.Errorf("namespaces reported %v", got)
		}
	})
}

func connectionRefused(host string) error {
	return &url.Error{Op: "Get", URL: "https://" + host + "/apis", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
}

// failReads makes every list and get of a fake fail with err.
func failReads(f *clustersettest.Fake, err error) {
	fail := func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, err }
	for _, verb := range []string{"list", "get"} {
		f.Kube.PrependReactor(verb, "*", fail)
		f.Dynamic.PrependReactor(verb, "*", fail)
	}
}

func TestSyncUnreachable(t *testing.T) {
	t.Run("source: synced as unreachable, the others synced", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
		c3 := exporter("c3", false, "10.3.0.1")
		failReads(c3, connectionRefused("c3.test:6443"))
		report, err := newEngine([]*clustersettest.Fake{c1, c3}, []*clustersettest.Fake{c2}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop)
		var unreachable *engine.UnreachableError
		if !errors.As(err, &unreachable) {
			t.Fatalf("Sync = %v, want an *UnreachableError", err)
		}
		if len(unreachable.Clusters) != 1 || unreachable.Clusters[0].Cluster.Context != "c3" {
			t.Errorf("unreachable %+v, want c3", unreachable.Clusters)
		}
		for _, want := range []string{"synced without c3", "cannot reach the API server https://c3.test:6443", "connection refused"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%s", want, err)
			}
		}
		if len(report.Unreachable) != 1 {
			t.Errorf("report lists unreachable %v", report.Unreachable)
		}
		si := c2.Get(serviceImportsGVR, "shop", "web")
		if si == nil {
			t.Fatal("c2 got no ServiceImport")
		}
		if cl, _, _ := unstructured.NestedSlice(si.Object, "status", "clusters"); len(cl) != 1 || cl[0].(map[string]any)["cluster"] != "c1" {
			t.Errorf("import's clusters %v, want c1", cl)
		}
		if !slices.Contains(c1.Writes(), "patch serviceexports/status shop/web") {
			t.Errorf("c1's export status not written: %v", c1.Writes())
		}
		assertNoWrites(t, c3)
		if len(report.Results) == 0 {
			t.Error("no results reported")
		}
	})
	t.Run("consumer: left out, the others synced", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
		c3 := clustersettest.New("c3", clustersettest.Namespace("shop"))
		failReads(c3, connectionRefused("c3.test:6443"))
		_, err := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2, c3}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop)
		var unreachable *engine.UnreachableError
		if !errors.As(err, &unreachable) || len(unreachable.Clusters) != 1 || unreachable.Clusters[0].Cluster.Context != "c3" {
			t.Fatalf("Sync = %v, want an *UnreachableError naming c3", err)
		}
		if c2.Get(serviceImportsGVR, "shop", "web") == nil {
			t.Error("c2 was not synced")
		}
		assertNoWrites(t, c3)
	})
	t.Run("every consumer: nothing written", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
		failReads(c2, connectionRefused("c2.test:6443"))
		_, err := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop)
		var unreachable *engine.UnreachableError
		if err == nil || errors.As(err, &unreachable) || !strings.Contains(err.Error(), "nothing was written") || !strings.Contains(err.Error(), "c2: ") ||
			!strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Sync = %v, want nothing written, c2 named", err)
		}
		assertNoWrites(t, c1, c2)
	})
	t.Run("a read refused: nothing written", func(t *testing.T) {
		c1 := exporter("c1", false, "10.1.0.1")
		c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
		c3 := exporter("c3", false, "10.3.0.1")
		c3.Kube.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(servicesGVR.GroupResource(), "", errors.New("RBAC"))
		})
		_, err := newEngine([]*clustersettest.Fake{c1, c3}, []*clustersettest.Fake{c2}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop)
		if err == nil || !strings.Contains(err.Error(), "nothing was written") || !strings.Contains(err.Error(), "c3: listing Services in namespace shop") {
			t.Fatalf("Sync = %v, want nothing written, c3's refusal named", err)
		}
		assertNoWrites(t, c1, c2, c3)
	})
}

// A user's Service holding the derived name in one consumer blocks the
// service everywhere: nothing is written in any cluster, not even the
// export's status, and no permission is asked.
func TestSyncProblemWritesNothing(t *testing.T) {
	c1 := exporter("c1", false, "10.1.0.1")
	users := clustersettest.Service("shop", "amcs-web", false)
	users.Labels = map[string]string{"app.kubernetes.io/managed-by": "helm"}
	c2 := clustersettest.New("c2", clustersettest.Namespace("shop"), users)
	all := []*clustersettest.Fake{c1, c2}
	report, err := newEngine(all, all, engine.SkipMissingNamespaces).Sync(context.Background(), shop)
	if err == nil {
		t.Fatal("Sync passed over a user's Service amcs-web")
	}
	for _, want := range []string{"nothing was written", "c2: Service shop/amcs-web exists in c2 and is not managed by kubectl-mcs",
		"app.kubernetes.io/managed-by=helm", "fix: rename or delete it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%s", want, err)
		}
	}
	if len(report.Plan.Problems) != 1 {
		t.Errorf("problems %v", report.Plan.Problems)
	}
	assertNoWrites(t, c1, c2)
	if n := len(c1.Reviews()) + len(c2.Reviews()); n != 0 {
		t.Errorf("%d permission reviews for a sync that writes nothing", n)
	}
	if svc := c2.Get(servicesGVR, "shop", "amcs-web"); svc.GetLabels()["app.kubernetes.io/managed-by"] != "helm" {
		t.Errorf("the user's Service was changed: %v", svc.GetLabels())
	}
}

func TestSyncPreflightDenialWritesNothing(t *testing.T) {
	c1 := exporter("c1", false, "10.1.0.1")
	c2 := clustersettest.New("c2", clustersettest.Namespace("shop"))
	c2.Rules = nil
	_, err := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2}, engine.FailOnMissingNamespaces).Sync(context.Background(), shop)
	if err == nil || !strings.Contains(err.Error(), "c2: forbidden") || !strings.Contains(err.Error(), "patch services in namespace shop") {
		t.Fatalf("Sync = %v, want c2's missing permissions", err)
	}
	assertNoWrites(t, c1, c2)
}

// A client dry run sends no request but reads, and reports every object.
func TestSyncClientDryRun(t *testing.T) {
	c1 := exporter("c1", false, "10.1.0.1")
	c2 := clustersettest.New("c2")
	eng := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2}, engine.CreateMissingNamespaces)
	eng.DryRun = cmdutil.DryRunClient
	report, err := eng.Sync(context.Background(), shop)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	assertNoWrites(t, c1, c2)
	for _, f := range []*clustersettest.Fake{c1, c2} {
		for _, a := range append(f.Kube.Actions(), f.Dynamic.Actions()...) {
			if v := a.GetVerb(); v != "get" && v != "list" {
				t.Errorf("%s: %s %s sent under a client dry run", f.Cluster.Context, v, a.GetResource().Resource)
			}
		}
	}
	if len(report.Namespaces) != 1 || len(report.Results) != 4 {
		t.Errorf("namespaces %v, results %v", resultLines(report.Namespaces), resultLines(report.Results))
	}
}
