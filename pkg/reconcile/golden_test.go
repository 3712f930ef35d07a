package reconcile

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/<case>/want.yaml from the current output")

// TestGolden renders every testdata/<case>/input.yaml and compares it with
// want.yaml; each case is also checked for determinism and idempotence.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases under testdata/")
	}
	for _, input := range dirs {
		dir := filepath.Dir(input)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			snap, err := loadSnapshot(input)
			if err != nil {
				t.Fatal(err)
			}
			plan := Reconcile(snap)
			got := renderGolden(plan)
			wantPath := filepath.Join(dir, "want.yaml")
			if *update {
				if err := os.WriteFile(wantPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/reconcile -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("plan differs from %s (run go test ./pkg/reconcile -update and review the diff)\n%s", wantPath, lineDiff(want, got))
			}
			assertDeterministic(t, snap, plan)
			if len(plan.Problems) == 0 {
				assertIdempotent(t, snap, plan)
			}
		})
	}
}

// renderGolden prints a plan for a person checking it against the KEP:
// problems and changes first (one line per change), then the objects.
func renderGolden(p Plan) []byte {
	changes := make([]string, len(p.Changes))
	for i, c := range p.Changes {
		changes[i] = c.String()
	}
	type section struct {
		comment, key string
		value        any
	}
	sections := []section{
		{"Blocking errors: when there is one, the caller writes nothing.", "problems", p.Problems},
		{"Changes in apply order: <cluster> <action> <kind> <namespace>/<name>.", "changes", changes},
		{"Desired conditions of every ServiceExport in the synced sources.", "exportStatuses", p.ExportStatuses},
	}
	for _, c := range p.Consumers {
		sections = append(sections,
			section{"Consumer " + c.Cluster + ": exported namespaces it lacks (nothing imported there).", "missingNamespaces", c.MissingNamespaces},
			section{"Consumer " + c.Cluster + ": clusters not synced in this run whose mirrored slices are kept.", "stale", c.Stale},
			section{"Consumer " + c.Cluster + ": desired ServiceImports.", "imports", c.Imports},
			section{"Consumer " + c.Cluster + ": desired derived Services.", "services", c.Services},
			section{"Consumer " + c.Cluster + ": desired mirrored EndpointSlices.", "endpointSlices", c.EndpointSlices},
		)
	}
	var b bytes.Buffer
	for _, s := range sections {
		b.WriteString("# " + s.comment + "\n")
		v := s.value
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Len() == 0 {
			v = []any{}
		}
		out, err := yaml.Marshal(map[string]any{s.key: v})
		if err != nil {
			panic(err)
		}
		b.Write(out)
	}
	return b.Bytes()
}

// planBytes is what determinism and idempotence checks compare. Indented
// JSON rather than YAML: lineDiff reads it as well, and it is several times
// cheaper, which matters to FuzzReconcile (several plans per input).
func planBytes(t *testing.T, p Plan) []byte {
	t.Helper()
	out, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertDeterministic reconciles the same snapshot again, then shuffled
// copies of it: every list in the input in another order must give the same
// bytes.
func assertDeterministic(t *testing.T, snap Snapshot, plan Plan) {
	t.Helper()
	want := planBytes(t, plan)
	if again := planBytes(t, Reconcile(snap)); !bytes.Equal(again, want) {
		t.Fatalf("second Reconcile of the same snapshot differs:\n%s", lineDiff(want, again))
	}
	for seed := uint64(1); seed <= 5; seed++ {
		shuffled := shuffleSnapshot(snap, rand.New(rand.NewPCG(seed, seed*7919)))
		if got := planBytes(t, Reconcile(shuffled)); !bytes.Equal(got, want) {
			t.Fatalf("Reconcile of a shuffled snapshot (seed %d) differs:\n%s", seed, lineDiff(want, got))
		}
	}
	if got := planBytes(t, Reconcile(snap)); !bytes.Equal(got, want) {
		t.Fatal("Reconcile modified its input snapshot")
	}
}

// assertIdempotent applies the plan the way an API server would, then
// reconciles again an hour later. Everything must be unchanged, except the
// one thing a first run cannot know: the clusterset IP of a ClusterSetIP
// import, which the consumer allocates when the derived Service is created.
// After that fill-in, a third run must be entirely unchanged.
func assertIdempotent(t *testing.T, snap Snapshot, plan Plan) {
	t.Helper()
	second := applyPlan(snap, plan)
	plan2 := Reconcile(second)
	if len(plan2.Problems) > 0 {
		t.Fatalf("second run has problems: %v", plan2.Problems)
	}

	fillIns := map[string]bool{} // imports whose ips the server just allocated, by cluster/namespace/name
	for _, c := range plan.Consumers {
		for _, im := range c.Imports {
			if im.Spec.Type == "ClusterSetIP" && len(im.Spec.IPs) == 0 {
				fillIns[c.Cluster+"/"+im.Namespace+"/"+im.Name] = true
			}
		}
	}
	for _, c := range plan2.Changes {
		if c.Action == ActionUnchanged {
			continue
		}
		if c.Kind == KindServiceImport && c.Action == ActionUpdate && fillIns[c.Cluster+"/"+c.Namespace+"/"+c.Name] {
			continue
		}
		t.Errorf("second run: %s, want unchanged", c)
	}
	for ci, c := range plan2.Consumers {
		for _, im := range c.Imports {
			key := c.Cluster + "/" + im.Namespace + "/" + im.Name
			if !fillIns[key] {
				continue
			}
			svc := findService(second.Consumers[ci].Services, im.Namespace, DerivedServiceName(im.Name))
			if svc == nil || !reflect.DeepEqual(im.Spec.IPs, svc.Spec.ClusterIPs) {
				t.Errorf("second run: ServiceImport %s ips = %v, want the derived Service's clusterIPs", key, im.Spec.IPs)
			}
			if !hasChange(plan2.Changes, Change{Cluster: c.Cluster, Action: ActionUpdate, Kind: KindServiceImport, Namespace: im.Namespace, Name: im.Name}) {
				t.Errorf("second run: ServiceImport %s ips filled in without an update", key)
			}
		}
	}
	// Apart from ips, the second plan must render the same objects.
	strip := func(p Plan) Plan {
		p.Changes = nil
		p.Consumers = slices.Clone(p.Consumers)
		for ci := range p.Consumers {
			c := &p.Consumers[ci]
			c.Imports = slices.Clone(c.Imports)
			for i := range c.Imports {
				c.Imports[i].Spec.IPs = nil
			}
		}
		return p
	}
	if a, b := planBytes(t, strip(plan)), planBytes(t, strip(plan2)); !bytes.Equal(a, b) {
		t.Errorf("second run renders different objects:\n%s", lineDiff(a, b))
	}

	plan3 := Reconcile(applyPlan(second, plan2))
	for _, c := range plan3.Changes {
		if c.Action != ActionUnchanged {
			t.Errorf("third run: %s, want unchanged", c)
		}
	}
}

func hasChange(changes []Change, want Change) bool {
	for _, c := range changes {
		if c == want {
			return true
		}
	}
	return false
}
