package controller

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// trimManagedFields is the transform of every informer: a sync never reads
// managedFields, which for a server-side applied EndpointSlice are about as
// large as its endpoints, so the caches do not keep them.
func trimManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// trimSourceSlice is the transform of a source's EndpointSlice informer:
// besides managedFields, the fields of an endpoint a mirrored slice never
// carries (nodeName and targetRef name objects of the source cluster,
// hints its zones) are dropped.
func trimSourceSlice(obj any) (any, error) {
	if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
		s.ManagedFields = nil
		for i := range s.Endpoints {
			s.Endpoints[i].NodeName, s.Endpoints[i].TargetRef, s.Endpoints[i].Hints = nil, nil, nil
		}
		return s, nil
	}
	return trimManagedFields(obj)
}

func setTransform(inf cache.SharedIndexInformer, t cache.TransformFunc) error {
	return inf.SetTransform(t)
}
