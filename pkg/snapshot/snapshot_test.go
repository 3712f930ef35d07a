package snapshot_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

func names[T any](list []T, meta func(*T) metav1.Object) []string {
	out := make([]string, 0, len(list))
	for i := range list {
		m := meta(&list[i])
		out = append(out, m.GetNamespace()+"/"+m.GetName())
	}
	return out
}

func exportNames(l []mcsv1beta1.ServiceExport) []string {
	return names(l, func(o *mcsv1beta1.ServiceExport) metav1.Object { return o })
}
func importNames(l []mcsv1beta1.ServiceImport) []string {
	return names(l, func(o *mcsv1beta1.ServiceImport) metav1.Object { return o })
}
func serviceNames(l []corev1.Service) []string {
	return names(l, func(o *corev1.Service) metav1.Object { return o })
}
func sliceNames(l []discoveryv1.EndpointSlice) []string {
	return names(l, func(o *discoveryv1.EndpointSlice) metav1.Object { return o })
}

// sourceObjects: c1 exports shop/web, shop/db and other/web; shop/plain is
// not exported; shop/web also has a slice kubectl mcs mirrored (c1 is a
// consumer too), which must never be exported again.
func sourceObjects() ([]mcsv1beta1.ServiceExport, []corev1.Service, []discoveryv1.EndpointSlice) {
	var exports []mcsv1beta1.ServiceExport
	var services []corev1.Service
	var slices []discoveryv1.EndpointSlice
	for _, o := range []runtime.Object{
		clustersettest.Export("shop", "web"), clustersettest.Export("shop", "db"), clustersettest.Export("other", "web"),
		clustersettest.Service("shop", "web", false), clustersettest.Service("shop", "db", true),
		clustersettest.Service("shop", "plain", false), clustersettest.Service("other", "web", false),
		clustersettest.Slice("shop", "web", "10.0.1.1"), clustersettest.Slice("shop", "db", "10.0.1.2"),
		clustersettest.Slice("shop", "plain", "10.0.1.3"), clustersettest.Slice("other", "web", "10.0.2.1"),
		mirroredAs("shop", "web"),
	} {
		switch o := o.(type) {
		case *mcsv1beta1.ServiceExport:
			exports = append(exports, *o)
		case *corev1.Service:
			services = append(services, *o)
		case *discoveryv1.EndpointSlice:
			slices = append(slices, *o)
		}
	}
	return exports, services, slices
}

// mirroredAs is a slice kubectl mcs made, labeled as a slice of service.
func mirroredAs(namespace, service string) *discoveryv1.EndpointSlice {
	s := clustersettest.Slice(namespace, service, "10.9.9.9")
	s.Name = service + "-mirrored"
	s.Labels[discoveryv1.LabelManagedBy] = reconcile.FieldManager
	return s
}

