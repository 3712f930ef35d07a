// Package exports plans and writes the ServiceExports of one cluster, for
// export and unexport: every named Service is read and checked before the
// first write, and the exports' status is written through pkg/apply as the
// sync engine writes it, so ServiceExport status has one writer.
package exports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Request is one export or unexport in one cluster's namespace.
type Request struct {
	Cluster   *clusterset.Cluster
	Namespace string
	// Services are the Services named; with All, export fills them in
	// from the namespace.
	Services []string
	// All exports every Service of the namespace that can be exported.
	All bool
	// AllowMissing exports a named Service that does not exist yet.
	AllowMissing bool
	// Force unexports ServiceExports that kubectl mcs did not create.
	Force  bool
	DryRun cmdutil.DryRunStrategy
	// MaxWritesInFlight bounds the export writes in flight (0: the
	// default, apply.DefaultMaxWritesInFlight).
	MaxWritesInFlight int
	// Now stamps the Valid condition.
	Now time.Time
	// Warnings receives the Services that All skips.
	Warnings io.Writer
}

// Outcome is what was written: kubectl-style results in the order of the
// Services, and the objects as the server holds them (for -o).
type Outcome struct {
	Results []apply.Result
	Objects []*unstructured.Unstructured
}

// exportPlan is what export decided for one Service before writing.
type exportPlan struct {
	name     string
	existing *mcsv1beta1.ServiceExport // nil: create
	desired  *mcsv1beta1.ServiceExport
	action   apply.Action
}

// Export reads every Service and existing export first, refuses if any
// named Service cannot be exported, and only then writes.
func Export(ctx context.Context, r Request) (*Outcome, error) {
	o := &r
	c := r.Cluster
	if o.MaxWritesInFlight < 1 {
		o.MaxWritesInFlight = apply.DefaultMaxWritesInFlight
	}
	if o.Warnings == nil {
		o.Warnings = io.Discard
	}
	gvr, err := c.MCSResource(clusterset.ServiceExports)
	if err != nil {
		return nil, err
	}
	// The Services and the existing exports at once: one round trip.
	var existing map[string]*mcsv1beta1.ServiceExport
	var existingErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		existing, existingErr = listExports(ctx, c, o.Namespace)
	}()
	services, err := o.services(ctx)
	<-listed
	if err != nil {
		return nil, err
	}
	if existingErr != nil {
		return nil, existingErr
	}
	now := metav1.NewTime(o.Now.Truncate(time.Second))
	var plans []exportPlan
	var problems []error
	for _, name := range o.Services {
		svc := services[name]
		if svc == nil && !o.AllowMissing {
			problems = append(problems, o.missingService(ctx, name))
			continue
		}
		if svc != nil {
			if why, instead := reconcile.NotExportable(svc); why != "" {
				problems = append(problems, c.Errorf("%s (%s)", why, instead))
				continue
			}
		}
		plans = append(plans, o.plan(c, name, svc, existing[name], now))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing was exported:\n%w", errors.Join(problems...))
	}

	// The export's status is written as the engine writes it: a plan of
	// ExportStatuses applied by apply.Executor (one writer of ServiceExport
	// status, whichever verb computed it). Permissions are checked for
	// every write before the first one.
	changed := slices.ContainsFunc(plans, func(p exportPlan) bool { return p.action != apply.Unchanged })
	executor := &apply.Executor{Clusters: map[string]*clusterset.Cluster{c.ID: c}, DryRun: o.DryRun, MaxInFlight: o.MaxWritesInFlight}
	if changed {
		// The exports' own writes and their status, in one review.
		if err := executor.Preflight(ctx, statusPlan(c, plans),
			apply.Need{ClusterID: c.ID, Namespace: o.Namespace, Permission: clusterset.Permission{Verb: "create", Group: gvr.Group, Resource: gvr.Resource}},
			apply.Need{ClusterID: c.ID, Namespace: o.Namespace, Permission: clusterset.Permission{Verb: "patch", Group: gvr.Group, Resource: gvr.Resource}},
		); err != nil {
			return nil, err
		}
	}
	w := &apply.Writer{Client: c.Dynamic, FieldManager: reconcile.FieldManager, DryRun: o.DryRun}
	// Each export's spec, up to --max-writes-in-flight exports at once, so
	// naming many Services costs one round trip, not one per Service; then
	// every status through the executor, as the engine writes them. The
	// first failure starts nothing more.
	results := make([]*apply.Result, len(plans))
	printed := make([]*unstructured.Unstructured, len(plans))
	errs := make([]error, len(plans))
	var writes errgroup.Group
	writes.SetLimit(o.MaxWritesInFlight)
	var failed atomic.Bool
	for i, p := range plans {
		// Go waits for a free slot; the write checks for a failure once
		// it has one.
		writes.Go(func() error {
			if failed.Load() {
				return nil
			}
			results[i], printed[i], errs[i] = o.writeExport(ctx, w, c, gvr, p)
			if errs[i] != nil {
				failed.Store(true)
			}
			return nil
		})
	}
	writes.Wait()
	out := &Outcome{}
	for i := range plans {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if results[i] != nil {
			out.Results = append(out.Results, *results[i])
			out.Objects = append(out.Objects, printed[i])
		}
	}
	plan := statusPlan(c, plans)
	if _, _, err := executor.Execute(ctx, plan, plan.Changes); err != nil {
		return nil, err
	}
	return out, nil
}

