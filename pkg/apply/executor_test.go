package apply_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

var (
	servicesGVR       = corev1.SchemeGroupVersion.WithResource("services")
	endpointSlicesGVR = discoveryv1.SchemeGroupVersion.WithResource("endpointslices")
	serviceImportsGVR = schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: "v1beta1", Resource: clusterset.ServiceImports}
)

// fixture: c1 exports web (ClusterIP) and db (headless) in shop and api in
// other; c2 holds both namespaces and a slice mirrored from c1 for an
// address type c1 no longer has, which the plan deletes.
type fixture struct {
	c1, c2 *clustersettest.Fake
	plan   reconcile.Plan
	stale  *discoveryv1.EndpointSlice
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	var exported []runtime.Object
	exported = append(exported, clustersettest.Exported("shop", "web", false, "10.1.0.1")...)
	exported = append(exported, clustersettest.Exported("shop", "db", true, "10.1.0.2")...)
	exported = append(exported, clustersettest.Exported("other", "api", true, "10.1.0.3")...)
	stale := clustersettest.Mirrored("shop", "web", "c1", discoveryv1.AddressTypeIPv6, "fd00::1")
	f := &fixture{
		c1:    clustersettest.New("c1", exported...),
		c2:    clustersettest.New("c2", clustersettest.Namespace("shop"), clustersettest.Namespace("other"), stale),
		stale: stale,
	}
	snap := reconcile.Snapshot{
		Now:     metav1.NewTime(clustersettest.Created.Add(3600e9)),
		Sources: []reconcile.Source{sourceOf("c1", exported)},
		Consumers: []reconcile.Consumer{{
			ClusterID: "c2", Namespaces: []string{"other", "shop"},
			EndpointSlices: []discoveryv1.EndpointSlice{*stale},
		}},
	}
	f.plan = reconcile.Reconcile(snap)
	if len(f.plan.Problems) > 0 {
		t.Fatalf("fixture plan has problems: %v", f.plan.Problems)
	}
	return f
}

func sourceOf(id string, objects []runtime.Object) reconcile.Source {
	src := reconcile.Source{ClusterID: id}
	for _, o := range objects {
		switch o := o.(type) {
		case *mcsv1beta1.ServiceExport:
			src.Exports = append(src.Exports, *o)
		case *corev1.Service:
			src.Services = append(src.Services, *o)
		case *discoveryv1.EndpointSlice:
			src.EndpointSlices = append(src.EndpointSlices, *o)
		}
	}
	return src
}

func (f *fixture) executor(mode cmdutil.DryRunStrategy) *apply.Executor {
	return &apply.Executor{Clusters: clustersettest.Clusters(f.c1, f.c2), DryRun: mode}
}

// writeActions are the write requests a fake received (not the reviews).
func writeActions(f *clustersettest.Fake) []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range f.Dynamic.Actions() {
		if a.GetVerb() == "patch" || a.GetVerb() == "delete" || a.GetVerb() == "create" || a.GetVerb() == "update" {
			out = append(out, a)
		}
	}
	return out
}

func lines(results []apply.Result) []string {
	out := make([]string, len(results))
	for i, r := range results {
		out[i] = r.Cluster + ": " + r.String()
	}
	return out
}

// wantLines are the results of the fixture's plan, in plan order: one line
// per object, a ServiceImport's status folded into its own line.
var wantLines = []string{
	"c2: service/amcs-api created",
	"c2: service/amcs-db created",
	"c2: service/amcs-web created",
	"c2: serviceimport.multicluster.x-k8s.io/api created",
	"c2: serviceimport.multicluster.x-k8s.io/db created",
	"c2: serviceimport.multicluster.x-k8s.io/web created",
	"c2: endpointslice.discovery.k8s.io/amcs-api.c1-ipv4-0 created",
	"c2: endpointslice.discovery.k8s.io/amcs-db.c1-ipv4-0 created",
	"c2: endpointslice.discovery.k8s.io/amcs-web.c1-ipv4-0 created",
	"c1: serviceexport.multicluster.x-k8s.io/api status configured",
	"c1: serviceexport.multicluster.x-k8s.io/db status configured",
	"c1: serviceexport.multicluster.x-k8s.io/web status configured",
	"c2: endpointslice.discovery.k8s.io/amcs-web.c1-ipv6-0 deleted",
}

