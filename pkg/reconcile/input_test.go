package reconcile

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// caseInput is the format of testdata/<case>/input.yaml: the clock, the
// consumer and the sources, each with ordinary Kubernetes objects decoded by
// kind. ServiceExports and ServiceImports may say v1alpha1 or v1beta1: the
// two are schema-identical, as the library assumes.
//
//	now: "2025-06-01T12:00:00Z"
//	consumer:
//	  clusterID: cluster2
//	  namespaces: [provider-ns]
//	  objects: [ServiceImport, Service, EndpointSlice ...]
//	sources:
//	- clusterID: cluster1
//	  unreachable: false
//	  objects: [ServiceExport, Service, EndpointSlice ...]
type caseInput struct {
	Now      metav1.Time `json:"now"`
	Consumer struct {
		ClusterID  string            `json:"clusterID"`
		Namespaces []string          `json:"namespaces"`
		Objects    []json.RawMessage `json:"objects"`
	} `json:"consumer"`
	Sources []struct {
		ClusterID   string            `json:"clusterID"`
		Unreachable bool              `json:"unreachable"`
		Objects     []json.RawMessage `json:"objects"`
	} `json:"sources"`
}

func loadSnapshot(path string) (Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, err
	}
	var in caseInput
	if err := yaml.UnmarshalStrict(raw, &in); err != nil {
		return Snapshot{}, fmt.Errorf("%s: %w", path, err)
	}
	s := Snapshot{Now: in.Now, Consumer: Consumer{ClusterID: in.Consumer.ClusterID, Namespaces: in.Consumer.Namespaces}}
	for i, obj := range in.Consumer.Objects {
		v, err := decodeObject(obj)
		if err != nil {
			return Snapshot{}, fmt.Errorf("%s: consumer object %d: %w", path, i, err)
		}
		switch o := v.(type) {
		case *mcsv1beta1.ServiceImport:
			s.Consumer.Imports = append(s.Consumer.Imports, *o)
		case *corev1.Service:
			s.Consumer.Services = append(s.Consumer.Services, *o)
		case *discoveryv1.EndpointSlice:
			s.Consumer.EndpointSlices = append(s.Consumer.EndpointSlices, *o)
		default:
			return Snapshot{}, fmt.Errorf("%s: consumer object %d: a consumer holds no %T", path, i, v)
		}
	}
	for _, src := range in.Sources {
		source := Source{ClusterID: src.ClusterID, Unreachable: src.Unreachable}
		for i, obj := range src.Objects {
			v, err := decodeObject(obj)
			if err != nil {
				return Snapshot{}, fmt.Errorf("%s: %s object %d: %w", path, src.ClusterID, i, err)
			}
			switch o := v.(type) {
			case *mcsv1beta1.ServiceExport:
				source.Exports = append(source.Exports, *o)
			case *corev1.Service:
				source.Services = append(source.Services, *o)
			case *discoveryv1.EndpointSlice:
				source.EndpointSlices = append(source.EndpointSlices, *o)
			default:
				return Snapshot{}, fmt.Errorf("%s: %s object %d: a source holds no %T", path, src.ClusterID, i, v)
			}
		}
		s.Sources = append(s.Sources, source)
	}
	return s, nil
}

func decodeObject(raw json.RawMessage) (any, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.Kind {
	case "ServiceExport":
		obj = &mcsv1beta1.ServiceExport{}
	case "ServiceImport":
		obj = &mcsv1beta1.ServiceImport{}
	case "Service":
		obj = &corev1.Service{}
	case "EndpointSlice":
		obj = &discoveryv1.EndpointSlice{}
	default:
		return nil, fmt.Errorf("unsupported kind %q", tm.Kind)
	}
	if err := yaml.UnmarshalStrict(raw, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}