// statusPlan is the plan of the exports' status: their conditions, and a
// status write of each export that changes.
func statusPlan(c *clusterset.Cluster, plans []exportPlan) reconcile.Plan {
	var plan reconcile.Plan
	for _, p := range plans {
		plan.ExportStatuses = append(plan.ExportStatuses, reconcile.ExportStatus{
			Cluster: c.ID, Namespace: p.desired.Namespace, Name: p.name, Conditions: p.desired.Status.Conditions,
		})
		action := reconcile.ActionUnchanged
		if p.action != apply.Unchanged {
			action = reconcile.ActionUpdate
		}
		plan.Changes = append(plan.Changes, reconcile.Change{
			Cluster: c.ID, Action: action, Kind: reconcile.KindServiceExportStatus, Namespace: p.desired.Namespace, Name: p.name,
		})
	}
	return plan
}

// writeExport writes one export's spec (the label kubectl mcs owns; its
// status is the executor's), nothing for an unchanged one, and returns the
// export to print: as the server holds it, with the status to be written.
func (o *Request) writeExport(ctx context.Context, w *apply.Writer, c *clusterset.Cluster, gvr schema.GroupVersionResource, p exportPlan) (*apply.Result, *unstructured.Unstructured, error) {
	gvk := gvr.GroupVersion().WithKind("ServiceExport")
	obj, err := apply.ToUnstructured(p.desired, gvk)
	if err != nil {
		return nil, nil, err
	}
	result := apply.Result{Cluster: c.Context, Kind: "ServiceExport", Group: gvr.Group, Namespace: o.Namespace, Name: p.name, Action: p.action}
	if p.action != apply.Unchanged {
		// Only what kubectl mcs owns: the object itself and its label. A
		// hand-made export's spec stays its author's.
		owned := &unstructured.Unstructured{}
		owned.SetGroupVersionKind(gvk)
		owned.SetNamespace(o.Namespace)
		owned.SetName(p.name)
		owned.SetLabels(map[string]string{reconcile.ManagedByLabel: reconcile.FieldManager})
		if obj, err = w.Apply(ctx, gvr, owned); err != nil {
			return nil, nil, c.Errorf("applying ServiceExport %s/%s: %w", o.Namespace, p.name, err)
		}
		// A created export only has its generation now: observe it, or
		// the next run finds Valid's observedGeneration stale and
		// writes the export again for nothing.
		if obj != nil && obj.GetGeneration() != p.desired.Generation {
			if valid := meta.FindStatusCondition(p.desired.Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid)); valid != nil {
				valid.ObservedGeneration = obj.GetGeneration()
			}
		}
		if o.DryRun != cmdutil.DryRunClient && obj != nil {
			// As the server holds it, with the status written next.
			desired, err := apply.ToUnstructured(p.desired, gvk)
			if err != nil {
				return nil, nil, err
			}
			obj.Object["status"] = desired.Object["status"]
		} else if obj, err = apply.ToUnstructured(p.desired, gvk); err != nil {
			return nil, nil, err
		}
	}
	return &result, obj, nil
}

