package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// Executor applies a reconcile.Plan: each change in the cluster it names.
// Clusters proceed independently and at the same time; within one cluster
// up to MaxInFlight writes are in flight together, and a write waits only
// for the writes it depends on (see Run).
type Executor struct {
	// Clusters by cluster id: every consumer and source the plan names.
	Clusters map[string]*clusterset.Cluster
	DryRun   cmdutil.DryRunStrategy
	// MaxInFlight bounds the write requests in flight to one cluster at a
	// time (0: DefaultMaxWritesInFlight).
	MaxInFlight int
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

// DefaultMaxWritesInFlight is the default bound on the write requests in
// flight to one cluster. A first import of 20 services from 6 clusters is
// about 180 writes per consumer: one at a time that is 180 round trips, 32
// at a time about 6. 32 stays below the seats API Priority and Fairness
// gives a default server's global-default priority level (about 49 of
// 600), so one sync does not queue behind itself, and far below the
// HTTP/2 streams a connection carries (250 on a Go server), so the
// requests share the one connection client-go keeps per cluster.
const DefaultMaxWritesInFlight = 32

// MaxWritesInFlightLimit is the largest bound accepted: beyond the 250
// concurrent streams of one HTTP/2 connection, requests only queue on the
// client.
const MaxWritesInFlightLimit = 250

func (x *Executor) maxInFlight() int {
	if x.MaxInFlight > 0 {
		return x.MaxInFlight
	}
	return DefaultMaxWritesInFlight
}

// Outcome is what became of one change of a Run.
type Outcome struct {
	Change reconcile.Change
	// Sent says whether the change was carried out, with or without a
	// request, successfully or not; false when its cluster stopped before
	// it started.
	Sent bool
	// Result is its report line (nil if it failed or was not sent).
	Result *Result
	// Applied is the consumer object as applied (for -o), if any.
	Applied *unstructured.Unstructured
	Err     error
}

// Execute writes every change of changes (a part of plan.Changes, in its
// order) that is not "unchanged", as Run does, and returns one result per
// object (a ServiceImport and its status are one) in the order of changes,
// plus the consumer objects as applied (for -o), and Collect's error.
func (x *Executor) Execute(ctx context.Context, plan reconcile.Plan, changes []reconcile.Change) ([]Result, []Applied, error) {
	return x.Collect(x.Run(ctx, plan, changes))
}

// Run carries out changes (a part of plan.Changes, in its order) and
// returns one Outcome per change, in the same order whatever order the
// answers came back in.
//
// Every cluster runs on its own: a slow or failing cluster never holds
// another's writes. Within a cluster, changes that need no request
// (unchanged objects, everything under a client dry run) are settled
// first; then up to MaxInFlight requests are in flight together, started
// in the order of changes, each once its dependencies are written:
//
//   - a ServiceImport's spec after its derived Service (a ClusterSetIP
//     import's IPs are that Service's cluster IP);
//   - a ServiceImport's status after its spec (the status subresource
//     needs the object);
//   - deletions after every other write of the cluster, and from the
//     leaves up: EndpointSlices, then Services, then ServiceImports; so a
//     replaced slice's successor exists before it goes, and an interrupted
//     run never leaves an import's slices without their import.
//
// The first failed request of a cluster stops that cluster: nothing more
// is started there, the requests in flight finish and are reported, and
// the other clusters go on to the end.
func (x *Executor) Run(ctx context.Context, plan reconcile.Plan, changes []reconcile.Change) []Outcome {
	desired := indexDesired(plan)
	outs := make([]Outcome, len(changes))
	byCluster := map[string][]int{}
	var order []string
	for i, ch := range changes {
		outs[i].Change = ch
		if _, ok := byCluster[ch.Cluster]; !ok {
			order = append(order, ch.Cluster)
		}
		byCluster[ch.Cluster] = append(byCluster[ch.Cluster], i)
	}
	var wg sync.WaitGroup
	for _, id := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.runCluster(ctx, desired, changes, byCluster[id], outs)
		}()
	}
	wg.Wait()
	return outs
}

// Deletion stages: a deletion starts once every change of a lower stage is
// done.
const (
	stageWrite = iota
	stageDeleteSlices
	stageDeleteServices
	stageDeleteImports
	stages
)

func stageOf(ch reconcile.Change) int {
	if ch.Action != reconcile.ActionDelete {
		return stageWrite
	}
	switch ch.Kind {
	case reconcile.KindEndpointSlice:
		return stageDeleteSlices
	case reconcile.KindService:
		return stageDeleteServices
	}
	return stageDeleteImports
}

