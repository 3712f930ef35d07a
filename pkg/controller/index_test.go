package controller

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// The sync of one service reads, through the service index, every object
// the snapshot's builders could keep for it (the service, its derived
// Service, its source slices, our mirrored slices, someone else's slice
// named like ours) and none of another service.
func TestServiceIndex(t *testing.T) {
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Service{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := addServiceIndex(inf); err != nil {
		t.Fatal(err)
	}
	obj := func(ns, name string, labels map[string]string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}
	for _, o := range []*discoveryv1.EndpointSlice{
		obj("shop", "web", nil),      // the export, import or Service
		obj("shop", "amcs-web", nil), // the derived Service
		obj("shop", "web-abcde", map[string]string{discoveryv1.LabelServiceName: "web"}),                                                         // a source slice
		obj("shop", "amcs-web.cluster1-ipv4-0", map[string]string{mcsv1beta1.LabelServiceName: "web", discoveryv1.LabelServiceName: "amcs-web"}), // ours
		obj("shop", "amcs-web.cluster2-ipv4-0", nil),                                                                                             // someone else's, in the way of ours
		obj("shop", "db", nil), // another service
		obj("shop", "db-xyz", map[string]string{discoveryv1.LabelServiceName: "db"}),
		obj("shop", "amcs-db.cluster1-ipv4-0", map[string]string{mcsv1beta1.LabelServiceName: "db"}),
		obj("other", "web", nil), // another namespace
	} {
		if err := inf.GetIndexer().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, o := range scopeObjects(inf, snapshot.Scope{Namespace: "shop", Services: []string{"web"}}) {
		got = append(got, objectMeta(o).Name)
	}
	slices.Sort(got)
	want := []string{"amcs-web", "amcs-web.cluster1-ipv4-0", "amcs-web.cluster2-ipv4-0", "web", "web-abcde"}
	if !slices.Equal(got, want) {
		t.Errorf("objects of shop/web: %v, want %v", got, want)
	}
	if n := len(scopeObjects(inf, snapshot.Scope{Namespace: "shop"})); n != 8 {
		t.Errorf("objects of namespace shop: %d, want 8", n)
	}
}
