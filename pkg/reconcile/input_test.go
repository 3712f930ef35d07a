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
	Now metav1.Time `json:"now"`
	// Consumer is the one consumer of most cases; Consumers lists several
	// (a whole-clusterset sync, where sources consume too).
	Consumer  *consumerInput  `json:"consumer,omitempty"`
	Consumers []consumerInput `json:"consumers,omitempty"`
	Sources   []struct {
		ClusterID   string            `json:"clusterID"`
		Unreachable bool              `json:"unreachable"`
		Objects     []json.RawMessage `json:"objects"`
	} `json:"sources"`
}

type consumerInput struct {
	ClusterID  string            `json:"clusterID"`
	Namespaces []string          `json:"namespaces"`
	Objects    []json.RawMessage `json:"objects"`
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
	s := Snapshot{Now: in.Now}
	consumers := in.Consumers
	if in.Consumer != nil {
		consumers = append([]consumerInput{*in.Consumer}, consumers...)
	}
	for _, ci := range consumers {
		con := Consumer{ClusterID: ci.ClusterID, Namespaces: ci.Namespaces}
		for i, obj := range ci.Objects {
			v, err := decodeObject(obj)
			if err != nil {
				return Snapshot{}, fmt.Errorf("%s: consumer %s object %d: %w", path, ci.ClusterID, i, err)
			}
			switch o := v.(type) {
			case *mcsv1beta1.ServiceImport:
				con.Imports = append(con.Imports, *o)
			case *corev1.Service:
				con.Services = append(con.Services, *o)
			case *discoveryv1.EndpointSlice:
				con.EndpointSlices = append(con.EndpointSlices, *o)
			default:
				return Snapshot{}, fmt.Errorf("%s: consumer %s object %d: a consumer holds no %T", path, ci.ClusterID, i, v)
			}
		}
		s.Consumers = append(s.Consumers, con)
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