// plan renders the ServiceExport for one Service: ours (labelled), keeping
// an existing one's spec and other conditions, with a fresh Valid condition.
func (o *Request) plan(c *clusterset.Cluster, name string, svc *corev1.Service, existing *mcsv1beta1.ServiceExport, now metav1.Time) exportPlan {
	desired := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace}}
	action := apply.Created
	if existing != nil {
		desired = existing.DeepCopy()
		action = apply.Unchanged
	}
	if desired.Labels[reconcile.ManagedByLabel] != reconcile.FieldManager {
		if desired.Labels == nil {
			desired.Labels = map[string]string{}
		}
		desired.Labels[reconcile.ManagedByLabel] = reconcile.FieldManager
		if existing != nil {
			action = apply.Configured
		}
	}
	valid := reconcile.ValidCondition(c.ID, desired, svc)
	valid.ObservedGeneration = desired.Generation
	valid.LastTransitionTime = now
	if meta.SetStatusCondition(&desired.Status.Conditions, valid) && action == apply.Unchanged {
		action = apply.Configured
	}
	return exportPlan{name: name, existing: existing, desired: desired, action: action}
}

// services returns the Services to export by name (nil where missing).
func (o *Request) services(ctx context.Context) (map[string]*corev1.Service, error) {
	c := o.Cluster
	out := map[string]*corev1.Service{}
	if o.All {
		list, err := c.Kube.CoreV1().Services(o.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, c.Errorf("listing Services in namespace %s: %w", o.Namespace, err)
		}
		for i := range list.Items {
			svc := &list.Items[i]
			if why, _ := reconcile.NotExportable(svc); why != "" {
				fmt.Fprintf(o.Warnings, "Warning: %s: skipping: %s\n", c.Context, why)
				continue
			}
			out[svc.Name] = svc
			o.Services = append(o.Services, svc.Name)
		}
		if len(o.Services) == 0 {
			return nil, c.Errorf("namespace %s has no Service that can be exported", o.Namespace)
		}
		return out, nil
	}
	// The named Services at once: one round trip.
	got := make([]*corev1.Service, len(o.Services))
	errs := make([]error, len(o.Services))
	var wg sync.WaitGroup
	for i, name := range o.Services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.Kube.CoreV1().Services(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		}()
	}
	wg.Wait()
	for i, name := range o.Services {
		switch err := errs[i]; {
		case apierrors.IsNotFound(err):
			out[name] = nil
		case err != nil:
			return nil, c.Errorf("reading Service %s/%s: %w", o.Namespace, name, err)
		default:
			out[name] = got[i]
		}
	}
	return out, nil
}

// missingService explains a Service that is not there: most often it is the
// namespace that is missing (namespace sameness), which the fix names.
func (o *Request) missingService(ctx context.Context, name string) error {
	c := o.Cluster
	_, err := c.Kube.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return c.Errorf("namespace %s does not exist, so neither does Service %s/%s (check -n/--context, or create the namespace and the Service first: kubectl create namespace %s --context %s)",
			o.Namespace, o.Namespace, name, o.Namespace, c.Context)
	}
	return c.Errorf("Service %s/%s not found (create it first, check -n/--context, or pass --allow-missing-service to export it ahead of its Service)", o.Namespace, name)
}

// listExports reads the namespace's ServiceExports, by name.
func listExports(ctx context.Context, c *clusterset.Cluster, namespace string) (map[string]*mcsv1beta1.ServiceExport, error) {
	gvr, err := c.MCSResource(clusterset.ServiceExports)
	if err != nil {
		return nil, err
	}
	list, err := c.Dynamic.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Errorf("listing ServiceExports in namespace %s: %w", namespace, err)
	}
	out := map[string]*mcsv1beta1.ServiceExport{}
	for i := range list.Items {
		export := &mcsv1beta1.ServiceExport{}
		if err := apply.FromUnstructured(&list.Items[i], export); err != nil {
			return nil, c.Errorf("decoding ServiceExport %s/%s: %w", namespace, list.Items[i].GetName(), err)
		}
		out[export.Name] = export
	}
	return out, nil
}
