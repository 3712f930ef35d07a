package controller

import (
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// serviceIndex indexes every cached object under the names of the services
// it may belong to, so that the sync of one service reads that service's
// objects rather than its whole namespace (per-service work: the sync of a
// key in a namespace of 250 services read, copied and filtered them all).
// The index only has to give a superset of what the snapshot's builders
// keep: they filter again.
const serviceIndex = "mcs-service"

// serviceIndexValues are namespace/name for the object's own name (exports,
// imports, Services, derived Services), its two service-name labels
// (source slices, ours) and the part of its name before the first dot (a
// mirrored slice's name starts with "<derived>.", and no derived name holds
// a dot).
func serviceIndexValues(obj any) ([]string, error) {
	m := objectMeta(obj)
	ns := m.Namespace + "/"
	vals := []string{ns + m.Name}
	add := func(v string) {
		if v != "" && !containsString(vals, ns+v) {
			vals = append(vals, ns+v)
		}
	}
	add(m.Labels[discoveryv1.LabelServiceName])
	add(m.Labels[mcsv1beta1.LabelServiceName])
	if i := strings.IndexByte(m.Name, '.'); i > 0 {
		add(m.Name[:i])
	}
	return vals, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func addServiceIndex(inf cache.SharedIndexInformer) error {
	return inf.AddIndexers(cache.Indexers{serviceIndex: serviceIndexValues})
}

// scopeObjects are the cached objects a sync of the scope may need: by the
// service index when the scope names its namespace and services, else every
// object of the namespace (or all).
func scopeObjects(inf cache.SharedIndexInformer, scope snapshot.Scope) []any {
	idx := inf.GetIndexer()
	if scope.Namespace == "" {
		return idx.List()
	}
	if len(scope.Services) > 0 {
		if _, ok := idx.GetIndexers()[serviceIndex]; ok {
			var out []any
			seen := map[string]bool{}
			for _, svc := range scope.Services {
				for _, name := range []string{svc, reconcile.DerivedServiceName(svc)} {
					objs, err := idx.ByIndex(serviceIndex, scope.Namespace+"/"+name)
					if err != nil {
						return namespaceObjects(idx, scope.Namespace)
					}
					for _, o := range objs {
						k, _ := cache.MetaNamespaceKeyFunc(o)
						if !seen[k] {
							seen[k] = true
							out = append(out, o)
						}
					}
				}
			}
			return out
		}
	}
	return namespaceObjects(idx, scope.Namespace)
}

func namespaceObjects(idx cache.Indexer, namespace string) []any {
	objs, err := idx.ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return idx.List()
	}
	return objs
}
