package exports_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/exports"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

var (
	exportsGVR = schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: "v1beta1", Resource: clusterset.ServiceExports}
	now        = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
)

func request(f *clustersettest.Fake, services ...string) exports.Request {
	return exports.Request{Cluster: f.Cluster, Namespace: "shop", Services: services, Now: now}
}

func external(namespace, name string) *corev1.Service {
	svc := clustersettest.Service(namespace, name, false)
	svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
	return svc
}

// TestExportChecksEveryServiceFirst: a missing or ExternalName Service
// among the named ones refuses the whole export, naming each problem and
// its fix, and nothing is written.
func TestExportChecksEveryServiceFirst(t *testing.T) {
	derived := clustersettest.Service("shop", reconcile.DerivedServiceName("api"), false)
	derived.Labels = map[string]string{reconcile.ManagedByLabel: reconcile.FieldManager, mcsv1beta1.LabelServiceName: "api"}
	f := clustersettest.New("east", clustersettest.Namespace("shop"), clustersettest.Service("shop", "web", false), external("shop", "legacy"), derived)
	_, err := exports.Export(context.Background(), request(f, "web", "legacy", "gone", derived.Name))
	if err == nil {
		t.Fatal("export succeeded with a missing, an ExternalName and a derived Service")
	}
	for _, want := range []string{"nothing was exported", "east", "Service shop/legacy is of type ExternalName", "Service shop/gone not found", "--allow-missing-service",
		"Service shop/amcs-api is the Service kubectl mcs derived from the ServiceImport shop/api", "export Service shop/api in a cluster that runs it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if w := f.Writes(); len(w) > 0 {
		t.Errorf("refused export wrote %v", w)
	}

	// A missing namespace is named as the cause, with the command that fixes it.
	bare := clustersettest.New("west")
	_, err = exports.Export(context.Background(), request(bare, "web"))
	if err == nil || !strings.Contains(err.Error(), "namespace shop does not exist") || !strings.Contains(err.Error(), "kubectl create namespace shop --context west") {
		t.Errorf("missing namespace: error %v, want it named with the fix", err)
	}
}

