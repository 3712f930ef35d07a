package reconcile

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// TestMergeExportsReportsEveryConflictInAPIOrder covers the conflict reasons
// no golden case needs on its own (traffic policies, IP families,
// annotations) and checks that several reasons are joined with commas in
// the order the API lists them.
func TestMergeExportsReportsEveryConflictInAPIOrder(t *testing.T) {
	local := corev1.ServiceInternalTrafficPolicyLocal
	preferClose := corev1.ServiceTrafficDistributionPreferClose
	older := exportOf("cluster1", time.Hour, corev1.ServiceSpec{
		ClusterIP: "None",
		Ports:     []corev1.ServicePort{{Name: "http", Port: 80}},
	}, map[string]string{"tier": "web"}, map[string]string{"owner": "a"})
	newer := exportOf("cluster2", 2*time.Hour, corev1.ServiceSpec{
		ClusterIP:             "10.0.0.1",
		Ports:                 []corev1.ServicePort{{Name: "http", Port: 8080}},
		SessionAffinity:       corev1.ServiceAffinityClientIP,
		SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](60)}},
		InternalTrafficPolicy: &local,
		TrafficDistribution:   &preferClose,
		IPFamilies:            []corev1.IPFamily{corev1.IPv6Protocol},
	}, map[string]string{"tier": "api"}, map[string]string{"owner": "b"})

	m := mergeExports([]*exportedService{older, newer})
	got := conflictCondition([]*exportedService{older, newer}, m.conflicts)
	want := "TypeConflict,PortConflict,SessionAffinityConflict,SessionAffinityConfigConflict," +
		"InternalTrafficPolicyConflict,TrafficDistributionConflict,IPFamilyConflict,LabelsConflict,AnnotationsConflict"
	if got.Reason != want || got.Status != metav1.ConditionTrue {
		t.Errorf("Conflict = %s/%s, want True/%s", got.Status, got.Reason, want)
	}
	if lines := strings.Split(got.Message, "\n"); len(lines) != 9 {
		t.Errorf("Conflict message has %d lines, want one per reason:\n%s", len(lines), got.Message)
	}
	// The older export wins every field; the newer port keeps nothing of
	// "http" since the name is taken.
	if m.winner != older || len(m.ports) != 1 || m.ports[0].Port != 80 || m.labels["tier"] != "web" || m.annotations["owner"] != "a" {
		t.Errorf("merge did not let the oldest export win: %+v", m)
	}
}

