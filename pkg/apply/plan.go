package apply

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

var (
	servicesGVR       = corev1.SchemeGroupVersion.WithResource("services")
	endpointSlicesGVR = discoveryv1.SchemeGroupVersion.WithResource("endpointslices")
)

// Executor applies a reconcile.Plan: the consumer's objects, then the
// export conditions in each source, then deletions, in the plan's order.
type Executor struct {
	Consumer *clusterset.Cluster
	// Sources by cluster id.
	Sources map[string]*clusterset.Cluster
	DryRun  cmdutil.DryRunStrategy
}

// maxWritesInFlight bounds the concurrent writes of one Execute: the writes
// of one bucket of the plan are independent objects, and one at a time a
// large import spent its time waiting on round trips.
const maxWritesInFlight = 16

// Execute writes every change that is not "unchanged" and returns one
// result per change, plus the consumer objects as applied (for -o).
// The plan's buckets (ServiceImports, Services, EndpointSlices, export
// statuses, then each kind of deletion) run in the plan's order, one after
// the other; the changes within a bucket run concurrently. On an error the
// bucket finishes, the results written so far are returned with the first
// error in plan order, and no later bucket starts.
func (x *Executor) Execute(ctx context.Context, plan reconcile.Plan) ([]Result, []*unstructured.Unstructured, error) {
	importsGVR, err := x.Consumer.MCSResource(clusterset.ServiceImports)
	if err != nil {
		return nil, nil, err
	}
	desired := indexDesired(plan)
	type outcome struct {
		result  *Result
		applied *unstructured.Unstructured
		err     error
	}
	outs := make([]outcome, len(plan.Changes))
	bucket := func(ch reconcile.Change) string {
		return fmt.Sprintf("%s/%t", ch.Kind, ch.Action == reconcile.ActionDelete)
	}
	collect := func(end int) ([]Result, []*unstructured.Unstructured, error) {
		var results []Result
		var applied []*unstructured.Unstructured
		for _, o := range outs[:end] {
			if o.result != nil {
				results = append(results, *o.result)
			}
			if o.applied != nil {
				applied = append(applied, o.applied)
			}
		}
		for _, o := range outs[:end] {
			if o.err != nil {
				return results, applied, o.err
			}
		}
		return results, applied, nil
	}
	sem := make(chan struct{}, maxWritesInFlight)
	for start := 0; start < len(plan.Changes); {
		end := start + 1
		for end < len(plan.Changes) && bucket(plan.Changes[end]) == bucket(plan.Changes[start]) {
			end++
		}
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			ch := plan.Changes[i]
			if ch.Action == reconcile.ActionUnchanged || x.DryRun == cmdutil.DryRunClient {
				// No request: rendered in place.
				r, u, err := x.executeOne(ctx, importsGVR, desired, ch)
				outs[i] = outcome{r, u, err}
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, u, err := x.executeOne(ctx, importsGVR, desired, ch)
				outs[i] = outcome{r, u, err}
			}()
		}
		wg.Wait()
		for i := start; i < end; i++ {
			if outs[i].err != nil {
				return collect(end)
			}
		}
		start = end
	}
	return collect(len(outs))
}

// executeOne writes one change; it returns its result (nil if it failed)
// and, for consumer objects, the object as applied.
func (x *Executor) executeOne(ctx context.Context, importsGVR schema.GroupVersionResource, desired desiredObjects, ch reconcile.Change) (*Result, *unstructured.Unstructured, error) {
	var err error
	cluster := x.Consumer
	if ch.Kind == reconcile.KindServiceExportStatus {
		cluster = x.Sources[ch.Cluster]
		if cluster == nil {
			return nil, nil, fmt.Errorf("plan names unknown source cluster %q", ch.Cluster)
		}
	}
	w := &Writer{Client: cluster.Dynamic, FieldManager: reconcile.FieldManager, DryRun: x.DryRun}
	result := Result{Cluster: cluster.Context, Kind: ch.Kind, Namespace: ch.Namespace, Name: ch.Name, Action: resultAction(ch.Action)}
	var gvr schema.GroupVersionResource
	var obj runtime.Object
	switch ch.Kind {
	case reconcile.KindServiceImport:
		gvr, obj = importsGVR, desired.imports[key(ch)]
	case reconcile.KindService:
		gvr, obj = servicesGVR, desired.services[key(ch)]
	case reconcile.KindEndpointSlice:
		gvr, obj = endpointSlicesGVR, desired.slices[key(ch)]
	case reconcile.KindServiceExportStatus:
		if gvr, err = cluster.MCSResource(clusterset.ServiceExports); err != nil {
			return nil, nil, err
		}
		result.Kind, result.Subject = "ServiceExport", "status"
		obj = desired.exports[ch.Cluster+"/"+key(ch)]
	default:
		return nil, nil, fmt.Errorf("plan has a change of unknown kind %q", ch.Kind)
	}
	result.Group = gvr.Group
	if ch.Action == reconcile.ActionDelete {
		if err := w.Delete(ctx, gvr, ch.Namespace, ch.Name, ""); err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, cluster.Errorf("deleting %s %s/%s: %w", ch.Kind, ch.Namespace, ch.Name, err)
		}
		return &result, nil, nil
	}
	if obj == nil {
		return nil, nil, fmt.Errorf("plan changes %s but renders no object for it", ch)
	}
	u, err := x.write(ctx, w, gvr, obj, ch)
	if err != nil {
		return nil, nil, cluster.Errorf("writing %s %s/%s: %w", ch.Kind, ch.Namespace, ch.Name, err)
	}
	if ch.Kind == reconcile.KindServiceExportStatus {
		u = nil
	}
	return &result, u, nil
}