func TestBuildSource(t *testing.T) {
	for _, tc := range []struct {
		name                                  string
		scope                                 snapshot.Scope
		wantExports, wantServices, wantSlices []string
	}{
		{
			name:         "one namespace, one service",
			scope:        snapshot.Scope{Namespace: "shop", Services: []string{"web"}},
			wantExports:  []string{"shop/web"},
			wantServices: []string{"shop/web"},
			wantSlices:   []string{"shop/web-abcde"},
		},
		{
			name:         "one namespace",
			scope:        snapshot.Scope{Namespace: "shop"},
			wantExports:  []string{"shop/web", "shop/db"},
			wantServices: []string{"shop/web", "shop/db"},
			wantSlices:   []string{"shop/web-abcde", "shop/db-abcde"},
		},
		{
			name:         "one service, every namespace",
			scope:        snapshot.Scope{Services: []string{"web"}},
			wantExports:  []string{"shop/web", "other/web"},
			wantServices: []string{"shop/web", "other/web"},
			wantSlices:   []string{"shop/web-abcde", "other/web-abcde"},
		},
		{
			name:         "all",
			wantExports:  []string{"shop/web", "shop/db", "other/web"},
			wantServices: []string{"shop/web", "shop/db", "other/web"},
			wantSlices:   []string{"shop/web-abcde", "shop/db-abcde", "other/web-abcde"},
		},
		{
			name:  "nothing exported in scope",
			scope: snapshot.Scope{Namespace: "shop", Services: []string{"plain"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exports, services, slices := sourceObjects()
			src := snapshot.BuildSource("c1", exports, services, slices, tc.scope)
			if src.ClusterID != "c1" || src.Unreachable {
				t.Errorf("source %q unreachable=%t", src.ClusterID, src.Unreachable)
			}
			check(t, "exports", exportNames(src.Exports), tc.wantExports)
			check(t, "services", serviceNames(src.Services), tc.wantServices)
			check(t, "slices", sliceNames(src.EndpointSlices), tc.wantSlices)
		})
	}
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) && (len(got) > 0 || len(want) > 0) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// consumerObjects: c2 holds shop and other; derived Services and mirrored
// slices of web and db, a user's Service and slice holding derived names,
// and objects that have nothing to do with kubectl mcs.
func consumerObjects() ([]string, []mcsv1beta1.ServiceImport, []corev1.Service, []discoveryv1.EndpointSlice) {
	imp := func(ns, name string) mcsv1beta1.ServiceImport {
		return mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	svc := func(ns, name string, managed bool) corev1.Service {
		s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}}}
		if managed {
			s.Labels[reconcile.ManagedByLabel] = reconcile.FieldManager
		}
		return s
	}
	userSlice := func(ns, name string) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelManagedBy: "someone"}}}
	}
	return []string{"kube-system", "other", "shop"},
		[]mcsv1beta1.ServiceImport{imp("shop", "web"), imp("shop", "db"), imp("other", "web")},
		[]corev1.Service{
			svc("shop", "amcs-web", true),
			svc("shop", "amcs-db", false), // a user's, in the way of db's derived Service
			svc("shop", "web", false),     // an ordinary Service
			svc("shop", "legacy-web", true),
			svc("other", "amcs-web", true),
		},
		[]discoveryv1.EndpointSlice{
			*clustersettest.Mirrored("shop", "web", "c1", discoveryv1.AddressTypeIPv4, "10.0.1.1"),
			*clustersettest.Mirrored("shop", "db", "c1", discoveryv1.AddressTypeIPv4, "10.0.1.2"),
			userSlice("shop", "amcs-web.c9-ipv4-0"),    // in the way of a name of ours
			userSlice("shop", "amcs-webapp.c1-ipv4-0"), // another service's name
			userSlice("shop", "web-abcde"),             // no derived prefix
			*clustersettest.Mirrored("other", "web", "c1", discoveryv1.AddressTypeIPv4, "10.0.2.1"),
		}
}

