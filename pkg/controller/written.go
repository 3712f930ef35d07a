package controller

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// written holds the objects this process wrote whose informer has not yet
// delivered that version (or a newer one): a sync reads its caches through
// them. Without it, a sync that runs between a write and the watch event
// that brings it back (for instance the echo of the same write in another
// consumer, which requeues the key) sees the old object and writes the same
// object again. An entry goes as soon as its informer has caught up, or
// the object is deleted.
type written struct {
	mu      sync.Mutex
	objects map[writtenKey]*unstructured.Unstructured
	// cached, if set, is the resource version the informer holds for an
	// object ("" if none): a write its informer already delivered (the
	// event can come before the write's response is handled) is not kept.
	cached func(cluster, kind, namespace, name string) string
}

type writtenKey struct{ cluster, kind, namespace, name string }

// Informer kinds that read through written objects (the source slices'
// informer never holds ours).
const (
	kindServiceExport = "ServiceExport"
	kindServiceImport = "ServiceImport"
	kindService       = "Service"
	kindEndpointSlice = "EndpointSlice"
)

// resourceVersion parses a resource version; ok is false for one that is
// not an integer (then nothing is read through).
func resourceVersion(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// record keeps obj if it is newer than what is kept for it.
func (w *written) record(cluster string, obj *unstructured.Unstructured) {
	rv, ok := resourceVersion(obj.GetResourceVersion())
	if !ok {
		return
	}
	k := writtenKey{cluster, obj.GetKind(), obj.GetNamespace(), obj.GetName()}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cached != nil {
		// Under the lock: the informer's store is updated before its
		// handlers call seen, which waits for this.
		if crv, ok := resourceVersion(w.cached(cluster, k.kind, k.namespace, k.name)); ok && crv >= rv {
			return
		}
	}
	if w.objects == nil {
		w.objects = map[writtenKey]*unstructured.Unstructured{}
	}
	if old := w.objects[k]; old != nil {
		if orv, _ := resourceVersion(old.GetResourceVersion()); orv >= rv {
			return
		}
	}
	// What the informers' transforms drop, the kept copy does not need
	// either (a write's response carries every manager's fields). The
	// response is the watch mode's alone: nothing prints it.
	unstructured.RemoveNestedField(obj.Object, "metadata", "managedFields")
	w.objects[k] = obj
}

// seen drops the entry of an object its informer delivered: deleted, or at
// the written version or later. It says whether the event is the echo of
// this process's own write (exactly the version written): the sync that
// wrote it already had that state, so it needs no sync of its own.
func (w *written) seen(cluster, kind string, obj any, deleted bool) (echo bool) {
	if kind == "" {
		return false
	}
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	m := objectMeta(obj)
	k := writtenKey{cluster, kind, m.Namespace, m.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.objects[k]
	if old == nil {
		return false
	}
	orv, _ := resourceVersion(old.GetResourceVersion())
	rv, ok := resourceVersion(resourceVersionOf(obj))
	if deleted || !ok || rv >= orv {
		delete(w.objects, k)
	}
	return !deleted && ok && rv == orv
}

func resourceVersionOf(obj any) string {
	if o, ok := obj.(interface{ GetResourceVersion() string }); ok {
		return o.GetResourceVersion()
	}
	return ""
}

// in returns the written objects of one cluster, kind and namespace ("" =
// all) newer than the cache's, by name.
func (w *written) in(cluster, kind, namespace string) map[[2]string]*unstructured.Unstructured {
	if kind == "" {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out map[[2]string]*unstructured.Unstructured
	for k, obj := range w.objects {
		if k.cluster == cluster && k.kind == kind && (namespace == "" || k.namespace == namespace) {
			if out == nil {
				out = map[[2]string]*unstructured.Unstructured{}
			}
			out[[2]string{k.namespace, k.name}] = obj
		}
	}
	return out
}