// write applies one object. Unchanged objects are not sent, but returned
// as rendered so -o shows the complete desired state.
func (x *Executor) write(ctx context.Context, w *Writer, gvr schema.GroupVersionResource, obj runtime.Object, ch reconcile.Change) (*unstructured.Unstructured, error) {
	u, err := ToUnstructured(obj, gvr.GroupVersion().WithKind(kindOf(ch)))
	if err != nil {
		return nil, err
	}
	if ch.Action == reconcile.ActionUnchanged {
		return u, nil
	}
	if ch.Kind == reconcile.KindServiceExportStatus {
		return w.ApplyStatus(ctx, gvr, u)
	}
	if ch.Action == reconcile.ActionReplace {
		// A Service cannot switch between headless and ClusterIP in place.
		if err := w.Delete(ctx, gvr, ch.Namespace, ch.Name, ""); err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	status, hasStatus := u.Object["status"]
	spec := u.DeepCopy()
	delete(spec.Object, "status")
	out, err := w.Apply(ctx, gvr, spec)
	if err != nil {
		return nil, err
	}
	if ch.Kind == reconcile.KindServiceImport && hasStatus {
		withStatus := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(),
			"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()},
			"status":   status,
		}}
		if out, err = w.ApplyStatus(ctx, gvr, withStatus); err != nil {
			return nil, err
		}
		if x.DryRun == cmdutil.DryRunClient {
			return u, nil
		}
	}
	return out, nil
}

func kindOf(ch reconcile.Change) string {
	if ch.Kind == reconcile.KindServiceExportStatus {
		return "ServiceExport"
	}
	return ch.Kind
}

func resultAction(a reconcile.Action) Action {
	switch a {
	case reconcile.ActionCreate:
		return Created
	case reconcile.ActionDelete:
		return Deleted
	case reconcile.ActionUnchanged:
		return Unchanged
	case reconcile.ActionReplace:
		return Replaced
	}
	return Configured
}

func key(ch reconcile.Change) string { return ch.Namespace + "/" + ch.Name }

type desiredObjects struct {
	imports  map[string]*mcsv1beta1.ServiceImport
	services map[string]*corev1.Service
	slices   map[string]*discoveryv1.EndpointSlice
	exports  map[string]*mcsv1beta1.ServiceExport
}

func indexDesired(plan reconcile.Plan) desiredObjects {
	d := desiredObjects{
		imports:  map[string]*mcsv1beta1.ServiceImport{},
		services: map[string]*corev1.Service{},
		slices:   map[string]*discoveryv1.EndpointSlice{},
		exports:  map[string]*mcsv1beta1.ServiceExport{},
	}
	for i := range plan.Imports {
		o := &plan.Imports[i]
		d.imports[o.Namespace+"/"+o.Name] = o
	}
	for i := range plan.Services {
		o := &plan.Services[i]
		d.services[o.Namespace+"/"+o.Name] = o
	}
	for i := range plan.EndpointSlices {
		o := &plan.EndpointSlices[i]
		d.slices[o.Namespace+"/"+o.Name] = o
	}
	for _, es := range plan.ExportStatuses {
		d.exports[es.Cluster+"/"+es.Namespace+"/"+es.Name] = &mcsv1beta1.ServiceExport{
			ObjectMeta: metaOf(es.Namespace, es.Name),
			Status:     mcsv1beta1.ServiceExportStatus{Conditions: es.Conditions},
		}
	}
	return d
}
