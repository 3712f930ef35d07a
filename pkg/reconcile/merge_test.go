package reconcile

import (
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
