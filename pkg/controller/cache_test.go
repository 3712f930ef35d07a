package controller

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// A cached ServiceExport that does not decode stops its service's sync with
// an error naming it (retried, logged); it is never dropped, which would
// read as "no longer exported" and delete its imports everywhere. Other
// services of the namespace sync on.
func TestUndecodableExportStopsTheSync(t *testing.T) {
	exports := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	good := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport",
		"metadata": map[string]any{"name": "web", "namespace": "shop"},
	}}
	// status.conditions must be a list; a string does not decode.
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport",
		"metadata": map[string]any{"name": "db", "namespace": "shop"},
		"status":   map[string]any{"conditions": "not a list"},
	}}
	for _, o := range []*unstructured.Unstructured{good, bad} {
		if err := exports.GetIndexer().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := typedList[mcsv1beta1.ServiceExport](exports, snapshot.Scope{Namespace: "shop"}); err == nil || !strings.Contains(err.Error(), "shop/db") {
		t.Fatalf("typedList over an undecodable export: err = %v, want one naming shop/db", err)
	}
	// Another service's sync is not held up by it.
	if got, err := typedList[mcsv1beta1.ServiceExport](exports, snapshot.Scope{Namespace: "shop", Services: []string{"web"}}); err != nil || len(got) != 1 {
		t.Fatalf("typedList of web only: %v, %v; want web alone", got, err)
	}

	cl := &clusterset.Cluster{Context: "cluster1", ID: "cluster1"}
	empty := func() cache.SharedIndexInformer {
		return cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	c := &Controller{watches: map[string]*clusterWatch{"cluster1": {cluster: cl, exports: exports, services: empty(), slices: empty()}}}
	_, err := cacheReader{c}.ReadSource(context.Background(), cl, snapshot.Scope{Namespace: "shop", Services: []string{"db"}})
	if err == nil {
		t.Fatal("ReadSource over an undecodable export succeeded; the sync would take it as not exported")
	}
	if clusterset.Unreachable(err) {
		t.Errorf("the decode error %q counts as an unreachable cluster; it must stop the sync instead", err)
	}
	if !strings.Contains(err.Error(), "cluster1") {
		t.Errorf("the error %q does not name the cluster", err)
	}
}
