package reconcile

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// benchmarkSnapshot is a clusterset with services x sources x endpoints
// endpoints: every source exports every service, one source slice each.
func benchmarkSnapshot(services, sources, endpoints int) Snapshot {
	created := metav1.NewTime(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC))
	s := Snapshot{
		Now:       metav1.NewTime(created.Add(4 * time.Hour)),
		Consumers: []Consumer{{ClusterID: "consumer", Namespaces: []string{"bench"}}},
	}
	for c := range sources {
		src := Source{ClusterID: fmt.Sprintf("cluster%d", c+1)}
		for i := range services {
			name := fmt.Sprintf("svc-%03d", i)
			src.Exports = append(src.Exports, mcsv1beta1.ServiceExport{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench", Generation: 1, CreationTimestamp: created},
			})
			src.Services = append(src.Services, corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeClusterIP, ClusterIP: fmt.Sprintf("10.%d.%d.1", c, i),
					Ports:           []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
					SessionAffinity: corev1.ServiceAffinityNone,
				},
			})
			slice := discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-abcde", Namespace: "bench",
					Labels: map[string]string{discoveryv1.LabelServiceName: name}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo[int32](8080), Protocol: ptrTo(corev1.ProtocolTCP)}},
			}
			for e := range endpoints {
				slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
					Addresses:  []string{fmt.Sprintf("198.%d.%d.%d", 18+c, i, e+1)},
					Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)},
					Hostname:   ptrTo(fmt.Sprintf("%s-%d", name, e)),
					NodeName:   ptrTo("node-a"),
					Zone:       ptrTo("zone-a"),
				})
			}
			src.EndpointSlices = append(src.EndpointSlices, slice)
		}
		s.Sources = append(s.Sources, src)
	}
	return s
}

// BenchmarkReconcile renders 10,000 endpoints (100 services x 2 sources x
// 50 endpoints) into an empty consumer, and again into a consumer that
// already holds the result (the common rerun: everything unchanged).
func BenchmarkReconcile(b *testing.B) {
	first := benchmarkSnapshot(100, 2, 50)
	rerun := applyPlan(first, Reconcile(first))
	rerun = applyPlan(rerun, Reconcile(rerun)) // clusterset IPs filled in
	for _, bc := range []struct {
		name string
		snap Snapshot
	}{{"first-run", first}, {"unchanged-rerun", rerun}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Reconcile(bc.snap)
			}
		})
	}
}

func TestBenchmarkSnapshotRerunIsUnchanged(t *testing.T) {
	first := benchmarkSnapshot(3, 2, 5)
	rerun := applyPlan(first, Reconcile(first))
	rerun = applyPlan(rerun, Reconcile(rerun))
	for _, c := range Reconcile(rerun).Changes {
		if c.Action != ActionUnchanged {
			t.Errorf("%s, want unchanged", c)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
