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

// Executor applies a reconcile.Plan: each change in the cluster it names,
// in the plan's order.
type Executor struct {
	// Clusters by cluster id: every consumer and source the plan names.
	Clusters map[string]*clusterset.Cluster
	DryRun   cmdutil.DryRunStrategy
	// Written, if set, is called with every object a write request
	// returned (not for dry runs or deletes), by cluster id: the watch mode
	// reads its caches through what it wrote until they catch up.
	Written func(clusterID string, obj *unstructured.Unstructured)

	// confirmed are the permissions Preflight already found granted, by
	// cluster id, namespace and permission: a long-lived executor (the
	// watch mode) asks each cluster once, not at every sync.
	mu        sync.Mutex
	confirmed map[string]bool
}

// maxWritesInFlight bounds the concurrent writes of one Execute: the writes
// of one bucket of the plan are independent objects, and one at a time a
// large import spent its time waiting on round trips.
const maxWritesInFlight = 16

// Execute writes every change of changes (a part of plan.Changes, in its
// order) that is not "unchanged", and returns one result per object (a
// ServiceImport and its status are one), plus the consumer objects as
// applied (for -o). Changes of one kind run concurrently, kinds one after
// the other; on an error the bucket finishes, the results written so far
// are returned with the first error in plan order, and no later bucket
// starts.
func (x *Executor) Execute(ctx context.Context, plan reconcile.Plan, changes []reconcile.Change) ([]Result, []Applied, error) {
	desired := indexDesired(plan)
	type outcome struct {
		result  *Result
		applied *unstructured.Unstructured
		err     error
	}
	outs := make([]outcome, len(changes))
	bucket := func(ch reconcile.Change) string {
		return fmt.Sprintf("%s/%t", ch.Kind, ch.Action == reconcile.ActionDelete)
	}
	collect := func(end int) ([]Result, []Applied, error) {
		var results resultList
		var applied appliedList
		for i, o := range outs[:end] {
			if o.result != nil {
				results.add(*o.result)
			}
			if o.applied != nil {
				applied.add(Applied{ClusterID: changes[i].Cluster, Context: o.result.Cluster, Object: o.applied})
			}
		}
		for _, o := range outs[:end] {
			if o.err != nil {
				return results.list, applied.list, o.err
			}
		}
		return results.list, applied.list, nil
	}
	sem := make(chan struct{}, maxWritesInFlight)
	for start := 0; start < len(changes); {
		end := start + 1
		for end < len(changes) && bucket(changes[end]) == bucket(changes[start]) {
			end++
		}
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			ch := changes[i]
			if ch.Action == reconcile.ActionUnchanged || x.DryRun == cmdutil.DryRunClient {
				// No request: rendered in place.
				r, u, err := x.executeOne(ctx, desired, ch)
				outs[i] = outcome{r, u, err}
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, u, err := x.executeOne(ctx, desired, ch)
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

// resultList has one result per object, in the order first seen: the
// status of a ServiceImport is folded into the import's own line, as kubectl
// reports one line per object (created wins over configured, configured
// over unchanged).
type resultList struct {
	list  []Result
	index map[Result]int // by the result with its Action cleared
}

func (l *resultList) add(r Result) {
	k := r
	k.Action = ""
	if l.index == nil {
		l.index = map[Result]int{}
	}
	i, ok := l.index[k]
	if !ok {
		l.index[k] = len(l.list)
		l.list = append(l.list, r)
		return
	}
	rank := map[Action]int{Unchanged: 0, Configured: 1, Replaced: 2, Created: 3, Deleted: 4}
	if rank[r.Action] > rank[l.list[i].Action] {
		l.list[i].Action = r.Action
	}
}

// Applied is a consumer object as the API server returned it (or, for an
// unchanged object or a client dry run, as rendered).
type Applied struct {
	// ClusterID is the cluster's MCS id, Context its kubeconfig context.
	ClusterID, Context string
	Object             *unstructured.Unstructured
}

// appliedList keeps the last response for each object: a ServiceImport's
// status write returns the whole object, newer than its spec write's.
type appliedList struct {
	list  []Applied
	index map[[4]string]int // cluster id, kind, namespace, name
}

func (l *appliedList) add(a Applied) {
	k := [4]string{a.ClusterID, a.Object.GetKind(), a.Object.GetNamespace(), a.Object.GetName()}
	if l.index == nil {
		l.index = map[[4]string]int{}
	}
	if i, ok := l.index[k]; ok {
		l.list[i] = a
		return
	}
	l.index[k] = len(l.list)
	l.list = append(l.list, a)
}

// executeOne writes one change; it returns its result (nil if it failed)
// and, for consumer objects, the object as applied.
func (x *Executor) executeOne(ctx context.Context, desired desiredObjects, ch reconcile.Change) (*Result, *unstructured.Unstructured, error) {
	cluster := x.Clusters[ch.Cluster]
	if cluster == nil {
		return nil, nil, fmt.Errorf("plan names unknown cluster %q", ch.Cluster)
	}
	w := &Writer{Client: cluster.Dynamic, FieldManager: reconcile.FieldManager, DryRun: x.DryRun}
	result := Result{Cluster: cluster.Context, Kind: kindOf(ch), Namespace: ch.Namespace, Name: ch.Name, Action: resultAction(ch.Action)}
	var gvr schema.GroupVersionResource
	var obj runtime.Object
	var err error
	k := objectRef(ch.Cluster, ch.Namespace, ch.Name)
	switch ch.Kind {
	case reconcile.KindServiceImport, reconcile.KindServiceImportStatus:
		if gvr, err = cluster.MCSResource(clusterset.ServiceImports); err != nil {
			return nil, nil, err
		}
		obj = desired.imports[k]
	case reconcile.KindService:
		gvr, obj = servicesGVR, desired.services[k]
	case reconcile.KindEndpointSlice:
		gvr, obj = endpointSlicesGVR, desired.slices[k]
	case reconcile.KindServiceExportStatus:
		if gvr, err = cluster.MCSResource(clusterset.ServiceExports); err != nil {
			return nil, nil, err
		}
		result.Subject = "status"
		obj = desired.exports[k]
	default:
		return nil, nil, fmt.Errorf("plan has a change of unknown kind %q", ch.Kind)
	}
	result.Group = gvr.Group
	if ch.Kind == reconcile.KindServiceImportStatus && ch.Action != reconcile.ActionUnchanged {
		// Reported as a change of the import itself.
		result.Action = Configured
	}
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
	if x.Written != nil && x.DryRun == cmdutil.DryRunNone && ch.Action != reconcile.ActionUnchanged && u != nil && u.GetResourceVersion() != "" {
		x.Written(ch.Cluster, u)
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
	switch ch.Kind {
	case reconcile.KindServiceExportStatus:
		return w.ApplyStatus(ctx, gvr, u)
	case reconcile.KindServiceImportStatus:
		withStatus := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(),
			"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()},
			"status":   u.Object["status"],
		}}
		out, err := w.ApplyStatus(ctx, gvr, withStatus)
		if x.DryRun == cmdutil.DryRunServer && apierrors.IsNotFound(err) {
			// A new import: its create was only simulated, so the status
			// subresource has no object to apply to. Shown as rendered.
			return u, nil
		}
		if err != nil || x.DryRun == cmdutil.DryRunClient {
			return u, err
		}
		return out, nil
	}
	if ch.Action == reconcile.ActionReplace {
		// A Service cannot switch between headless and ClusterIP in place.
		if err := w.Delete(ctx, gvr, ch.Namespace, ch.Name, ""); err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	spec := u.DeepCopy()
	delete(spec.Object, "status")
	out, err := w.Apply(ctx, gvr, spec)
	if err != nil {
		return nil, err
	}
	if x.DryRun == cmdutil.DryRunClient {
		return u, nil
	}
	return out, nil
}

func kindOf(ch reconcile.Change) string {
	switch ch.Kind {
	case reconcile.KindServiceExportStatus:
		return "ServiceExport"
	case reconcile.KindServiceImportStatus:
		return reconcile.KindServiceImport
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

func objectRef(cluster, namespace, name string) string { return cluster + "/" + namespace + "/" + name }

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
	for ci := range plan.Consumers {
		c := &plan.Consumers[ci]
		for i := range c.Imports {
			o := &c.Imports[i]
			d.imports[objectRef(c.Cluster, o.Namespace, o.Name)] = o
		}
		for i := range c.Services {
			o := &c.Services[i]
			d.services[objectRef(c.Cluster, o.Namespace, o.Name)] = o
		}
		for i := range c.EndpointSlices {
			o := &c.EndpointSlices[i]
			d.slices[objectRef(c.Cluster, o.Namespace, o.Name)] = o
		}
	}
	for _, es := range plan.ExportStatuses {
		d.exports[objectRef(es.Cluster, es.Namespace, es.Name)] = &mcsv1beta1.ServiceExport{
			ObjectMeta: metaOf(es.Namespace, es.Name),
			Status:     mcsv1beta1.ServiceExportStatus{Conditions: es.Conditions},
		}
	}
	return d
}