func TestExecuteFollowsPlanOrder(t *testing.T) {
	f := newFixture(t)
	// One log per cluster, in the order the requests arrive.
	var mu sync.Mutex
	log := map[string][]string{}
	for _, c := range []*clustersettest.Fake{f.c1, f.c2} {
		c.Dynamic.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "patch" || a.GetVerb() == "delete" {
				r := a.GetResource().Resource
				if a.GetSubresource() != "" {
					r += "/" + a.GetSubresource()
				}
				mu.Lock()
				log[c.Cluster.ID] = append(log[c.Cluster.ID], a.GetVerb()+" "+r)
				mu.Unlock()
			}
			return false, nil, nil
		})
	}
	results, applied, err := f.executor(cmdutil.DryRunNone).Execute(context.Background(), f.plan, f.plan.Changes)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if got := lines(results); !slices.Equal(got, wantLines) {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if n := len(log["c1"]) + len(log["c2"]); n != len(f.plan.Changes) {
		t.Errorf("%d writes for %d changes: %v", n, len(f.plan.Changes), log)
	}
	// With one write at a time, a cluster's writes go out in plan order.
	x := f.executor(cmdutil.DryRunNone)
	x.MaxInFlight = 1
	g := newFixture(t)
	x.Clusters = clustersettest.Clusters(g.c1, g.c2)
	sequential, _, err := x.Execute(context.Background(), g.plan, g.plan.Changes)
	if err != nil {
		t.Fatalf("Execute one at a time: %v", err)
	}
	if got := lines(sequential); !slices.Equal(got, wantLines) {
		t.Errorf("results one at a time:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	var want []string
	for _, w := range g.c2.Writes() {
		want = append(want, w)
	}
	var planned []string
	for _, ch := range g.plan.Changes {
		if ch.Cluster == "c2" {
			planned = append(planned, ch.Kind+" "+ch.Namespace+"/"+ch.Name)
		}
	}
	if len(want) != len(planned) {
		t.Errorf("c2 stored %d writes one at a time, want %d: %v", len(want), len(planned), want)
	}
	if f.c2.Get(endpointSlicesGVR, "shop", f.stale.Name) != nil {
		t.Errorf("stale slice %s not deleted", f.stale.Name)
	}
	// Applied holds the consumer objects, the ServiceImport once, as the
	// server returned it last (with its status).
	var imports int
	for _, a := range applied {
		if a.Object.GetKind() == "ServiceImport" && a.Object.GetName() == "web" {
			imports++
			if _, ok := a.Object.Object["status"]; !ok {
				t.Errorf("applied ServiceImport web has no status: %v", a.Object.Object)
			}
		}
		if a.ClusterID != "c2" {
			t.Errorf("applied object of %s listed: %s %s", a.ClusterID, a.Object.GetKind(), a.Object.GetName())
		}
	}
	if imports != 1 {
		t.Errorf("ServiceImport web applied %d times in the list, want 1", imports)
	}
}

func TestExecuteDryRun(t *testing.T) {
	for _, tc := range []struct {
		mode cmdutil.DryRunStrategy
		// requests: whether requests are sent; stored: whether they persist.
		requests, stored bool
	}{
		{mode: cmdutil.DryRunNone, requests: true, stored: true},
		{mode: cmdutil.DryRunClient},
		{mode: cmdutil.DryRunServer, requests: true},
	} {
		t.Run(dryRunName(tc.mode), func(t *testing.T) {
			f := newFixture(t)
			results, applied, err := f.executor(tc.mode).Execute(context.Background(), f.plan, f.plan.Changes)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if got := lines(results); !slices.Equal(got, wantLines) {
				t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
			}
			actions := append(writeActions(f.c1), writeActions(f.c2)...)
			if !tc.requests && len(actions) > 0 {
				t.Errorf("%d requests sent, want none: %v", len(actions), actions)
			}
			if tc.requests && len(actions) != len(f.plan.Changes) {
				t.Errorf("%d requests sent for %d changes", len(actions), len(f.plan.Changes))
			}
			for _, a := range actions {
				var dryRun []string
				switch a := a.(type) {
				case k8stesting.PatchActionImpl:
					dryRun = a.PatchOptions.DryRun
				case k8stesting.DeleteActionImpl:
					dryRun = a.DeleteOptions.DryRun
				}
				want := []string(nil)
				if tc.mode == cmdutil.DryRunServer {
					want = []string{metav1.DryRunAll}
				}
				if !slices.Equal(dryRun, want) {
					t.Errorf("%s %s: dryRun=%v, want %v", a.GetVerb(), a.GetResource().Resource, dryRun, want)
				}
			}
			written := len(f.c1.Writes()) + len(f.c2.Writes())
			if tc.stored != (written > 0) {
				t.Errorf("%d writes stored; want stored=%t", written, tc.stored)
			}
			if stale := f.c2.Get(endpointSlicesGVR, "shop", f.stale.Name); tc.stored == (stale != nil) {
				t.Errorf("stale slice present=%t after the run; want deleted=%t", stale != nil, tc.stored)
			}
			svc := findApplied(t, applied, "Service", "amcs-web")
			ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP")
			if tc.mode == cmdutil.DryRunClient && ip != "" {
				t.Errorf("client dry run returned Service amcs-web with clusterIP %q, want it as rendered (none)", ip)
			}
			if tc.mode != cmdutil.DryRunClient && ip == "" {
				t.Errorf("Service amcs-web as applied has no clusterIP: the server's answer was not returned")
			}
			si := findApplied(t, applied, "ServiceImport", "web")
			if clusters, _, _ := unstructured.NestedSlice(si.Object, "status", "clusters"); len(clusters) != 1 {
				t.Errorf("ServiceImport web returned with status.clusters %v, want c1", clusters)
			}
		})
	}
}

func dryRunName(m cmdutil.DryRunStrategy) string {
	return map[cmdutil.DryRunStrategy]string{cmdutil.DryRunNone: "none", cmdutil.DryRunClient: "client", cmdutil.DryRunServer: "server"}[m]
}

func findApplied(t *testing.T, applied []apply.Applied, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, a := range applied {
		if a.Object.GetKind() == kind && a.Object.GetName() == name {
			return a.Object
		}
	}
	t.Fatalf("no %s %s among the applied objects", kind, name)
	return nil
}

func TestExecuteRetriesLostCreateRace(t *testing.T) {
	gr := schema.GroupResource{Group: clusterset.MCSGroup, Resource: clusterset.ServiceImports}
	for name, lost := range map[string]error{
		"AlreadyExists": apierrors.NewAlreadyExists(gr, "web"),
		"Conflict":      apierrors.NewConflict(gr, "web", nil),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			var mu sync.Mutex
			attempts := 0
			f.c2.Dynamic.PrependReactor("patch", clusterset.ServiceImports, func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "" || a.(k8stesting.PatchActionImpl).GetName() != "web" {
					return false, nil, nil
				}
				mu.Lock()
				defer mu.Unlock()
				attempts++
				if attempts == 1 {
					return true, nil, lost
				}
				return false, nil, nil
			})
			results, _, err := f.executor(cmdutil.DryRunNone).Execute(context.Background(), f.plan, f.plan.Changes)
			if err != nil {
				t.Fatalf("Execute after a lost race: %v", err)
			}
			if attempts != 2 {
				t.Errorf("ServiceImport web sent %d times, want 2 (the lost race, the retry)", attempts)
			}
			if !slices.Contains(lines(results), "c2: serviceimport.multicluster.x-k8s.io/web created") {
				t.Errorf("results lack the import:\n%s", strings.Join(lines(results), "\n"))
			}
			if f.c2.Get(serviceImportsGVR, "shop", "web") == nil {
				t.Error("ServiceImport web not stored")
			}
		})
	}
}

