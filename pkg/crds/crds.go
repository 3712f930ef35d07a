// Package crds owns the MCS API CustomResourceDefinitions (ServiceExport,
// ServiceImport) as shipped inside sigs.k8s.io/mcs-api, and installing or
// checking them in a cluster.
package crds

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	mcscrd "sigs.k8s.io/mcs-api/config/crd"
	"sigs.k8s.io/yaml"
)

// GVR is the resource of CustomResourceDefinitions.
var GVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Names of the two MCS CRDs.
const (
	ServiceExportCRDName = "serviceexports.multicluster.x-k8s.io"
	ServiceImportCRDName = "serviceimports.multicluster.x-k8s.io"
)

// Manifests returns the CRDs embedded in sigs.k8s.io/mcs-api, decoded.
func Manifests() ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, raw := range [][]byte{mcscrd.ServiceExportCRD, mcscrd.ServiceImportCRD} {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			return nil, fmt.Errorf("decoding embedded MCS CRD: %w", err)
		}
		out = append(out, obj)
	}
	return out, nil
}

// ServedVersions lists the versions a CRD manifest serves, in manifest order.
func ServedVersions(crd *unstructured.Unstructured) []string {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var served []string
	for _, v := range versions {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if s, _ := m["served"].(bool); s {
			name, _ := m["name"].(string)
			served = append(served, name)
		}
	}
	return served
}

// RestrictToVersion rewrites a CRD manifest so it serves and stores only the
// given version, as older MCS installs do (v1alpha1 only).
func RestrictToVersion(crd *unstructured.Unstructured, version string) error {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var kept []any
	for _, v := range versions {
		m, ok := v.(map[string]any)
		if !ok || m["name"] != version {
			continue
		}
		m["served"] = true
		m["storage"] = true
		kept = append(kept, m)
	}
	if len(kept) == 0 {
		return fmt.Errorf("CRD %s has no version %s", crd.GetName(), version)
	}
	return unstructured.SetNestedSlice(crd.Object, kept, "spec", "versions")
}

// Apply server-side applies the CRDs with the given field manager and waits
// until the apiserver reports them Established, so the next request can use
// the new resources. dryRun sends the apply with dryRun=All.
func Apply(ctx context.Context, client dynamic.Interface, fieldManager string, dryRun bool, manifests []*unstructured.Unstructured) error {
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, crd := range manifests {
		if _, err := client.Resource(GVR).Apply(ctx, crd.GetName(), crd, opts); err != nil {
			return fmt.Errorf("applying CRD %s: %w", crd.GetName(), err)
		}
	}
	if dryRun {
		return nil
	}
	return WaitEstablished(ctx, client, names(manifests), 30*time.Second)
}

// WaitEstablished waits until every named CRD has condition Established=True.
func WaitEstablished(ctx context.Context, client dynamic.Interface, crdNames []string, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, name := range crdNames {
			obj, err := client.Resource(GVR).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if !Established(obj) {
				return false, nil
			}
		}
		return true, nil
	})
}

// Established reports whether a CRD object has condition Established=True.
func Established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	return slices.ContainsFunc(conds, func(c any) bool {
		m, ok := c.(map[string]any)
		return ok && m["type"] == "Established" && m["status"] == "True"
	})
}

func names(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}