// TestExportWritesOnceAndAdopts: every named Service gets a labelled export
// with Valid=True, a second run writes nothing, and a hand-made export is
// adopted (labelled) without its spec being taken over.
func TestExportWritesOnceAndAdopts(t *testing.T) {
	handMade := clustersettest.Export("shop", "db")
	f := clustersettest.New("east", clustersettest.Namespace("shop"),
		clustersettest.Service("shop", "web", false), clustersettest.Service("shop", "db", true), handMade)
	out, err := exports.Export(context.Background(), request(f, "web", "db"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range out.Results {
		lines = append(lines, r.String())
	}
	want := []string{"serviceexport.multicluster.x-k8s.io/web created", "serviceexport.multicluster.x-k8s.io/db configured"}
	if !slices.Equal(lines, want) {
		t.Errorf("results %q, want %q (in the order named)", lines, want)
	}
	for _, name := range []string{"web", "db"} {
		u := f.Get(exportsGVR, "shop", name)
		if u == nil {
			t.Fatalf("export %s not stored", name)
		}
		if got := u.GetLabels()[reconcile.ManagedByLabel]; got != reconcile.FieldManager {
			t.Errorf("export %s label %s=%q, want %q", name, reconcile.ManagedByLabel, got, reconcile.FieldManager)
		}
		export := &mcsv1beta1.ServiceExport{}
		if err := apply.FromUnstructured(u, export); err != nil {
			t.Fatal(err)
		}
		if !meta.IsStatusConditionTrue(export.Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid)) {
			t.Errorf("export %s conditions %+v, want Valid=True", name, export.Status.Conditions)
		}
	}
	written := len(f.Writes())
	again, err := exports.Export(context.Background(), request(f, "web", "db"))
	if err != nil {
		t.Fatal(err)
	}
	if w := f.Writes()[written:]; len(w) > 0 {
		t.Errorf("a second export wrote %v, want nothing", w)
	}
	for _, r := range again.Results {
		if r.Action != apply.Unchanged {
			t.Errorf("second run: %s, want unchanged", r)
		}
	}
}

// TestExportAllSkipsExternalName: --all exports what can be exported and
// warns, naming the cluster, about each ExternalName Service it skips.
func TestExportAllSkipsExternalName(t *testing.T) {
	f := clustersettest.New("east", clustersettest.Namespace("shop"), clustersettest.Service("shop", "web", false), external("shop", "legacy"))
	r := request(f)
	r.All = true
	var warnings bytes.Buffer
	r.Warnings = &warnings
	out, err := exports.Export(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 1 || out.Results[0].Name != "web" {
		t.Errorf("results %v, want web alone", out.Results)
	}
	if !strings.Contains(warnings.String(), "east: skipping: Service shop/legacy is of type ExternalName") {
		t.Errorf("warnings %q, want legacy named", warnings.String())
	}
}

// TestExportDryRunWritesNothing: a client dry run returns what it would
// write and stores nothing.
func TestExportDryRunWritesNothing(t *testing.T) {
	f := clustersettest.New("east", clustersettest.Namespace("shop"), clustersettest.Service("shop", "web", false))
	r := request(f, "web")
	r.DryRun = cmdutil.DryRunClient
	out, err := exports.Export(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Objects) != 1 || out.Objects[0].GetName() != "web" {
		t.Errorf("objects %v, want the export of web", out.Objects)
	}
	if w := f.Writes(); len(w) > 0 {
		t.Errorf("dry run wrote %v", w)
	}
}

// TestUnexportOnlyOwnExports: an export kubectl mcs did not create is kept
// unless Force, and a missing one is named; either refuses the whole run.
func TestUnexportOnlyOwnExports(t *testing.T) {
	ours := clustersettest.Export("shop", "web")
	ours.Labels = map[string]string{reconcile.ManagedByLabel: reconcile.FieldManager}
	theirs := clustersettest.Export("shop", "db")
	f := clustersettest.New("east", clustersettest.Namespace("shop"), ours, theirs)

	_, err := exports.Unexport(context.Background(), request(f, "web", "db", "gone"))
	if err == nil || !strings.Contains(err.Error(), "nothing was deleted") || !strings.Contains(err.Error(), "ServiceExport shop/db was not created by kubectl mcs") ||
		!strings.Contains(err.Error(), "ServiceExport shop/gone not found") {
		t.Fatalf("error %v, want db and gone named", err)
	}
	if w := f.Writes(); len(w) > 0 {
		t.Errorf("refused unexport wrote %v", w)
	}

	r := request(f, "web", "db")
	r.Force = true
	out, err := exports.Unexport(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 || f.Get(exportsGVR, "shop", "web") != nil || f.Get(exportsGVR, "shop", "db") != nil {
		t.Errorf("forced unexport: results %v, writes %v; want both deleted", out.Results, f.Writes())
	}
}

// TestExportServerDryRunOfANewExport: the server only simulates the create,
// so the new export's status has nothing to apply to; the dry run still
// succeeds and shows the export as it would be written.
func TestExportServerDryRunOfANewExport(t *testing.T) {
	f := clustersettest.New("east", clustersettest.Namespace("shop"), clustersettest.Service("shop", "web", false))
	r := request(f, "web")
	r.DryRun = cmdutil.DryRunServer
	out, err := exports.Export(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 1 || out.Results[0].Action != apply.Created || len(out.Objects) != 1 || out.Objects[0].Object["status"] == nil {
		t.Errorf("results %v, objects %v: want web created, shown with its status", out.Results, out.Objects)
	}
	if w := f.Writes(); len(w) > 0 {
		t.Errorf("server dry run stored %v", w)
	}
}
