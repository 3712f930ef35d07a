package status

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// twoClusters: cluster1 exports the headless Service shop/web, cluster2
// has the namespace and imports nothing yet.
func twoClusters(port int32) (*ClusterState, *ClusterState) {
	meta := metav1.ObjectMeta{Namespace: "shop", Name: "web"}
	src := &ClusterState{Cluster: &clusterset.Cluster{Context: "cluster1", ID: "cluster1"}}
	src.Source = reconcile.Source{ClusterID: "cluster1",
		Exports: []mcsv1beta1.ServiceExport{{ObjectMeta: meta}},
		Services: []corev1.Service{{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP}}}}}}
	src.Consumer = reconcile.Consumer{ClusterID: "cluster1", Namespaces: []string{"shop"}}
	con := &ClusterState{Cluster: &clusterset.Cluster{Context: "cluster2", ID: "cluster2"}}
	con.Source = reconcile.Source{ClusterID: "cluster2"}
	con.Consumer = reconcile.Consumer{ClusterID: "cluster2", Namespaces: []string{"shop"}}
	return src, con
}

// importInto does what `kubectl mcs import` does to the consumer: it holds
// the library's plan.
func importInto(con *ClusterState, src *ClusterState, now time.Time) {
	plan := reconcile.Reconcile(reconcile.Snapshot{Now: metav1.NewTime(now),
		Sources: []reconcile.Source{src.Source}, Consumers: []reconcile.Consumer{con.Consumer}})
	cp := plan.Consumer(con.Cluster.ID)
	con.Consumer.Imports, con.Consumer.Services, con.Consumer.EndpointSlices = cp.Imports, cp.Services, cp.EndpointSlices
}

func importOf(t *testing.T, r Report, cluster string) ImportState {
	t.Helper()
	if len(r.Services) != 1 {
		t.Fatalf("want one row, got %+v", r.Services)
	}
	for _, is := range r.Services[0].ImportedIn {
		if is.Cluster == cluster {
			return is
		}
	}
	t.Fatalf("%s imports nothing: %+v", cluster, r.Services[0])
	return ImportState{}
}

// TestDrift: an import the library would not change is fresh; once its
// source changes the Service, the import is STALE and the fix is the
// import command that brings it up to date.
func TestDrift(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	src, con := twoClusters(80)
	importInto(con, src, now)

	fresh := importOf(t, Build([]*ClusterState{src, con}, now), "cluster2")
	if fresh.Stale || fresh.Fix != "" {
		t.Errorf("a just-made import is reported stale: %+v", fresh)
	}

	src.Source.Services[0].Spec.Ports[0].Port = 8080
	stale := importOf(t, Build([]*ClusterState{src, con}, now), "cluster2")
	want := "kubectl mcs import web -n shop --from cluster1 --context cluster2"
	if !stale.Stale || stale.Fix != want {
		t.Errorf("after the source's port changed: got %+v, want stale with fix %q", stale, want)
	}
}

// TestMissingNamespace: a consumer without the exported namespace is named
// with the command that creates it, and nothing is imported there.
func TestMissingNamespace(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	src, con := twoClusters(80)
	con.Consumer.Namespaces = nil
	r := Build([]*ClusterState{src, con}, now)
	want := MissingNamespace{Cluster: "cluster2", Namespace: "shop", Services: []string{"web"}, Fix: "kubectl create namespace shop --context cluster2"}
	if len(r.MissingNamespaces) != 1 || r.MissingNamespaces[0].Cluster != want.Cluster || r.MissingNamespaces[0].Fix != want.Fix ||
		len(r.MissingNamespaces[0].Services) != 1 || r.MissingNamespaces[0].Services[0] != "web" {
		t.Errorf("missing namespaces: got %+v, want [%+v]", r.MissingNamespaces, want)
	}
}
