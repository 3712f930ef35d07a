package reconcile

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

func view(cluster string, age time.Duration, svc *corev1.Service) ExportView {
	return ExportView{Cluster: cluster, Service: svc, Export: &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{
		Name: "web", Namespace: "shop", CreationTimestamp: metav1.NewTime(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Add(age))}}}
}

// TestWinningExport: KEP-1645 resolves a conflict by precedence, the
// oldest export first, so the import's type is the oldest valid export's
// whatever order the clusters are read in.
func TestWinningExport(t *testing.T) {
	headless := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}
	vip := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1"}}
	external := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}}
	for _, tc := range []struct {
		name   string
		views  []ExportView
		winner string
	}{
		{"the oldest wins, not the first read",
			[]ExportView{view("cluster1", 2*time.Hour, vip), view("cluster2", time.Hour, headless)}, "cluster2"},
		{"a tie goes to the smaller cluster id",
			[]ExportView{view("cluster-b", time.Hour, vip), view("cluster-a", time.Hour, headless)}, "cluster-a"},
		{"invalid exports take no part",
			[]ExportView{view("cluster1", 0, nil), view("cluster2", time.Hour, external), view("cluster3", 2*time.Hour, vip)}, "cluster3"},
		{"none valid", []ExportView{view("cluster1", 0, nil)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ok := WinningExport(tc.views)
			if ok != (tc.winner != "") || w.Cluster != tc.winner {
				t.Errorf("winner %q (ok=%t), want %q", w.Cluster, ok, tc.winner)
			}
		})
	}
}

// TestConflictReasonsReadsWhatTheSyncWrites parses the condition
// conflictCondition renders, so the two cannot drift apart.
func TestConflictReasonsReadsWhatTheSyncWrites(t *testing.T) {
	written := conflictCondition(nil, []conflict{
		{mcsv1beta1.ServiceExportReasonTypeConflict, "a"},
		{mcsv1beta1.ServiceExportReasonLabelsConflict, "b"},
	})
	got := ConflictReasons([]metav1.Condition{written})
	if want := []string{"TypeConflict", "LabelsConflict"}; !slices.Equal(got, want) {
		t.Errorf("ConflictReasons = %q, want %q", got, want)
	}
	none := conflictCondition([]*exportedService{{cluster: "cluster1"}}, nil)
	if got := ConflictReasons([]metav1.Condition{none}); got != nil {
		t.Errorf("ConflictReasons of %s/%s = %q, want none", none.Status, none.Reason, got)
	}
	if got := ConflictReasons(nil); got != nil {
		t.Errorf("ConflictReasons without a condition = %q", got)
	}
}
