package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
	if _, err := typedList[mcsv1beta1.ServiceExport](exports, snapshot.Scope{Namespace: "shop"}, nil); err == nil || !strings.Contains(err.Error(), "shop/db") {
		t.Fatalf("typedList over an undecodable export: err = %v, want one naming shop/db", err)
	}
	// Another service's sync is not held up by it.
	if got, err := typedList[mcsv1beta1.ServiceExport](exports, snapshot.Scope{Namespace: "shop", Services: []string{"web"}}, nil); err != nil || len(got) != 1 {
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

// The stale-endpoint TTL on a fake clock: an unreachable source keeps its
// endpoints (read as Unreachable) until the TTL, then is read as a source
// with nothing (its endpoints removed), and is itself again once it
// answers; a consumer-only cluster never expires.
func TestStaleTTL(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ttl := 5 * time.Minute
	down := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	cl := &clusterset.Cluster{Context: "cluster3", ID: "cluster3"}
	empty := func() cache.SharedIndexInformer {
		return cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	w := &clusterWatch{cluster: cl, source: true, exports: empty(), services: empty(), slices: empty()}
	c := &Controller{watches: map[string]*clusterWatch{"cluster3": w}}
	read := func() (bool, error) {
		src, err := cacheReader{c}.ReadSource(context.Background(), cl, snapshot.Scope{Namespace: "shop"})
		return src.Unreachable, err
	}
	steps := []struct {
		at          time.Duration
		err         error
		want        sourceChange
		unreachable bool // the read says "unreachable: keep its endpoints"
		expired     bool // the read is an empty source: its endpoints go
	}{
		{0, nil, sourceUnchanged, false, false},
		{time.Second, down, sourceUnreachable, true, false},
		{ttl - time.Second, down, sourceUnchanged, true, false},
		{ttl + time.Second, down, sourceExpired, false, true},
		{ttl + time.Minute, down, sourceUnchanged, false, true},
		{ttl + 2*time.Minute, nil, sourceReachable, false, false},
	}
	for _, st := range steps {
		got, _ := w.observe(st.err, t0.Add(st.at), ttl)
		if got != st.want {
			t.Errorf("at +%s (err %v): change %v, want %v", st.at, st.err, got, st.want)
		}
		_, err := read()
		switch {
		case st.unreachable && (err == nil || !clusterset.Unreachable(err)):
			t.Errorf("at +%s: read error %v, want the cluster unreachable (its endpoints kept)", st.at, err)
		case !st.unreachable && err != nil:
			t.Errorf("at +%s: read error %v, want a source (expired: %t)", st.at, err, st.expired)
		}
		if w.expired != st.expired {
			t.Errorf("at +%s: expired = %t, want %t", st.at, w.expired, st.expired)
		}
	}

	consumerOnly := &clusterWatch{cluster: &clusterset.Cluster{Context: "cluster4", ID: "cluster4"}, consumer: true}
	consumerOnly.observe(down, t0, ttl)
	if got, _ := consumerOnly.observe(down, t0.Add(2*ttl), ttl); got != sourceUnchanged || consumerOnly.expired {
		t.Errorf("a consumer-only cluster expired (%v): it has no endpoints of its own to remove", got)
	}
}

// keyOf: one key per service in scope, none for a service out of scope or
// an object without a service name.
func TestKeyOf(t *testing.T) {
	c := &Controller{opts: Options{Services: []string{"web"}}}
	if got := c.keyOf("shop", "web"); len(got) != 1 || got[0] != (key{namespace: "shop", service: "web"}) {
		t.Errorf("keyOf(shop, web) = %v", got)
	}
	for _, svc := range []string{"db", ""} {
		if got := c.keyOf("shop", svc); len(got) != 0 {
			t.Errorf("keyOf(shop, %q) = %v, want none", svc, got)
		}
	}
	all := &Controller{}
	if got := all.keyOf("shop", "db"); len(got) != 1 {
		t.Errorf("without a service filter keyOf(shop, db) = %v", got)
	}
}
