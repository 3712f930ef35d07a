package exports

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Unexport checks every named export before deleting any: each must exist
// and be kubectl mcs's, unless Force.
func Unexport(ctx context.Context, r Request) (*Outcome, error) {
	o := &r
	c := r.Cluster
	gvr, err := c.MCSResource(clusterset.ServiceExports)
	if err != nil {
		return nil, err
	}
	existing, err := listExports(ctx, c, o.Namespace)
	if err != nil {
		return nil, err
	}
	var problems []error
	for _, name := range o.Services {
		e := existing[name]
		switch {
		case e == nil:
			problems = append(problems, c.Errorf("ServiceExport %s/%s not found (check -n/--context; `kubectl mcs status` lists the exports)", o.Namespace, name))
		case e.Labels[reconcile.ManagedByLabel] != reconcile.FieldManager && !o.Force:
			problems = append(problems, c.Errorf("ServiceExport %s/%s was not created by kubectl mcs (no label %s=%s); pass --force to delete it anyway",
				o.Namespace, name, reconcile.ManagedByLabel, reconcile.FieldManager))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing was deleted:\n%w", errors.Join(problems...))
	}
	w := &apply.Writer{Client: c.Dynamic, FieldManager: reconcile.FieldManager, DryRun: o.DryRun}
	out := &Outcome{}
	for _, name := range o.Services {
		if err := w.Delete(ctx, gvr, o.Namespace, name, string(existing[name].UID)); err != nil {
			return out, c.Errorf("deleting ServiceExport %s/%s: %w", o.Namespace, name, err)
		}
		out.Results = append(out.Results, apply.Result{Cluster: c.Context, Kind: "ServiceExport", Group: gvr.Group, Namespace: o.Namespace, Name: name, Action: apply.Deleted})
		obj, err := apply.ToUnstructured(existing[name], gvr.GroupVersion().WithKind("ServiceExport"))
		if err != nil {
			return out, err
		}
		out.Objects = append(out.Objects, obj)
	}
	return out, nil
}
