package apply

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Need is a permission a verb needs beside its plan's writes (export's
// writes of the ServiceExports themselves), asked in the same review.
type Need struct {
	ClusterID, Namespace string
	Permission           clusterset.Permission
}

// Preflight checks that the user may make every write of the plan, and
// every permission of also, in every cluster they name, before the first
// one is sent: one review per cluster and namespace. A client dry run sends
// nothing and needs no check; a permission found granted once is not asked
// again by the same executor.
func (x *Executor) Preflight(ctx context.Context, plan reconcile.Plan, also ...Need) error {
	if x.DryRun == cmdutil.DryRunClient {
		return nil
	}
	x.mu.Lock()
	if x.confirmed == nil {
		x.confirmed = map[string]bool{}
	}
	needs := map[string]map[string][]clusterset.Permission{}
	add := func(cluster, ns string, p clusterset.Permission) {
		k := cluster + "/" + ns + "/" + p.String()
		if x.confirmed[k] {
			return
		}
		if needs[cluster] == nil {
			needs[cluster] = map[string][]clusterset.Permission{}
		}
		if !slices.Contains(needs[cluster][ns], p) {
			needs[cluster][ns] = append(needs[cluster][ns], p)
		}
	}
	for _, ch := range plan.Changes {
		if ch.Action == reconcile.ActionUnchanged {
			continue
		}
		group, resource := resourceOfKind(ch.Kind)
		var verbs []string
		switch ch.Action {
		case reconcile.ActionCreate:
			verbs = []string{"create", "patch"}
		case reconcile.ActionUpdate:
			verbs = []string{"patch"}
		case reconcile.ActionReplace:
			verbs = []string{"delete", "create", "patch"}
		case reconcile.ActionDelete:
			verbs = []string{"delete"}
		}
		for _, v := range verbs {
			add(ch.Cluster, ch.Namespace, clusterset.Permission{Verb: v, Group: group, Resource: resource})
		}
	}
	for _, n := range also {
		add(n.ClusterID, n.Namespace, n.Permission)
	}
	x.mu.Unlock()
	// Every cluster at once (its namespaces at once too, in
	// CheckPermissions): one round trip for the whole check.
	ids := slices.Sorted(maps.Keys(needs))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for n, id := range ids {
		c := x.Clusters[id]
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			perms := needs[id]
			if errs[n] = c.CheckPermissions(ctx, perms); errs[n] != nil {
				return
			}
			x.mu.Lock()
			for ns, list := range perms {
				for _, p := range list {
					x.confirmed[id+"/"+ns+"/"+p.String()] = true
				}
			}
			x.mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func resourceOfKind(kind string) (group, resource string) {
	switch kind {
	case reconcile.KindServiceImport:
		return clusterset.MCSGroup, clusterset.ServiceImports
	case reconcile.KindServiceImportStatus:
		return clusterset.MCSGroup, clusterset.ServiceImports + "/status"
	case reconcile.KindServiceExportStatus:
		return clusterset.MCSGroup, clusterset.ServiceExports + "/status"
	case reconcile.KindService:
		return servicesGVR.Group, servicesGVR.Resource
	case reconcile.KindEndpointSlice:
		return endpointSlicesGVR.Group, endpointSlicesGVR.Resource
	}
	return "", ""
}