// runCluster carries out the changes at indexes (all of one cluster),
// filling outs.
func (x *Executor) runCluster(ctx context.Context, desired desiredObjects, changes []reconcile.Change, indexes []int, outs []Outcome) {
	settle := func(i int) {
		r, u, err := x.executeOne(ctx, desired, changes[i])
		outs[i] = Outcome{Change: changes[i], Sent: true, Result: r, Applied: u, Err: err}
	}
	// No request: settled in order, before any write; a failure here (the
	// cluster serves no MCS API, say) stops the cluster like a failed write.
	var requests []int
	for _, i := range indexes {
		if changes[i].Action == reconcile.ActionUnchanged || x.DryRun == cmdutil.DryRunClient {
			settle(i)
			if outs[i].Err != nil {
				return
			}
			continue
		}
		requests = append(requests, i)
	}
	if len(requests) == 0 {
		return
	}

	// Dependencies by position in requests.
	position := map[string]int{}
	key := func(kind, ns, name string) string { return kind + "/" + ns + "/" + name }
	for p, i := range requests {
		ch := changes[i]
		if ch.Action != reconcile.ActionDelete {
			position[key(ch.Kind, ch.Namespace, ch.Name)] = p
		}
	}
	after := make([]int, len(requests)) // the position waited for, or -1
	left := [stages]int{}               // changes not yet done, per stage
	for p, i := range requests {
		ch := changes[i]
		after[p] = -1
		var dep string
		switch {
		case ch.Action == reconcile.ActionDelete:
		case ch.Kind == reconcile.KindServiceImport:
			dep = key(reconcile.KindService, ch.Namespace, reconcile.DerivedServiceName(ch.Name))
		case ch.Kind == reconcile.KindServiceImportStatus:
			dep = key(reconcile.KindServiceImport, ch.Namespace, ch.Name)
		}
		if q, ok := position[dep]; ok && dep != "" {
			after[p] = q
		}
		left[stageOf(ch)]++
	}
	// Owned by the loop below: the goroutines only write their own outs[i].
	started, done := make([]bool, len(requests)), make([]bool, len(requests))
	ready := func(p int) bool {
		for s := range stageOf(changes[requests[p]]) {
			if left[s] > 0 {
				return false
			}
		}
		return after[p] < 0 || done[after[p]]
	}

	finished := make(chan int)
	inFlight, stopped := 0, false
	for {
		for p := 0; p < len(requests) && !stopped && inFlight < x.maxInFlight(); p++ {
			if started[p] || !ready(p) {
				continue
			}
			started[p] = true
			inFlight++
			go func() {
				i := requests[p]
				r, u, err := x.executeOne(ctx, desired, changes[i])
				outs[i] = Outcome{Change: changes[i], Sent: true, Result: r, Applied: u, Err: err}
				finished <- p
			}()
		}
		if inFlight == 0 {
			return
		}
		p := <-finished
		inFlight--
		i := requests[p]
		left[stageOf(changes[i])]--
		if outs[i].Err != nil {
			stopped = true
			continue
		}
		done[p] = true
	}
}

// Collect turns the outcomes of a Run into report lines, one per object
// in the order of outs, the consumer objects as applied, and an error
// naming every cluster that failed: its first failed write in the order of
// outs, and how many of its other writes failed or were not sent. Every
// change made has its line, in a failed cluster too.
func (x *Executor) Collect(outs []Outcome) ([]Result, []Applied, error) {
	var results resultList
	var applied appliedList
	type failure struct {
		first        error
		failed, left int
	}
	failures := map[string]*failure{}
	var failedOrder []string
	for _, o := range outs {
		if o.Result != nil {
			results.add(*o.Result)
		}
		if o.Applied != nil {
			applied.add(Applied{ClusterID: o.Change.Cluster, Context: o.Result.Cluster, Object: o.Applied})
		}
		if o.Err != nil {
			f := failures[o.Change.Cluster]
			if f == nil {
				f = &failure{first: o.Err}
				failures[o.Change.Cluster] = f
				failedOrder = append(failedOrder, o.Change.Cluster)
			} else {
				f.failed++
			}
		}
	}
	if len(failures) == 0 {
		return results.list, applied.list, nil
	}
	for _, o := range outs {
		if f := failures[o.Change.Cluster]; f != nil && !o.Sent {
			f.left++
		}
	}
	errs := make([]error, len(failedOrder))
	for n, id := range failedOrder {
		f := failures[id]
		errs[n] = f.first
		if f.failed > 0 || f.left > 0 {
			name := id
			if c := x.Clusters[id]; c != nil {
				name = c.Context
			}
			var more []string
			if f.failed > 0 {
				more = append(more, fmt.Sprintf("%d more writes failed", f.failed))
			}
			if f.left > 0 {
				more = append(more, fmt.Sprintf("%d writes were not sent", f.left))
			}
			errs[n] = fmt.Errorf("%w\n  in %s %s; the writes listed were made, and a re-run after the fix converges",
				f.first, name, strings.Join(more, " and "))
		}
	}
	return results.list, applied.list, errors.Join(errs...)
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
	case reconcile.KindServiceExportStatus, reconcile.KindServiceImportStatus:
		status := u
		if ch.Kind == reconcile.KindServiceImportStatus {
			status = &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(),
				"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()},
				"status":   u.Object["status"],
			}}
		}
		out, err := w.ApplyStatus(ctx, gvr, status)
		if x.DryRun == cmdutil.DryRunServer && apierrors.IsNotFound(err) {
			// A new import or export: its create was only simulated, so
			// the status subresource has no object to apply to. Shown as
			// rendered.
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
