package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/status"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// statusCase is testdata/status/<case>/input.yaml: what each cluster holds,
// the imports run before status (through the reconcile library, as the
// import verb would), and objects changed in the sources afterwards.
type statusCase struct {
	Now      metav1.Time `json:"now"`
	Clusters []struct {
		Context    string            `json:"context"`
		Namespaces []string          `json:"namespaces"`
		Error      string            `json:"error"`
		Objects    []json.RawMessage `json:"objects"`
	} `json:"clusters"`
	Imports []struct {
		Into string      `json:"into"`
		From []string    `json:"from"`
		At   metav1.Time `json:"at"`
	} `json:"imports"`
	// After replaces or adds source objects once the imports ran.
	After []struct {
		Context string            `json:"context"`
		Objects []json.RawMessage `json:"objects"`
	} `json:"after"`
}

// TestStatusGolden renders status (table, wide, json) for each case.
func TestStatusGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/status/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no status cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			states, now := loadStatusCase(t, filepath.Join(dir, "input.yaml"))
			report := status.Build(states, now)
			var table, wide, js bytes.Buffer
			scope := snapshot.Scope{}
			if err := printStatusTable(&table, report, false, scope, now); err != nil {
				t.Fatal(err)
			}
			if err := printStatusTable(&wide, report, true, scope, now); err != nil {
				t.Fatal(err)
			}
			if err := printJSON(&js, report); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "table.txt"), table.Bytes())
			golden(t, filepath.Join(dir, "wide.txt"), wide.Bytes())
			golden(t, filepath.Join(dir, "status.json"), js.Bytes())
			var dot, mermaid bytes.Buffer
			if err := status.WriteDot(&dot, report); err != nil {
				t.Fatal(err)
			}
			if err := status.WriteMermaid(&mermaid, report); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "status.dot"), dot.Bytes())
			golden(t, filepath.Join(dir, "status.mmd"), mermaid.Bytes())
			checkDot(t, dot.Bytes())
			// Same input, same bytes.
			var again bytes.Buffer
			if err := printStatusTable(&again, status.Build(states, now), false, scope, now); err != nil || again.String() != table.String() {
				t.Errorf("status is not deterministic (err %v)", err)
			}
		})
	}
}

// checkDot has Graphviz itself parse and lay out the picture, where it is
// installed (.ci/run installs it), so the dot output is proven to draw.
func checkDot(t *testing.T, dot []byte) {
	t.Helper()
	bin, err := exec.LookPath("dot")
	if err != nil {
		t.Log("Graphviz (dot) is not installed: the picture is checked against its golden file only")
		return
	}
	cmd := exec.Command(bin, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("<svg")) {
		t.Errorf("dot -Tsvg refused the picture: %v\n%s", err, out)
	}
}

func printJSON(out *bytes.Buffer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	out.Write(b)
	out.WriteByte('\n')
	return nil
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/cmd -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func loadStatusCase(t *testing.T, path string) ([]*status.ClusterState, time.Time) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in statusCase
	if err := yaml.UnmarshalStrict(raw, &in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	byContext := map[string]*status.ClusterState{}
	var states []*status.ClusterState
	for _, c := range in.Clusters {
		st := &status.ClusterState{Cluster: &clusterset.Cluster{Context: c.Context, ID: c.Context}}
		st.Source.ClusterID, st.Consumer.ClusterID = c.Context, c.Context
		st.Consumer.Namespaces = c.Namespaces
		if c.Error != "" {
			st.Err = errors.New(c.Error)
		}
		for _, obj := range c.Objects {
			addObject(t, st, obj)
		}
		byContext[c.Context] = st
		states = append(states, st)
	}
	for _, imp := range in.Imports {
		consumer := byContext[imp.Into]
		snap := reconcile.Snapshot{Now: imp.At, Consumers: []reconcile.Consumer{consumer.Consumer}}
		for _, from := range imp.From {
			snap.Sources = append(snap.Sources, byContext[from].Source)
		}
		plan := reconcile.Reconcile(snap)
		if len(plan.Problems) > 0 {
			t.Fatalf("import into %s: %v", imp.Into, plan.Problems)
		}
		applyPlan(consumer, byContext, plan, imp.At)
		// The consumer allocates the derived Service's cluster IP; the
		// import's second pass copies it into the ServiceImport, as the
		// import verb does.
		for i := range consumer.Consumer.Services {
			if svc := &consumer.Consumer.Services[i]; svc.Spec.ClusterIP == "" {
				svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "198.19.16.10", []string{"198.19.16.10"}
			}
		}
		snap.Consumers = []reconcile.Consumer{consumer.Consumer}
		applyPlan(consumer, byContext, reconcile.Reconcile(snap), imp.At)
	}
	for _, after := range in.After {
		for _, obj := range after.Objects {
			addObject(t, byContext[after.Context], obj)
		}
	}
	return states, in.Now.Time
}

// addObject adds a source object to a cluster, replacing one of the same
// kind and name.
func addObject(t *testing.T, st *status.ClusterState, raw json.RawMessage) {
	t.Helper()
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	switch meta.Kind {
	case "ServiceExport":
		var o mcsv1beta1.ServiceExport
		mustUnmarshal(t, raw, &o)
		st.Source.Exports = replace(st.Source.Exports, o, func(a mcsv1beta1.ServiceExport) string { return a.Namespace + "/" + a.Name })
	case "Service":
		var o corev1.Service
		mustUnmarshal(t, raw, &o)
		st.Source.Services = replace(st.Source.Services, o, func(a corev1.Service) string { return a.Namespace + "/" + a.Name })
	case "EndpointSlice":
		var o discoveryv1.EndpointSlice
		mustUnmarshal(t, raw, &o)
		st.Source.EndpointSlices = replace(st.Source.EndpointSlices, o, func(a discoveryv1.EndpointSlice) string { return a.Namespace + "/" + a.Name })
	default:
		t.Fatalf("status cases hold no %s", meta.Kind)
	}
}

func replace[T any](list []T, o T, key func(T) string) []T {
	for i := range list {
		if key(list[i]) == key(o) {
			list[i] = o
			return list
		}
	}
	return append(list, o)
}

func mustUnmarshal(t *testing.T, raw json.RawMessage, into any) {
	t.Helper()
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

// applyPlan does to the in-memory clusters what the import verb does to
// real ones: the consumer holds the plan's objects, the exports get their
// conditions.
func applyPlan(consumer *status.ClusterState, byContext map[string]*status.ClusterState, plan reconcile.Plan, at metav1.Time) {
	cp := plan.Consumer(consumer.Cluster.ID)
	for _, si := range cp.Imports {
		si.CreationTimestamp = at
		consumer.Consumer.Imports = replace(consumer.Consumer.Imports, si, func(a mcsv1beta1.ServiceImport) string { return a.Namespace + "/" + a.Name })
	}
	for _, s := range cp.Services {
		consumer.Consumer.Services = replace(consumer.Consumer.Services, s, func(a corev1.Service) string { return a.Namespace + "/" + a.Name })
	}
	for _, s := range cp.EndpointSlices {
		consumer.Consumer.EndpointSlices = replace(consumer.Consumer.EndpointSlices, s, func(a discoveryv1.EndpointSlice) string { return a.Namespace + "/" + a.Name })
	}
	for _, es := range plan.ExportStatuses {
		src := byContext[es.Cluster]
		for i := range src.Source.Exports {
			e := &src.Source.Exports[i]
			if e.Namespace == es.Namespace && e.Name == es.Name {
				e.Status.Conditions = es.Conditions
			}
		}
	}
}