func TestBuildConsumer(t *testing.T) {
	for _, tc := range []struct {
		name                                                  string
		scope                                                 snapshot.Scope
		wantNamespaces, wantImports, wantServices, wantSlices []string
	}{
		{
			name:           "one namespace, one service",
			scope:          snapshot.Scope{Namespace: "shop", Services: []string{"web"}},
			wantNamespaces: []string{"shop"},
			wantImports:    []string{"shop/web"},
			wantServices:   []string{"shop/amcs-web"},
			wantSlices:     []string{"shop/amcs-web.c1-ipv4-0", "shop/amcs-web.c9-ipv4-0"},
		},
		{
			name:           "one namespace",
			scope:          snapshot.Scope{Namespace: "shop"},
			wantNamespaces: []string{"shop"},
			wantImports:    []string{"shop/web", "shop/db"},
			wantServices:   []string{"shop/amcs-web", "shop/amcs-db", "shop/legacy-web"},
			wantSlices:     []string{"shop/amcs-web.c1-ipv4-0", "shop/amcs-db.c1-ipv4-0", "shop/amcs-web.c9-ipv4-0", "shop/amcs-webapp.c1-ipv4-0"},
		},
		{
			name:           "all",
			wantNamespaces: []string{"kube-system", "other", "shop"},
			wantImports:    []string{"shop/web", "shop/db", "other/web"},
			wantServices:   []string{"shop/amcs-web", "shop/amcs-db", "shop/legacy-web", "other/amcs-web"},
			wantSlices: []string{"shop/amcs-web.c1-ipv4-0", "shop/amcs-db.c1-ipv4-0", "shop/amcs-web.c9-ipv4-0",
				"shop/amcs-webapp.c1-ipv4-0", "other/amcs-web.c1-ipv4-0"},
		},
		{
			name:           "a namespace the consumer lacks",
			scope:          snapshot.Scope{Namespace: "missing", Services: []string{"web"}},
			wantNamespaces: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			namespaces, imports, services, slices := consumerObjects()
			con := snapshot.BuildConsumer("c2", namespaces, imports, services, slices, tc.scope)
			if con.ClusterID != "c2" {
				t.Errorf("consumer %q", con.ClusterID)
			}
			check(t, "namespaces", con.Namespaces, tc.wantNamespaces)
			check(t, "imports", importNames(con.Imports), tc.wantImports)
			check(t, "services", serviceNames(con.Services), tc.wantServices)
			check(t, "slices", sliceNames(con.EndpointSlices), tc.wantSlices)
		})
	}
}

// listActions are the list requests a fake cluster received, as
// "resource?labelSelector".
func listActions(f *clustersettest.Fake) []string {
	var out []string
	for _, a := range append(f.Kube.Actions(), f.Dynamic.Actions()...) {
		if l, ok := a.(k8stesting.ListActionImpl); ok {
			out = append(out, l.GetResource().Resource+"?"+l.GetListRestrictions().Labels.String())
		}
	}
	slices.Sort(out)
	return out
}

// selector is s as the list request carries it.
func selector(t *testing.T, s string) string {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatalf("selector %q: %v", s, err)
	}
	return sel.String()
}

// sourceCluster is a fake cluster c1 holding sourceObjects.
func sourceCluster() *clustersettest.Fake {
	exports, services, slices := sourceObjects()
	var objects []runtime.Object
	for i := range exports {
		objects = append(objects, &exports[i])
	}
	for i := range services {
		objects = append(objects, &services[i])
	}
	for i := range slices {
		objects = append(objects, &slices[i])
	}
	return clustersettest.New("c1", objects...)
}

// Reading costs one list per kind, whatever the scope; the selectors leave
// out what can never matter (mirrored slices in a source, the
// endpointslice controller's in a consumer).
func TestReadSourceListsEachKindOnce(t *testing.T) {
	f := sourceCluster()
	scope := snapshot.Scope{Namespace: "shop", Services: []string{"web"}}
	src, err := snapshot.ReadSource(context.Background(), f.Cluster, scope)
	if err != nil {
		t.Fatalf("ReadSource: %v", err)
	}
	check(t, "exports", exportNames(src.Exports), []string{"shop/web"})
	check(t, "services", serviceNames(src.Services), []string{"shop/web"})
	check(t, "slices", sliceNames(src.EndpointSlices), []string{"shop/web-abcde"})
	want := []string{"endpointslices?" + selector(t, snapshot.SourceSliceSelector), "serviceexports?", "services?"}
	check(t, "lists", listActions(f), want)
}

// List keeps what ReadSource drops for a diagnosis: the Services nobody
// exports, with one list per kind, and never a slice kubectl mcs mirrored.
func TestListKeepsUnexportedServices(t *testing.T) {
	f := sourceCluster()
	listing, err := snapshot.List(context.Background(), f.Cluster, "shop")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	check(t, "exports", exportNames(listing.Exports), []string{"shop/db", "shop/web"})
	check(t, "services", serviceNames(listing.Services), []string{"shop/db", "shop/plain", "shop/web"})
	check(t, "slices", sliceNames(listing.Slices), []string{"shop/db-abcde", "shop/plain-abcde", "shop/web-abcde"})
	want := []string{"endpointslices?" + selector(t, snapshot.SourceSliceSelector), "serviceexports?", "services?"}
	check(t, "lists", listActions(f), want)
}

