package controller

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// A sync reads its caches through what this process wrote until the
// informer delivers that version: newer written objects replace the cached
// ones, created ones are added, and an entry goes once the informer caught
// up or the object was deleted.
func TestReadThroughWritten(t *testing.T) {
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &discoveryv1.EndpointSlice{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	slice := func(name, rv string, ports int) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", ResourceVersion: rv}}
		for range ports {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{})
		}
		return s
	}
	asWritten := func(s *discoveryv1.EndpointSlice) *unstructured.Unstructured {
		u, err := apply.ToUnstructured(s, discoveryv1.SchemeGroupVersion.WithKind(kindEndpointSlice))
		if err != nil {
			t.Fatal(err)
		}
		u.SetResourceVersion(s.ResourceVersion) // as a write request returns it
		return u
	}
	for _, s := range []*discoveryv1.EndpointSlice{slice("a", "5", 0), slice("b", "9", 0)} {
		if err := inf.GetIndexer().Add(s); err != nil {
			t.Fatal(err)
		}
	}
	var w written
	w.record("c1", asWritten(slice("a", "7", 1))) // newer than the cache: read
	w.record("c1", asWritten(slice("b", "8", 1))) // older: the cache wins
	w.record("c1", asWritten(slice("c", "3", 1))) // not cached yet: added
	w.record("c1", asWritten(slice("a", "6", 2))) // older than the kept one: ignored
	got, err := typedList[discoveryv1.EndpointSlice](inf, snapshot.Scope{Namespace: "shop"}, w.in("c1", kindEndpointSlice, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	for _, s := range got {
		ports[s.Name] = len(s.Ports)
	}
	if want := map[string]int{"a": 1, "b": 0, "c": 1}; len(ports) != 3 || ports["a"] != want["a"] || ports["b"] != want["b"] || ports["c"] != want["c"] {
		t.Errorf("read through written: %v, want %v", ports, want)
	}
	if w.in("c2", kindEndpointSlice, "shop") != nil {
		t.Error("another cluster's written objects were read")
	}
	if !w.seen("c1", kindEndpointSlice, slice("a", "7", 1), false) { // caught up
		t.Error("the event of a@7, as written, is not an echo")
	}
	if w.seen("c1", kindEndpointSlice, slice("c", "2", 0), false) { // not yet
		t.Error("the event of c@2, older than written, is an echo")
	}
	if left := w.in("c1", kindEndpointSlice, ""); len(left) != 2 || left[[2]string{"shop", "a"}] != nil {
		t.Errorf("after the informer delivered a@7: %v, want b and c left", left)
	}
	w.seen("c1", kindEndpointSlice, cache.DeletedFinalStateUnknown{Obj: slice("c", "2", 0)}, true)
	if left := w.in("c1", kindEndpointSlice, ""); len(left) != 1 {
		t.Errorf("after c was deleted: %v, want b left", left)
	}
}

// A write whose event the informer already delivered is not kept.
func TestWrittenAlreadyCached(t *testing.T) {
	w := written{cached: func(_, _, _, name string) string { return map[string]string{"a": "7", "b": "6"}[name] }}
	for _, name := range []string{"a", "b", "c"} {
		u := &unstructured.Unstructured{}
		u.SetKind(kindService)
		u.SetNamespace("shop")
		u.SetName(name)
		u.SetResourceVersion("7")
		w.record("c1", u)
	}
	got := w.in("c1", kindService, "shop")
	if len(got) != 2 || got[[2]string{"shop", "a"}] != nil {
		t.Errorf("kept %v, want b (cached at 6) and c (not cached)", got)
	}
}
