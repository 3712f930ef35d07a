package clusterset_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
)

func clusterProperty(version, name, value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": clusterset.ClusterPropertyGroup + "/" + version,
		"kind":       "ClusterProperty",
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"value": value},
	}}
}

func failList(err error) func(*clustersettest.Fake) {
	return func(f *clustersettest.Fake) {
		f.Dynamic.PrependReactor("list", "clusterproperties", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, err
		})
	}
}

// TestResolveID reads the id as KEP-2149 defines it: the ClusterProperty
// named cluster.clusterset.k8s.io, in whichever version of about.k8s.io the
// cluster serves (about-api's current CRD serves only v1beta1; older
// installs v1alpha1), and says where the id came from.
func TestResolveID(t *testing.T) {
	connRefused := &url.Error{Op: "Get", URL: "https://c1.test:6443/apis/about.k8s.io/v1beta1/clusterproperties",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	for _, tc := range []struct {
		name    string
		context string
		// served are the ClusterProperty versions discovery lists.
		served  []string
		objects []*unstructured.Unstructured
		setup   func(*clustersettest.Fake)
		// wantID and wantSource on success; wantErr fragments otherwise.
		wantID, wantSource string
		// wantWarning is what the user is told when the id falls back to
		// the context name although the CRD is served ("" for nothing).
		wantWarning string
		wantErr     []string
	}{
		{name: "v1beta1-only CRD (about-api today)", context: "kind-east", served: []string{"v1beta1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1beta1", "cluster.clusterset.k8s.io", "east"), clusterProperty("v1beta1", "other.k8s.io", "x")},
			wantID:  "east", wantSource: "ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)"},
		{name: "v1alpha1-only CRD (older installs)", context: "kind-east", served: []string{"v1alpha1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1alpha1", "cluster.clusterset.k8s.io", "east-1")},
			wantID:  "east-1", wantSource: "ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1alpha1)"},
		{name: "both served: the newest is read", context: "kind-east", served: []string{"v1alpha1", "v1beta1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1beta1", "cluster.clusterset.k8s.io", "new"), clusterProperty("v1alpha1", "cluster.clusterset.k8s.io", "old")},
			wantID:  "new", wantSource: "ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)"},
		{name: "legacy ClusterProperty", context: "kind-east", served: []string{"v1beta1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1beta1", "id.k8s.io", "east-legacy")},
			wantID:  "east-legacy", wantSource: "ClusterProperty id.k8s.io (about.k8s.io/v1beta1)"},
		{name: "current name wins over the legacy one", context: "kind-east", served: []string{"v1beta1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1beta1", "id.k8s.io", "old"), clusterProperty("v1beta1", "cluster.clusterset.k8s.io", "new")},
			wantID:  "new", wantSource: "ClusterProperty cluster.clusterset.k8s.io"},
		{name: "no ClusterProperty CRD: the context name, quietly", context: "cluster1",
			wantID: "cluster1", wantSource: "the context name (no ClusterProperty CRD)"},
		{name: "CRD served without the id: the context name, with a warning", context: "cluster1", served: []string{"v1beta1"},
			objects:     []*unstructured.Unstructured{clusterProperty("v1beta1", "other.k8s.io", "x")},
			wantID:      "cluster1",
			wantSource:  "the context name (ClusterProperty about.k8s.io/v1beta1 is served but has no cluster.clusterset.k8s.io)",
			wantWarning: `Warning: cluster1: using the context name "cluster1" as cluster id: ClusterProperty about.k8s.io/v1beta1 is served but has no cluster.clusterset.k8s.io`},
		{name: "ClusterProperty forbidden: the context name, with a warning", context: "cluster1", served: []string{"v1beta1"},
			setup:       failList(apierrors.NewForbidden(clustersettest.ClusterPropertyGVR("v1beta1").GroupResource(), "", errors.New("no"))),
			wantID:      "cluster1",
			wantSource:  "the context name (ClusterProperty about.k8s.io/v1beta1 is served but listing it is forbidden",
			wantWarning: "listing it is forbidden (grant list on clusterproperties.about.k8s.io"},
		{name: "discovery behind the CRD: the served version is tried next", context: "kind-east", served: []string{"v1alpha1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1beta1", "cluster.clusterset.k8s.io", "east")},
			setup: func(f *clustersettest.Fake) {
				f.Dynamic.PrependReactor("list", "clusterproperties", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if a.GetResource().Version == "v1alpha1" {
						return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), "")
					}
					return false, nil, nil
				})
			},
			wantID: "east", wantSource: "ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)"},
		{name: "invalid ClusterProperty", context: "cluster1", served: []string{"v1beta1"},
			objects: []*unstructured.Unstructured{clusterProperty("v1beta1", "cluster.clusterset.k8s.io", "East_1")},
			wantErr: []string{"cluster1: ", `cluster id "East_1" (from ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)) is not a valid DNS label`,
				"create ClusterProperty cluster.clusterset.k8s.io with a DNS-label value"}},
		{name: "invalid context name", context: "Prod_Cluster",
			wantErr: []string{"Prod_Cluster: ", `cluster id "Prod_Cluster" (from the context name`, "not a valid DNS label",
				"or use a context name that is one"}},
		{name: "context name too long", context: strings.Repeat("a", 64),
			wantErr: []string{"not a valid DNS label", "63"}},
		{name: "unreachable", context: "cluster1", served: []string{"v1beta1"}, setup: failList(connRefused),
			wantErr: []string{"cluster1: cannot reach the API server https://cluster1.test:6443", "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := clustersettest.New(tc.context)
			f.ServeClusterProperty(tc.served...)
			for _, o := range tc.objects {
				f.Add(o)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			c := f.Cluster
			var warnings bytes.Buffer
			c.SetWarnings(&warnings)
			c.ID, c.IDSource = "", ""
			err := c.ResolveID(context.Background())
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ResolveID gave id %q, want an error", c.ID)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if c.ID != "" {
					t.Errorf("id set to %q despite the error", c.ID)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveID: %v", err)
			}
			if c.ID != tc.wantID || !strings.HasPrefix(c.IDSource, tc.wantSource) {
				t.Errorf("id %q from %q, want %q from %q", c.ID, c.IDSource, tc.wantID, tc.wantSource)
			}
			switch {
			case tc.wantWarning == "" && warnings.Len() > 0:
				t.Errorf("unexpected warning %q", warnings.String())
			case !strings.Contains(warnings.String(), tc.wantWarning):
				t.Errorf("warnings %q do not say %q", warnings.String(), tc.wantWarning)
			}
		})
	}
}

func TestValidateClusterID(t *testing.T) {
	for id, valid := range map[string]bool{
		"cluster1": true, "a": true, "east-1": true, strings.Repeat("a", 63): true,
		"": false, "East": false, "a.b": false, "-a": false, "a-": false, "a_b": false, strings.Repeat("a", 64): false,
	} {
		if err := clusterset.ValidateClusterID(id); (err == nil) != valid {
			t.Errorf("ValidateClusterID(%q) = %v, want valid=%t", id, err, valid)
		}
	}
}
