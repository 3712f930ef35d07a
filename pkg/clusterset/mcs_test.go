package clusterset_test

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	discoveryfake "k8s.io/client-go/discovery/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
)

func mcsResources(version string, resources ...string) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: clusterset.MCSGroup + "/" + version}
	for _, r := range resources {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: r, Namespaced: true})
	}
	return l
}

func TestMCSVersion(t *testing.T) {
	both := []string{clusterset.ServiceExports, clusterset.ServiceImports}
	for _, tc := range []struct {
		name string
		// served is what discovery lists, the group's preferred version
		// first.
		served  []*metav1.APIResourceList
		want    string
		wantErr []string
	}{
		{name: "v1beta1", served: []*metav1.APIResourceList{mcsResources("v1beta1", both...)}, want: "v1beta1"},
		{name: "v1alpha1 (mcs-api before 0.4)", served: []*metav1.APIResourceList{mcsResources("v1alpha1", both...)}, want: "v1alpha1"},
		{name: "both, v1beta1 preferred", served: []*metav1.APIResourceList{mcsResources("v1beta1", both...), mcsResources("v1alpha1", both...)}, want: "v1beta1"},
		{name: "preferred version lacks them: the newest that has them",
			served: []*metav1.APIResourceList{mcsResources("v1", "other"), mcsResources("v1alpha1", both...), mcsResources("v1beta1", both...)}, want: "v1beta1"},
		{name: "not installed", wantErr: []string{"c1: the MCS API (multicluster.x-k8s.io) is not served", "kubectl mcs crds install --context c1"}},
		{name: "only ServiceExport", served: []*metav1.APIResourceList{mcsResources("v1beta1", clusterset.ServiceExports)},
			wantErr: []string{"is not served"}},
		{name: "CRDs disagree",
			served:  []*metav1.APIResourceList{mcsResources("v1beta1", clusterset.ServiceExports), mcsResources("v1alpha1", clusterset.ServiceImports)},
			wantErr: []string{"c1: the MCS CRDs disagree: ServiceExport is served as v1beta1 but ServiceImport as v1alpha1", "crds install --context c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := clustersettest.New("c1")
			f.Discovery.Resources = append([]*metav1.APIResourceList{clustersettest.CoreResources}, tc.served...)
			got, err := f.Cluster.MCSVersion()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("MCSVersion = %q, want an error", got)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not say %q:\n%s", want, err)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MCSVersion = %q, %v; want %q", got, err, tc.want)
			}
			gvr, err := f.Cluster.MCSResource(clusterset.ServiceImports)
			if want := (schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: tc.want, Resource: clusterset.ServiceImports}); err != nil || gvr != want {
				t.Errorf("MCSResource = %v, %v; want %v", gvr, err, want)
			}
		})
	}
}

// staleCache is a discovery cache filled before the CRDs were installed:
// it lists them only once invalidated.
type staleCache struct {
	*discoveryfake.FakeDiscovery
	fresh       []*metav1.APIResourceList
	invalidated int
}

func (s *staleCache) Fresh() bool { return false }
func (s *staleCache) Invalidate() {
	s.invalidated++
	s.Resources = s.fresh
}

func TestMCSVersionRefreshesAStaleCacheOnce(t *testing.T) {
	f := clustersettest.New("c1")
	cache := &staleCache{FakeDiscovery: &discoveryfake.FakeDiscovery{Fake: &k8stesting.Fake{Resources: []*metav1.APIResourceList{clustersettest.CoreResources}}},
		fresh: []*metav1.APIResourceList{clustersettest.CoreResources, mcsResources("v1beta1", clusterset.ServiceExports, clusterset.ServiceImports)}}
	f.Cluster.Discovery = cache
	var asked int
	for i := range 3 {
		if v, err := f.Cluster.MCSVersion(); err != nil || v != "v1beta1" {
			t.Fatalf("MCSVersion = %q, %v; want v1beta1 after a refresh", v, err)
		}
		if i == 0 {
			asked = len(cache.Actions())
		}
	}
	if cache.invalidated != 1 {
		t.Errorf("cache invalidated %d times, want once", cache.invalidated)
	}
	// The answer is kept: discovery is asked by the first call only.
	if n := len(cache.Actions()); asked == 0 || n != asked {
		t.Errorf("discovery asked %d times by the first call, %d by all three", asked, n)
	}
}

func TestMCSVersionUnreachable(t *testing.T) {
	f := clustersettest.New("c1")
	f.Discovery.PrependReactor("get", "group", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, &url.Error{Op: "Get", URL: "https://c1.test:6443/apis", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	})
	_, err := f.Cluster.MCSVersion()
	if err == nil || !strings.Contains(err.Error(), "c1: cannot reach the API server https://c1.test:6443") || !clusterset.Unreachable(err) {
		t.Errorf("MCSVersion = %v, want an unreachable error naming c1", err)
	}
}
