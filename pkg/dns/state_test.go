package dns

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// stateFile is a State as YAML, with the key names of the reconcile goldens
// (imports, services, endpointSlices).
type stateFile struct {
	ClusterID      string                      `json:"clusterID"`
	Imports        []mcsv1beta1.ServiceImport  `json:"imports"`
	Services       []corev1.Service            `json:"services"`
	EndpointSlices []discoveryv1.EndpointSlice `json:"endpointSlices"`
}

func loadState(t testing.TB, path string) State {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f stateFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return State{ClusterID: f.ClusterID, Imports: f.Imports, Services: f.Services, EndpointSlices: f.EndpointSlices}
}

// seedState is testdata/state.yaml: the seed after import, plus a not-ready
// endpoint, a second cluster exporting mysql-0 and a ClusterSetIP import.
func seedState(t testing.TB) State {
	return loadState(t, filepath.Join("testdata", "state.yaml"))
}