func TestExecuteStopsAtFirstError(t *testing.T) {
	f := newFixture(t)
	f.c2.Dynamic.PrependReactor("patch", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchActionImpl).GetName() == "amcs-web.c1-ipv4-0" {
			return true, nil, apierrors.NewForbidden(endpointSlicesGVR.GroupResource(), "amcs-web.c1-ipv4-0", nil)
		}
		return false, nil, nil
	})
	// One write at a time makes the failing cluster's progress exact.
	x := f.executor(cmdutil.DryRunNone)
	x.MaxInFlight = 1
	results, _, err := x.Execute(context.Background(), f.plan, f.plan.Changes)
	if err == nil {
		t.Fatal("Execute succeeded with a forbidden slice")
	}
	for _, want := range []string{"c2: ", "EndpointSlice shop/amcs-web.c1-ipv4-0", "forbidden", "in c2 1 writes were not sent"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "c1:") || strings.Contains(err.Error(), "in c1") {
		t.Errorf("error %q names c1, which wrote everything", err)
	}
	// c2 wrote up to the failing slice (its Services, imports with their
	// statuses, two slices) and stopped; c1, another cluster, went on.
	want := append(slices.Clone(wantLines[:8]), wantLines[9:12]...)
	if got := lines(results); !slices.Equal(got, want) {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := f.c1.Writes(); len(w) != 3 {
		t.Errorf("c1 made %d writes, want its 3 export statuses: %v", len(w), w)
	}
	if f.c2.Get(endpointSlicesGVR, "shop", f.stale.Name) == nil {
		t.Error("c2 deleted a slice after its error")
	}
}

