package clusterset_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
)

func TestCheckPermissions(t *testing.T) {
	patchSlices := clusterset.Permission{Verb: "patch", Group: "discovery.k8s.io", Resource: "endpointslices"}
	patchServices := clusterset.Permission{Verb: "patch", Resource: "services"}
	importStatus := clusterset.Permission{Verb: "patch", Group: clusterset.MCSGroup, Resource: "serviceimports/status"}
	rule := func(group, resource string, verbs ...string) authorizationv1.ResourceRule {
		return authorizationv1.ResourceRule{Verbs: verbs, APIGroups: []string{group}, Resources: []string{resource}}
	}
	for _, tc := range []struct {
		name       string
		rules      []authorizationv1.ResourceRule
		incomplete bool
		perms      map[string][]clusterset.Permission
		// wantErr fragments; none means allowed. notInErr must not appear.
		wantErr, notInErr []string
	}{
		{name: "allowed exactly",
			rules: []authorizationv1.ResourceRule{rule("discovery.k8s.io", "endpointslices", "get", "patch"), rule("", "services", "patch")},
			perms: map[string][]clusterset.Permission{"shop": {patchSlices, patchServices}}},
		{name: "allowed by wildcards",
			rules: []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
			perms: map[string][]clusterset.Permission{"shop": {patchSlices, importStatus}}},
		{name: "subresource by resource/*",
			rules: []authorizationv1.ResourceRule{rule(clusterset.MCSGroup, "serviceimports/*", "patch")},
			perms: map[string][]clusterset.Permission{"shop": {importStatus}}},
		{name: "the resource does not grant its subresource",
			rules:   []authorizationv1.ResourceRule{rule(clusterset.MCSGroup, "serviceimports", "patch")},
			perms:   map[string][]clusterset.Permission{"shop": {importStatus}},
			wantErr: []string{"patch serviceimports/status.multicluster.x-k8s.io in namespace shop"}},
		{name: "a rule for named objects grants nothing here",
			rules:   []authorizationv1.ResourceRule{{Verbs: []string{"patch"}, APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{"amcs-web"}}},
			perms:   map[string][]clusterset.Permission{"shop": {patchServices}},
			wantErr: []string{"patch services in namespace shop"}},
		{name: "missing, in every namespace, each named once",
			rules: []authorizationv1.ResourceRule{rule("", "services", "patch"), rule("discovery.k8s.io", "endpointslices", "get")},
			perms: map[string][]clusterset.Permission{
				"shop":  {patchSlices, patchServices, patchSlices},
				"other": {patchSlices},
			},
			wantErr: []string{
				"c1: forbidden: the user of this context may not patch endpointslices.discovery.k8s.io in namespace other, patch endpointslices.discovery.k8s.io in namespace shop; nothing was written",
				"deploy/rbac/",
			},
			notInErr: []string{"services"}},
		{name: "incomplete review: the API server decides",
			incomplete: true,
			perms:      map[string][]clusterset.Permission{"shop": {patchSlices}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := clustersettest.New("c1")
			f.Rules, f.RulesIncomplete = tc.rules, tc.incomplete
			err := f.Cluster.CheckPermissions(context.Background(), tc.perms)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("CheckPermissions: %v", err)
			}
			if len(tc.wantErr) > 0 && err == nil {
				t.Fatal("CheckPermissions passed, want an error")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%s", want, err)
				}
			}
			for _, not := range tc.notInErr {
				if strings.Contains(err.Error(), not) {
					t.Errorf("error names %q, which is granted:\n%s", not, err)
				}
			}
			// One review per namespace (sent together, in any order).
			var want []string
			for ns := range tc.perms {
				want = append(want, ns)
			}
			slices.Sort(want)
			if got := slices.Sorted(slices.Values(f.Reviews())); !slices.Equal(got, want) {
				t.Errorf("reviews in %v, want one per namespace %v", got, want)
			}
		})
	}
}

func TestCheckPermissionsReviewFails(t *testing.T) {
	f := clustersettest.New("c1")
	f.Kube.PrependReactor("create", "selfsubjectrulesreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("authorizer down")
	})
	err := f.Cluster.CheckPermissions(context.Background(), map[string][]clusterset.Permission{"shop": {{Verb: "patch", Resource: "services"}}})
	if err == nil || !strings.Contains(err.Error(), "c1: checking permissions in namespace shop: authorizer down") {
		t.Errorf("CheckPermissions = %v", err)
	}
}

func TestPermissionString(t *testing.T) {
	for p, want := range map[clusterset.Permission]string{
		{Verb: "patch", Resource: "services"}:                                   "patch services",
		{Verb: "create", Group: "discovery.k8s.io", Resource: "endpointslices"}: "create endpointslices.discovery.k8s.io",
	} {
		if got := p.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", p, got, want)
		}
	}
}
