package reconcile

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

func TestClusterIDsMustBeDistinctDNSLabels(t *testing.T) {
	plan := Reconcile(Snapshot{
		Consumers: []Consumer{{ClusterID: "consumer", Namespaces: []string{"ns"}}},
		Sources: []Source{
			{ClusterID: "Cluster_1"}, {ClusterID: "Cluster_1"},
			{ClusterID: "twin"}, {ClusterID: "twin"},
			{ClusterID: "fine"},
		},
	})
	var got []string
	for _, p := range plan.Problems {
		got = append(got, p.Kind+"/"+p.Name)
	}
	if len(got) != 2 || got[0] != "Cluster/Cluster_1" || got[1] != "Cluster/twin" {
		t.Errorf("problems = %v, want one for Cluster_1 (not a DNS label) and one for twin (duplicate)", got)
	}
}

// A ServiceImport someone made by hand is adopted only when a synced source
// exports it; otherwise it is not ours, and nothing touches it.
func TestHandMadeImportNobodyExportsIsLeftAlone(t *testing.T) {
	plan := Reconcile(Snapshot{
		Consumers: []Consumer{{ClusterID: "consumer", Namespaces: []string{"ns"},
			Imports: []mcsv1beta1.ServiceImport{{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"},
				Spec: mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.Headless}}}}},
		Sources: []Source{{ClusterID: "cluster1"}},
	})
	if len(plan.Changes) != 0 || len(plan.Problems) != 0 {
		t.Errorf("plan = %+v, want nothing", plan)
	}
}