func TestResultsFoldImportAndStatus(t *testing.T) {
	for _, tc := range []struct {
		spec, status reconcile.Action
		want         apply.Action
		requests     int
	}{
		{reconcile.ActionCreate, reconcile.ActionUpdate, apply.Created, 2},
		{reconcile.ActionUpdate, reconcile.ActionUpdate, apply.Configured, 2},
		{reconcile.ActionUnchanged, reconcile.ActionUpdate, apply.Configured, 1},
		{reconcile.ActionUpdate, reconcile.ActionUnchanged, apply.Configured, 1},
		{reconcile.ActionUnchanged, reconcile.ActionUnchanged, apply.Unchanged, 0},
	} {
		t.Run(string(tc.spec)+"+"+string(tc.status), func(t *testing.T) {
			f := newFixture(t)
			im := f.plan.Consumer("c2").Imports[2]
			if im.Name != "web" {
				t.Fatalf("fixture: import %s, want web", im.Name)
			}
			// The spec must exist for a status-only write.
			f.c2.Add(im.DeepCopy())
			plan := reconcile.Plan{
				Consumers: []reconcile.ConsumerPlan{{Cluster: "c2", Imports: []mcsv1beta1.ServiceImport{im}}},
				Changes: []reconcile.Change{
					{Cluster: "c2", Action: tc.spec, Kind: reconcile.KindServiceImport, Namespace: "shop", Name: "web"},
					{Cluster: "c2", Action: tc.status, Kind: reconcile.KindServiceImportStatus, Namespace: "shop", Name: "web"},
				},
			}
			results, _, err := f.executor(cmdutil.DryRunNone).Execute(context.Background(), plan, plan.Changes)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			want := []string{"c2: serviceimport.multicluster.x-k8s.io/web " + string(tc.want)}
			if got := lines(results); !slices.Equal(got, want) {
				t.Errorf("results %q, want %q", got, want)
			}
			if n := len(writeActions(f.c2)); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestPreflightAsksOncePerClusterAndNamespace(t *testing.T) {
	f := newFixture(t)
	x := f.executor(cmdutil.DryRunNone)
	for run := 1; run <= 2; run++ {
		if err := x.Preflight(context.Background(), f.plan); err != nil {
			t.Fatalf("Preflight run %d: %v", run, err)
		}
		// c1 writes export statuses in both namespaces, c2 imports into both.
		want := []string{"other", "shop"}
		for _, c := range []*clustersettest.Fake{f.c1, f.c2} {
			if got := slices.Sorted(slices.Values(c.Reviews())); !slices.Equal(got, want) {
				t.Errorf("run %d: %s reviews in namespaces %v, want %v (once each, never again)", run, c.Cluster.Context, got, want)
			}
		}
	}
}

func TestPreflightNamesMissingPermissions(t *testing.T) {
	f := newFixture(t)
	// c2 may do everything but write EndpointSlices (it may delete them).
	f.c2.Rules = []authorizationv1.ResourceRule{
		{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"services"}},
		{Verbs: []string{"*"}, APIGroups: []string{clusterset.MCSGroup}, Resources: []string{"serviceimports", "serviceimports/status"}},
		{Verbs: []string{"delete", "get"}, APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}},
	}
	x := f.executor(cmdutil.DryRunNone)
	err := x.Preflight(context.Background(), f.plan)
	if err == nil {
		t.Fatal("Preflight passed without permission to write EndpointSlices")
	}
	msg := err.Error()
	for _, want := range []string{
		"c2: forbidden",
		"create endpointslices.discovery.k8s.io in namespace other",
		"create endpointslices.discovery.k8s.io in namespace shop",
		"patch endpointslices.discovery.k8s.io in namespace shop",
		"nothing was written",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	for _, granted := range []string{"delete endpointslices", "services", "serviceimports", "c1:"} {
		if strings.Contains(msg, granted) {
			t.Errorf("error names %q, which is granted:\n%s", granted, msg)
		}
	}
	// c1 passed and is not asked again; c2 failed and is.
	if err := x.Preflight(context.Background(), f.plan); err == nil {
		t.Error("second Preflight passed")
	}
	if got := len(f.c1.Reviews()); got != 2 {
		t.Errorf("c1 reviewed %d times, want 2 (one per namespace, once)", got)
	}
	if got := len(f.c2.Reviews()); got != 4 {
		t.Errorf("c2 reviewed %d times, want 4 (asked again after a denial)", got)
	}
}

func TestPreflightClientDryRunAsksNothing(t *testing.T) {
	f := newFixture(t)
	if err := f.executor(cmdutil.DryRunClient).Preflight(context.Background(), f.plan); err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	if n := len(f.c1.Reviews()) + len(f.c2.Reviews()); n != 0 {
		t.Errorf("%d reviews under a client dry run, want 0", n)
	}
}
