package crds

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// ReleaseLabel is the label mcs-api puts on its CRDs, naming the release
// they come from (e.g. "v0.5.2").
const ReleaseLabel = "multicluster.x-k8s.io/release-version"

// Installed is one MCS CRD as a cluster holds it.
type Installed struct {
	Name string
	// Found is false when the cluster has no such CRD.
	Found bool
	// Served lists the versions it serves, in manifest order; Storage is
	// the version it stores objects in.
	Served  []string
	Storage string
	// Release is the ReleaseLabel's value, "" when it has none.
	Release string
}

// ReadInstalled reads both MCS CRDs from a cluster, ServiceExport's first.
func ReadInstalled(ctx context.Context, client dynamic.Interface) ([]Installed, error) {
	var out []Installed
	for _, name := range []string{ServiceExportCRDName, ServiceImportCRDName} {
		obj, err := client.Resource(GVR).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out = append(out, Installed{Name: name})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading CRD %s: %w", name, err)
		}
		out = append(out, Installed{Name: name, Found: true, Served: ServedVersions(obj), Storage: storageVersion(obj), Release: obj.GetLabels()[ReleaseLabel]})
	}
	return out, nil
}

// CommonServed lists the versions every CRD serves; nil when one of them
// is not installed.
func CommonServed(installed []Installed) []string {
	var common []string
	for i, crd := range installed {
		if !crd.Found {
			return nil
		}
		if i == 0 {
			common = slices.Clone(crd.Served)
			continue
		}
		common = slices.DeleteFunc(common, func(v string) bool { return !slices.Contains(crd.Served, v) })
	}
	return common
}

func storageVersion(crd *unstructured.Unstructured) string {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if m, ok := v.(map[string]any); ok && m["storage"] == true {
			name, _ := m["name"].(string)
			return name
		}
	}
	return ""
}
