package controller

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// cacheReader reads a sync's snapshot from the informer caches, with what
// the probe knows: an unreachable cluster's lists are not used (its
// endpoints are kept), and past StaleTTL it is a source with nothing.
type cacheReader struct{ c *Controller }

func (r cacheReader) ReadSource(_ context.Context, cl *clusterset.Cluster, scope snapshot.Scope) (reconcile.Source, error) {
	w := r.c.watches[cl.ID]
	w.mu.Lock()
	unreachable, expired := w.unreachableErr, w.expired
	w.mu.Unlock()
	switch {
	case expired:
		return reconcile.Source{ClusterID: cl.ID}, nil
	case unreachable != nil:
		return reconcile.Source{ClusterID: cl.ID}, unreachable
	}
	exports, err := typedList[mcsv1beta1.ServiceExport](w.exports, scope, r.c.written.in(cl.ID, kindServiceExport, scope.Namespace))
	if err != nil {
		return reconcile.Source{ClusterID: cl.ID}, cl.Errorf("ServiceExport in the cache: %w", err)
	}
	services, err := typedList[corev1.Service](w.services, scope, r.c.written.in(cl.ID, kindService, scope.Namespace))
	if err != nil {
		return reconcile.Source{ClusterID: cl.ID}, cl.Errorf("Service in the cache: %w", err)
	}
	endpoints, _ := typedList[discoveryv1.EndpointSlice](w.slices, scope, nil)
	return snapshot.BuildSource(cl.ID, exports, services, endpoints, scope), nil
}

func (r cacheReader) ReadConsumer(_ context.Context, cl *clusterset.Cluster, scope snapshot.Scope) (reconcile.Consumer, error) {
	w := r.c.watches[cl.ID]
	w.mu.Lock()
	unreachable := w.unreachableErr
	w.mu.Unlock()
	if unreachable != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, unreachable
	}
	var namespaces []string
	for _, obj := range w.nsInf.GetStore().List() {
		namespaces = append(namespaces, objectMeta(obj).Name)
	}
	slices.Sort(namespaces)
	imports, err := typedList[mcsv1beta1.ServiceImport](w.imports, scope, r.c.written.in(cl.ID, kindServiceImport, scope.Namespace))
	if err != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, cl.Errorf("ServiceImport in the cache: %w", err)
	}
	services, err := typedList[corev1.Service](w.services, scope, r.c.written.in(cl.ID, kindService, scope.Namespace))
	if err != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, cl.Errorf("Service in the cache: %w", err)
	}
	endpoints, err := typedList[discoveryv1.EndpointSlice](w.ownSlices, scope, r.c.written.in(cl.ID, kindEndpointSlice, scope.Namespace))
	if err != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, cl.Errorf("EndpointSlice in the cache: %w", err)
	}
	return snapshot.BuildConsumer(cl.ID, namespaces, imports, services, endpoints, scope), nil
}

// typedList copies the objects of the scope from an informer into typed
// values (dynamic ones, the MCS objects, converted from unstructured). A
// key's sync needs one service of one namespace, so the service index
// (index.go) keeps it from walking, copying and filtering every cached
// object of the namespace or the cluster; MCS objects are named after their service, so only those of
// the scope's services are converted. An object that does not convert is
// an error that stops the sync of its service, never silently left out: a
// ServiceExport dropped that way would get its imports deleted.
//
// written are the objects this process wrote that the informer has not
// delivered yet (by namespace and name): each replaces the cached one if
// newer, or is added if the cache lacks it.
func typedList[T any](inf cache.SharedIndexInformer, scope snapshot.Scope, written map[[2]string]*unstructured.Unstructured) ([]T, error) {
	objs := scopeObjects(inf, scope)
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		if len(written) > 0 {
			m := objectMeta(obj)
			if wo, ok := written[[2]string{m.Namespace, m.Name}]; ok {
				delete(written, [2]string{m.Namespace, m.Name})
				wrv, _ := resourceVersion(wo.GetResourceVersion())
				if crv, ok := resourceVersion(resourceVersionOf(obj)); ok && wrv > crv {
					t, err := fromWritten[T](wo)
					if err != nil {
						return nil, err
					}
					out = append(out, t)
					continue
				}
			}
		}
		switch o := obj.(type) {
		case *unstructured.Unstructured:
			if !scope.Wants(o.GetName()) {
				continue
			}
			var t T
			if err := apply.FromUnstructured(o, &t); err != nil {
				return nil, fmt.Errorf("decoding %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
			out = append(out, t)
		case *T:
			out = append(out, *o)
		}
	}
	// Written, not in the cache yet (created): the snapshot's builders keep
	// only what the scope covers.
	for _, wo := range written {
		t, err := fromWritten[T](wo)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func fromWritten[T any](o *unstructured.Unstructured) (T, error) {
	var t T
	if err := apply.FromUnstructured(o, &t); err != nil {
		return t, fmt.Errorf("decoding %s/%s as written: %w", o.GetNamespace(), o.GetName(), err)
	}
	return t, nil
}