func exportOf(cluster string, age time.Duration, spec corev1.ServiceSpec, labels, annotations map[string]string) *exportedService {
	created := metav1.NewTime(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Add(age))
	return newExportedService(cluster,
		&mcsv1beta1.ServiceExport{
			ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", CreationTimestamp: created},
			Spec:       mcsv1beta1.ServiceExportSpec{ExportedLabels: labels, ExportedAnnotations: annotations},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns"}, Spec: spec}, nil)
}

// TestExportedMapsResolvedAsWholes follows KEP-1645 "Labels and
// Annotations": exportedLabels and exportedAnnotations are each one property
// under conflict resolution. The import carries the winning (oldest)
// export's map unchanged, and any difference, a key that only some exports
// set included, is a conflict on every export.
func TestExportedMapsResolvedAsWholes(t *testing.T) {
	for _, tc := range []struct {
		name string
		// maps of the exports, oldest first.
		maps         []map[string]string
		want         map[string]string
		wantConflict string
	}{
		{name: "equal maps agree",
			maps: []map[string]string{{"tier": "web"}, {"tier": "web"}},
			want: map[string]string{"tier": "web"}},
		{name: "unset and empty agree",
			maps: []map[string]string{nil, {}}},
		{name: "another value is a conflict",
			maps:         []map[string]string{{"tier": "web"}, {"tier": "api"}},
			want:         map[string]string{"tier": "web"},
			wantConflict: "exportedLabels: using {tier=web} from cluster1 (oldest export); cluster2 has {tier=api}"},
		{name: "a key only the newer export sets is a conflict and does not travel",
			maps:         []map[string]string{{"tier": "web"}, {"tier": "web", "region": "eu"}},
			want:         map[string]string{"tier": "web"},
			wantConflict: "exportedLabels: using {tier=web} from cluster1 (oldest export); cluster2 has {region=eu, tier=web}"},
		{name: "a key only the winner sets is a conflict",
			maps:         []map[string]string{{"tier": "web", "region": "eu"}, {"tier": "web"}},
			want:         map[string]string{"tier": "web", "region": "eu"},
			wantConflict: "exportedLabels: using {region=eu, tier=web} from cluster1 (oldest export); cluster2 has {tier=web}"},
		{name: "the winner without labels wins with none",
			maps:         []map[string]string{nil, {"tier": "web"}},
			wantConflict: "exportedLabels: using {} from cluster1 (oldest export); cluster2 has {tier=web}"},
		{name: "every differing export is named",
			maps:         []map[string]string{{"a": "1"}, {"a": "1"}, {"a": "2"}, {}},
			want:         map[string]string{"a": "1"},
			wantConflict: "exportedLabels: using {a=1} from cluster1 (oldest export); cluster3 has {a=2}, cluster4 has {}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var valid []*exportedService
			for i, m := range tc.maps {
				valid = append(valid, exportOf(fmt.Sprintf("cluster%d", i+1), time.Duration(i)*time.Hour, corev1.ServiceSpec{ClusterIP: "10.0.0.1"}, m, nil))
			}
			got, conflicts := mergeStringMaps(valid, "exportedLabels", winnerNote(valid),
				func(e *exportedService) map[string]string { return e.export.Spec.ExportedLabels })
			if !maps.Equal(got, tc.want) {
				t.Errorf("import labels %v, want the oldest export's %v", got, tc.want)
			}
			if strings.Join(conflicts, "\n") != tc.wantConflict {
				t.Errorf("conflict %q, want %q", conflicts, tc.wantConflict)
			}
		})
	}
}

// TestDifferingLabelMapsConflictOnEveryExport runs the whole merge: two
// exports whose label maps differ only by a key the newer one adds are both
// Conflict=True with LabelsConflict, and the winner is the oldest export,
// the lexically smaller cluster id on a tie.
func TestDifferingLabelMapsConflictOnEveryExport(t *testing.T) {
	spec := corev1.ServiceSpec{ClusterIP: "10.0.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}
	// Same creationTimestamp: the tie goes to cluster-a.
	b := exportOf("cluster-b", time.Hour, spec, map[string]string{"tier": "web", "team": "b"}, nil)
	a := exportOf("cluster-a", time.Hour, spec, map[string]string{"tier": "web"}, nil)
	valid := []*exportedService{b, a}
	sortByPrecedence(valid)
	m := mergeExports(valid)
	if m.winner != a || !maps.Equal(m.labels, map[string]string{"tier": "web"}) {
		t.Errorf("winner %s with labels %v, want cluster-a's {tier=web}", m.winner.cluster, m.labels)
	}
	cond := conflictCondition(valid, m.conflicts)
	if cond.Status != metav1.ConditionTrue || cond.Reason != string(mcsv1beta1.ServiceExportReasonLabelsConflict) {
		t.Fatalf("Conflict = %s/%s, want True/LabelsConflict", cond.Status, cond.Reason)
	}
	if !strings.Contains(cond.Message, "(oldest export, tie broken by cluster id)") {
		t.Errorf("message %q does not say the tie was broken by cluster id", cond.Message)
	}
	for _, e := range valid {
		conds := exportConditions(e, cond, metav1.Now())
		if c := conds[2]; c.Type != string(mcsv1beta1.ServiceExportConditionConflict) || c.Status != metav1.ConditionTrue {
			t.Errorf("%s: Conflict condition %+v, want True", e.cluster, c)
		}
	}
}
