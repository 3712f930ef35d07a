package clusterset_test

import (
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

func clusterProperty(name, value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": clusterset.ClusterPropertyGroup + "/v1alpha1",
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

func TestResolveID(t *testing.T) {
	connRefused := &url.Error{Op: "Get", URL: "https://c1.test:6443/apis/about.k8s.io/v1alpha1/clusterproperties",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	for _, tc := range []struct {
		name    string
		context string
		objects []*unstructured.Unstructured
		setup   func(*clustersettest.Fake)
		// wantID and wantSource on success; wantErr fragments otherwise.
		wantID, wantSource string
		wantErr            []string
	}{
		{name: "ClusterProperty", context: "kind-east",
			objects: []*unstructured.Unstructured{clusterProperty("cluster.clusterset.k8s.io", "east-1"), clusterProperty("other.k8s.io", "x")},
			wantID:  "east-1", wantSource: "ClusterProperty cluster.clusterset.k8s.io"},
		{name: "legacy ClusterProperty", context: "kind-east",
			objects: []*unstructured.Unstructured{clusterProperty("id.k8s.io", "east-legacy")},
			wantID:  "east-legacy", wantSource: "ClusterProperty id.k8s.io"},
		{name: "current name wins over the legacy one", context: "kind-east",
			objects: []*unstructured.Unstructured{clusterProperty("id.k8s.io", "old"), clusterProperty("cluster.clusterset.k8s.io", "new")},
			wantID:  "new", wantSource: "ClusterProperty cluster.clusterset.k8s.io"},
		{name: "no ClusterProperty: the context name", context: "cluster1",
			wantID: "cluster1", wantSource: "the context name"},
		{name: "ClusterProperty CRD missing: the context name", context: "cluster1",
			setup:  failList(apierrors.NewNotFound(clustersettest.ClusterPropertyGVR.GroupResource(), "")),
			wantID: "cluster1", wantSource: "the context name"},
		{name: "ClusterProperty forbidden: the context name", context: "cluster1",
			setup:  failList(apierrors.NewForbidden(clustersettest.ClusterPropertyGVR.GroupResource(), "", errors.New("no"))),
			wantID: "cluster1", wantSource: "the context name"},
		{name: "invalid ClusterProperty", context: "cluster1",
			objects: []*unstructured.Unstructured{clusterProperty("cluster.clusterset.k8s.io", "East_1")},
			wantErr: []string{"cluster1: ", `cluster id "East_1" (from ClusterProperty cluster.clusterset.k8s.io) is not a valid DNS label`,
				"create ClusterProperty cluster.clusterset.k8s.io with a DNS-label value"}},
		{name: "invalid context name", context: "Prod_Cluster",
			wantErr: []string{"Prod_Cluster: ", `cluster id "Prod_Cluster" (from the context name`, "not a valid DNS label",
				"or use a context name that is one"}},
		{name: "context name too long", context: strings.Repeat("a", 64),
			wantErr: []string{"not a valid DNS label", "63"}},
		{name: "unreachable", context: "cluster1", setup: failList(connRefused),
			wantErr: []string{"cluster1: cannot reach the API server https://cluster1.test:6443", "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := clustersettest.New(tc.context)
			for _, o := range tc.objects {
				f.Add(o)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			c := f.Cluster
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