// The three lists go out together (one round trip), so a cluster that
// exports nothing is listed in full too, and keeps nothing of it.
func TestReadSourceWithoutExportsKeepsNothing(t *testing.T) {
	f := clustersettest.New("c1", clustersettest.Service("shop", "web", false))
	src, err := snapshot.ReadSource(context.Background(), f.Cluster, snapshot.Scope{})
	if err != nil || len(src.Exports)+len(src.Services)+len(src.EndpointSlices) != 0 {
		t.Fatalf("ReadSource = %+v, %v", src, err)
	}
	check(t, "lists", listActions(f), []string{"endpointslices?" + selector(t, snapshot.SourceSliceSelector), "serviceexports?", "services?"})
}

func TestReadSourceWithoutMCSAPI(t *testing.T) {
	f := clustersettest.New("c1")
	f.ServeMCS()
	_, err := snapshot.ReadSource(context.Background(), f.Cluster, snapshot.Scope{})
	if err == nil || !strings.Contains(err.Error(), "crds install --context c1") {
		t.Errorf("ReadSource = %v, want the missing CRDs named", err)
	}
}

func TestReadConsumer(t *testing.T) {
	controllerSlice := clustersettest.Slice("shop", "web", "10.0.3.1") // the consumer's own Service's
	objects := []runtime.Object{
		clustersettest.Namespace("shop"), clustersettest.Namespace("other"), controllerSlice,
		clustersettest.Mirrored("shop", "web", "c1", discoveryv1.AddressTypeIPv4, "10.0.1.1"),
		&mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}},
	}
	t.Run("one namespace", func(t *testing.T) {
		f := clustersettest.New("c2", objects...)
		con, err := snapshot.ReadConsumer(context.Background(), f.Cluster, snapshot.Scope{Namespace: "shop", Services: []string{"web"}})
		if err != nil {
			t.Fatalf("ReadConsumer: %v", err)
		}
		check(t, "namespaces", con.Namespaces, []string{"shop"})
		check(t, "imports", importNames(con.Imports), []string{"shop/web"})
		check(t, "slices", sliceNames(con.EndpointSlices), []string{"shop/amcs-web.c1-ipv4-0"})
		check(t, "lists", listActions(f), []string{"endpointslices?" + selector(t, snapshot.ConsumerSliceSelector), "serviceimports?", "services?"})
	})
	t.Run("all namespaces", func(t *testing.T) {
		f := clustersettest.New("c2", objects...)
		con, err := snapshot.ReadConsumer(context.Background(), f.Cluster, snapshot.Scope{})
		if err != nil {
			t.Fatalf("ReadConsumer: %v", err)
		}
		check(t, "namespaces", con.Namespaces, []string{"other", "shop"})
		check(t, "lists", listActions(f), []string{"endpointslices?" + selector(t, snapshot.ConsumerSliceSelector), "namespaces?", "serviceimports?", "services?"})
	})
	t.Run("namespace missing: nothing is kept", func(t *testing.T) {
		f := clustersettest.New("c2", objects...)
		con, err := snapshot.ReadConsumer(context.Background(), f.Cluster, snapshot.Scope{Namespace: "missing"})
		if err != nil || len(con.Namespaces)+len(con.Imports)+len(con.Services)+len(con.EndpointSlices) != 0 {
			t.Fatalf("ReadConsumer = %+v, %v; want an empty consumer", con, err)
		}
	})
	t.Run("namespace missing, MCS API missing: not an error", func(t *testing.T) {
		f := clustersettest.New("c2", objects...)
		f.ServeMCS()
		con, err := snapshot.ReadConsumer(context.Background(), f.Cluster, snapshot.Scope{Namespace: "missing"})
		if err != nil || len(con.Namespaces) != 0 {
			t.Fatalf("ReadConsumer = %+v, %v; want an empty consumer", con, err)
		}
	})
}
