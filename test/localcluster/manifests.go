package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// Create creates every object of a multi-document YAML manifest in the
// cluster, as `kubectl create -f` would, namespaced objects in namespace
// unless they name their own. It returns "kind/name created" lines.
func (c *Cluster) Create(ctx context.Context, namespace string, manifest []byte) ([]string, error) {
	objs, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(c.Config)))
	dyn := c.Dynamic()
	var lines []string
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return lines, fmt.Errorf("%s: %s %s: %w", c.Name, gvk.Kind, obj.GetName(), err)
		}
		res := dyn.Resource(mapping.Resource)
		var created *unstructured.Unstructured
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(namespace)
			}
			created, err = res.Namespace(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{})
		} else {
			created, err = res.Create(ctx, obj, metav1.CreateOptions{})
		}
		if err != nil {
			return lines, fmt.Errorf("%s: creating %s %s: %w", c.Name, gvk.Kind, obj.GetName(), err)
		}
		lines = append(lines, fmt.Sprintf("%s/%s created", qualifiedKind(gvk.Kind, gvk.Group), created.GetName()))
	}
	return lines, nil
}

// qualifiedKind prints a kind the way kubectl does: "statefulset.apps".
func qualifiedKind(kind, group string) string {
	if group == "" {
		return strings.ToLower(kind)
	}
	return strings.ToLower(kind) + "." + group
}

func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}
