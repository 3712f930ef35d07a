package apply

import (
	"context"
	"errors"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Preflight checks that the user may make every write of the plan, in the
// consumer and in each source, before the first one is sent. A client dry
// run sends nothing and needs no check.
func (x *Executor) Preflight(ctx context.Context, plan reconcile.Plan) error {
	if x.DryRun == cmdutil.DryRunClient {
		return nil
	}
	needs := map[*clusterset.Cluster]map[string][]clusterset.Permission{}
	add := func(c *clusterset.Cluster, ns string, perms ...clusterset.Permission) {
		if needs[c] == nil {
			needs[c] = map[string][]clusterset.Permission{}
		}
		needs[c][ns] = append(needs[c][ns], perms...)
	}
	for _, ch := range plan.Changes {
		if ch.Action == reconcile.ActionUnchanged {
			continue
		}
		if ch.Kind == reconcile.KindServiceExportStatus {
			if src := x.Sources[ch.Cluster]; src != nil {
				add(src, ch.Namespace, clusterset.Permission{Verb: "patch", Group: clusterset.MCSGroup, Resource: clusterset.ServiceExports + "/status"})
			}
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
			add(x.Consumer, ch.Namespace, clusterset.Permission{Verb: v, Group: group, Resource: resource})
		}
		if ch.Kind == reconcile.KindServiceImport && ch.Action != reconcile.ActionDelete {
			add(x.Consumer, ch.Namespace, clusterset.Permission{Verb: "patch", Group: group, Resource: resource + "/status"})
		}
	}
	var errs []error
	for c, perms := range needs {
		if err := c.CheckPermissions(ctx, perms); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func resourceOfKind(kind string) (group, resource string) {
	switch kind {
	case reconcile.KindServiceImport:
		return clusterset.MCSGroup, clusterset.ServiceImports
	case reconcile.KindService:
		return servicesGVR.Group, servicesGVR.Resource
	case reconcile.KindEndpointSlice:
		return endpointSlicesGVR.Group, endpointSlicesGVR.Resource
	}
	return "", ""
}
