// Package engine performs one sync of a clusterset, the same way for every
// verb that writes (import, sync, and both --watch modes): read a snapshot
// (live lists, or informer caches), reconcile it with the pure library,
// check permissions, then write, and report. Each object is written at
// most once per sync, and only when it changes.
//
// The writes: every cluster proceeds on its own, at the same time as the
// others. In one cluster: the namespaces it lacks (--create-namespace),
// then its derived Services, then, with the cluster IPs its API server
// allocated filled into the snapshot and the plan computed again, the
// rest (ServiceImports and their status, EndpointSlices, ServiceExport
// status, then deletions from the leaves up). Within each step up to
// MaxWritesInFlight requests are in flight together (apply.Executor.Run
// says which write waits for which). The report lists the writes in the
// plan's order, whatever order the answers came in.
//
// When a write fails, its cluster starts nothing more; its writes in
// flight finish. The other clusters finish all their writes. The report
// lists every write that was made, in every cluster, and the error names
// each cluster that failed with its first failed object and how many of
// its writes were not sent. Nothing is undone: every write leaves its
// object in a state a re-run builds on, and a re-run converges.
package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Reader reads what one sync needs from one cluster: live lists
// (snapshot.Live) or informer caches (the watch mode).
type Reader interface {
	ReadSource(ctx context.Context, c *clusterset.Cluster, scope snapshot.Scope) (reconcile.Source, error)
	ReadConsumer(ctx context.Context, c *clusterset.Cluster, scope snapshot.Scope) (reconcile.Consumer, error)
}

// MissingNamespaces says what a sync does where an exported namespace does
// not exist in a consumer.
type MissingNamespaces int

const (
	// SkipMissingNamespaces imports nothing there and reports it (KEP-1645:
	// a service is imported where its namespace exists).
	SkipMissingNamespaces MissingNamespaces = iota
	// FailOnMissingNamespaces refuses the sync, writing nothing: the user
	// named the consumer and expects the import there.
	FailOnMissingNamespaces
	// CreateMissingNamespaces creates them (--create-namespace).
	CreateMissingNamespaces
)

// Engine syncs a clusterset: the exports of Sources into every cluster of
// Consumers. A cluster may be both (KEP-1645: the exporting clusters import
// too).
type Engine struct {
	Sources   []*clusterset.Cluster
	Consumers []*clusterset.Cluster
	// Reader is where the snapshot comes from (default snapshot.Live).
	Reader            Reader
	DryRun            cmdutil.DryRunStrategy
	MissingNamespaces MissingNamespaces
	// Now is the clock handed to the library (default time.Now).
	Now func() time.Time
	// Written, if set, sees every object as a write request returned it
	// (apply.Executor.Written).
	Written func(clusterID string, obj *unstructured.Unstructured)
	// MaxWritesInFlight bounds the write requests in flight to each
	// cluster (0: apply.DefaultMaxWritesInFlight).
	MaxWritesInFlight int

	once     sync.Once
	executor *apply.Executor
}

// Unreachable is a cluster a sync could not read. As a source its endpoints
// already imported are kept; as a consumer it was not synced.
type Unreachable struct {
	Cluster *clusterset.Cluster
	Err     error
}

// Skipped is a consumer that lacks an exported namespace: nothing was
// imported there.
type Skipped struct {
	Cluster   *clusterset.Cluster
	Namespace string
	Services  []string
}

// Fix is the command that makes the namespace exist.
func (s Skipped) Fix() string {
	return fmt.Sprintf("kubectl create namespace %s --context %s", s.Namespace, s.Cluster.Context)
}

// Report is what one sync did.
type Report struct {
	// Plan is the plan that was applied (after the ClusterSetIP fill-in).
	Plan reconcile.Plan
	// Results has one line per object, written or not.
	Results []apply.Result
	// Objects are the consumer objects as applied (for -o).
	Objects []apply.Applied
	// Namespaces lists the namespaces created (CreateMissingNamespaces).
	Namespaces  []apply.Result
	Unreachable []Unreachable
	Skipped     []Skipped
}

// UnreachableError is returned by a sync that went on without some
// clusters.
type UnreachableError struct{ Clusters []Unreachable }

func (e *UnreachableError) Error() string {
	names := make([]string, len(e.Clusters))
	errs := make([]error, len(e.Clusters))
	for i, u := range e.Clusters {
		names[i], errs[i] = u.Cluster.Context, u.Err
	}
	return fmt.Sprintf("synced without %s: %v; their endpoints already imported were kept", strings.Join(names, ", "), errors.Join(errs...))
}

func (e *Engine) init() {
	e.once.Do(func() {
		if e.Reader == nil {
			e.Reader = snapshot.Live{}
		}
		if e.Now == nil {
			e.Now = time.Now
		}
		clusters := map[string]*clusterset.Cluster{}
		for _, c := range e.clusters() {
			clusters[c.ID] = c
		}
		e.executor = &apply.Executor{Clusters: clusters, DryRun: e.DryRun, Written: e.Written, MaxInFlight: e.MaxWritesInFlight}
	})
}

// clusters lists every cluster once: consumers first, then the sources
// that are not consumers.
func (e *Engine) clusters() []*clusterset.Cluster {
	out := slices.Clone(e.Consumers)
	for _, s := range e.Sources {
		if !slices.ContainsFunc(out, func(c *clusterset.Cluster) bool { return c.ID == s.ID }) {
			out = append(out, s)
		}
	}
	return out
}

// Sync performs one sync of the scope. Nothing is written when the plan has
// a Problem, when a cluster answers a read with an error other than being
// unreachable, or when a namespace is missing under FailOnMissingNamespaces.
// A sync that went on without unreachable clusters returns what it wrote
// and an *UnreachableError.
func (e *Engine) Sync(ctx context.Context, scope snapshot.Scope) (Report, error) {
	e.init()
	var report Report
	snap, err := e.read(ctx, scope, &report)
	if err != nil {
		return report, err
	}
	created := e.addCreatedNamespaces(&snap)
	plan := reconcile.Reconcile(snap)
	report.Plan = plan
	if len(plan.Problems) > 0 {
		return report, ProblemsError(plan.Problems)
	}
	report.Skipped = e.skipped(plan)
	if e.MissingNamespaces == FailOnMissingNamespaces && len(report.Skipped) > 0 {
		return report, missingNamespacesError(report.Skipped)
	}
	if err := e.executor.Preflight(ctx, plan); err != nil {
		return report, err
	}
	if err := e.checkCreatable(created); err != nil {
		return report, err
	}
	err = e.write(ctx, snap, plan, created, &report)
	if err != nil {
		return report, err
	}
	if len(report.Unreachable) > 0 {
		return report, &UnreachableError{Clusters: report.Unreachable}
	}
	return report, nil
}

// write carries out the plan: every cluster on its own and at the same
// time, so that a slow cluster holds only its own writes. In each cluster:
// the namespaces it lacks, its derived Services, then (with the Services'
// allocated IPs in the snapshot, so each ClusterSetIP import is written
// once, complete) everything else; the executor bounds and orders the
// writes within each step. A failure stops its cluster only; the report
// lists every write made, in plan order, and the error names each cluster
// that failed.
func (e *Engine) write(ctx context.Context, snap reconcile.Snapshot, plan reconcile.Plan, created map[string][]string, report *Report) error {
	all := e.clusters()
	type clusterRun struct {
		namespaces []apply.Result
		outcomes   []apply.Outcome
		err        error // creating a namespace
	}
	runs := make([]clusterRun, len(all))
	// Re-planning after the fill-in reads and sorts the shared snapshot:
	// one cluster at a time (it is CPU only; the writes stay parallel).
	var replan sync.Mutex
	filled := false
	var wg sync.WaitGroup
	for n, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := &runs[n]
			run.namespaces, run.err = e.createNamespaces(ctx, c, created[c.ID])
			if run.err != nil {
				return
			}
			services, rest := splitServices(changesOf(plan.Changes, c.ID))
			outs := e.executor.Run(ctx, plan, services)
			run.outcomes = outs
			if failed(outs) {
				return
			}
			clusterPlan := plan
			replan.Lock()
			if fillIn(plan, c.ID, appliedOf(outs), &snap) {
				// Same rules, now knowing the allocated IPs. The Services
				// are in the snapshot as applied, so nothing of the first
				// step is written again.
				clusterPlan = reconcile.Reconcile(snap)
				filled = true
				_, rest = splitServices(changesOf(clusterPlan.Changes, c.ID))
			}
			replan.Unlock()
			run.outcomes = append(run.outcomes, e.executor.Run(ctx, clusterPlan, rest)...)
		}()
	}
	wg.Wait()
	if filled {
		// Each cluster's part of the plan depends on the sources and its
		// own state only: the plan of the filled snapshot is the one each
		// cluster applied.
		report.Plan = reconcile.Reconcile(snap)
	}
	var outs []apply.Outcome
	var errs []error
	for n := range all {
		report.Namespaces = append(report.Namespaces, runs[n].namespaces...)
		outs = append(outs, runs[n].outcomes...)
		if runs[n].err != nil {
			errs = append(errs, runs[n].err)
		}
	}
	sortByPlan(outs, report.Plan)
	results, objects, err := e.executor.Collect(outs)
	report.Results, report.Objects = results, objects
	return errors.Join(append(errs, err)...)
}

// changesOf keeps the changes made in one cluster, in their order.
func changesOf(changes []reconcile.Change, clusterID string) []reconcile.Change {
	var out []reconcile.Change
	for _, ch := range changes {
		if ch.Cluster == clusterID {
			out = append(out, ch)
		}
	}
	return out
}

func failed(outs []apply.Outcome) bool {
	return slices.ContainsFunc(outs, func(o apply.Outcome) bool { return o.Err != nil })
}

func appliedOf(outs []apply.Outcome) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range outs {
		if o.Applied != nil {
			out = append(out, o.Applied)
		}
	}
	return out
}

// sortByPlan puts outcomes in the order of the plan's changes, so the
// report reads the same whatever order the clusters answered in.
func sortByPlan(outs []apply.Outcome, plan reconcile.Plan) {
	position := make(map[reconcile.Change]int, len(plan.Changes))
	for i, ch := range plan.Changes {
		ch.Action = ""
		position[ch] = i
	}
	at := func(o apply.Outcome) int {
		ch := o.Change
		ch.Action = ""
		if i, ok := position[ch]; ok {
			return i
		}
		return len(plan.Changes)
	}
	slices.SortStableFunc(outs, func(a, b apply.Outcome) int { return at(a) - at(b) })
}

// read takes the snapshot: every cluster in parallel, as a source, a
// consumer or both (both reads at once). An unreachable source is synced as unreachable (its
// endpoints kept); an unreachable consumer is left out of this sync (there
// must be one left); any other failure stops the sync before a write.
func (e *Engine) read(ctx context.Context, scope snapshot.Scope, report *Report) (reconcile.Snapshot, error) {
	snap := reconcile.Snapshot{Now: metav1.NewTime(e.Now().UTC().Truncate(time.Second))}
	all := e.clusters()
	sources := make([]*reconcile.Source, len(all))
	consumers := make([]*reconcile.Consumer, len(all))
	isSource := func(c *clusterset.Cluster) bool {
		return slices.ContainsFunc(e.Sources, func(s *clusterset.Cluster) bool { return s.ID == c.ID })
	}
	isConsumer := func(c *clusterset.Cluster) bool {
		return slices.ContainsFunc(e.Consumers, func(s *clusterset.Cluster) bool { return s.ID == c.ID })
	}
	// Per cluster: the error of its source read, then of its consumer read.
	roleErrs := make([][2]error, len(all))
	clusterset.ForEach(ctx, all, func(ctx context.Context, c *clusterset.Cluster) error {
		i := slices.Index(all, c)
		// Both roles' reads at once: one round trip for the cluster.
		var wg sync.WaitGroup
		if isSource(c) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src, err := e.Reader.ReadSource(ctx, c, scope)
				sources[i], roleErrs[i][0] = &src, c.Wrap(err)
			}()
		}
		if isConsumer(c) {
			con, err := e.Reader.ReadConsumer(ctx, c, scope)
			consumers[i], roleErrs[i][1] = &con, c.Wrap(err)
		}
		wg.Wait()
		return nil
	})
	var fatal []error
	for i, c := range all {
		var unreachable error
		for role, err := range roleErrs[i] {
			switch {
			case err == nil:
			case clusterset.Unreachable(err):
				unreachable = err
				if role == 0 {
					sources[i] = &reconcile.Source{ClusterID: c.ID, Unreachable: true}
				} else {
					consumers[i] = nil
				}
			default:
				fatal = append(fatal, err)
			}
		}
		if unreachable != nil {
			report.Unreachable = append(report.Unreachable, Unreachable{Cluster: c, Err: unreachable})
		}
	}
	for i := range all {
		if sources[i] != nil {
			snap.Sources = append(snap.Sources, *sources[i])
		}
		if consumers[i] != nil {
			snap.Consumers = append(snap.Consumers, *consumers[i])
		}
	}
	if len(fatal) == 0 && len(snap.Consumers) == 0 {
		for _, u := range report.Unreachable {
			fatal = append(fatal, u.Err)
		}
	}
	if len(fatal) > 0 {
		return snap, fmt.Errorf("nothing was written:\n%w", errors.Join(fatal...))
	}
	return snap, nil
}

// addCreatedNamespaces, under CreateMissingNamespaces, adds to each
// consumer the exported namespaces it lacks, so that the library renders
// the imports that will land there, and returns them by cluster id.
func (e *Engine) addCreatedNamespaces(snap *reconcile.Snapshot) map[string][]string {
	if e.MissingNamespaces != CreateMissingNamespaces {
		return nil
	}
	var exported []string
	for _, s := range snap.Sources {
		for _, ex := range s.Exports {
			exported = append(exported, ex.Namespace)
		}
	}
	slices.Sort(exported)
	exported = slices.Compact(exported)
	created := map[string][]string{}
	for i := range snap.Consumers {
		con := &snap.Consumers[i]
		for _, ns := range exported {
			if !slices.Contains(con.Namespaces, ns) {
				created[con.ClusterID] = append(created[con.ClusterID], ns)
				con.Namespaces = append(con.Namespaces, ns)
			}
		}
		slices.Sort(con.Namespaces)
	}
	return created
}

// checkCreatable refuses, before any write, a server dry run that would
// have to create namespaces: the server cannot check objects in a
// namespace whose creation it only simulated; say so rather than fail
// half-way.
func (e *Engine) checkCreatable(created map[string][]string) error {
	if e.DryRun != cmdutil.DryRunServer {
		return nil
	}
	for _, c := range e.Consumers {
		if missing := created[c.ID]; len(missing) > 0 {
			return c.Errorf("--dry-run=server cannot check objects in namespace(s) %s, which do not exist yet (their creation would only be simulated); use --dry-run=client, or create the namespaces first",
				strings.Join(missing, ", "))
		}
	}
	return nil
}

// createNamespaces creates in c the namespaces addCreatedNamespaces added
// for it, all at once, and reports them in order.
func (e *Engine) createNamespaces(ctx context.Context, c *clusterset.Cluster, missing []string) ([]apply.Result, error) {
	errs := make([]error, len(missing))
	if e.DryRun != cmdutil.DryRunClient {
		var wg sync.WaitGroup
		for n, name := range missing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{reconcile.ManagedByLabel: reconcile.FieldManager}}}
				_, err := c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: reconcile.FieldManager})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					errs[n] = c.Errorf("creating namespace %s: %w", name, err)
				}
			}()
		}
		wg.Wait()
	}
	var results []apply.Result
	for n, name := range missing {
		if errs[n] == nil {
			results = append(results, apply.Result{Cluster: c.Context, Kind: "Namespace", Name: name, Action: apply.Created})
		}
	}
	return results, errors.Join(errs...)
}

func (e *Engine) skipped(plan reconcile.Plan) []Skipped {
	var out []Skipped
	for _, cp := range plan.Consumers {
		c := e.executor.Clusters[cp.Cluster]
		for _, m := range cp.MissingNamespaces {
			out = append(out, Skipped{Cluster: c, Namespace: m.Namespace, Services: m.Services})
		}
	}
	return out
}

// splitServices separates the writes of derived Services (not their
// deletions) from the rest of the changes, keeping the plan's order.
func splitServices(changes []reconcile.Change) (services, rest []reconcile.Change) {
	for _, ch := range changes {
		if ch.Kind == reconcile.KindService && ch.Action != reconcile.ActionDelete {
			services = append(services, ch)
		} else {
			rest = append(rest, ch)
		}
	}
	return services, rest
}

// fillIn puts consumer clusterID's derived Services as its API server
// returned them (applied) into the snapshot, when a ClusterSetIP import
// still lacks its IPs and one of them has them now; it reports whether the
// plan must be computed again.
func fillIn(plan reconcile.Plan, clusterID string, applied []*unstructured.Unstructured, snap *reconcile.Snapshot) bool {
	cp := plan.Consumer(clusterID)
	var con *reconcile.Consumer
	for i := range snap.Consumers {
		if snap.Consumers[i].ClusterID == clusterID {
			con = &snap.Consumers[i]
		}
	}
	if cp == nil || con == nil {
		return false
	}
	again := false
	for _, im := range cp.Imports {
		if im.Spec.Type != mcsv1beta1.ClusterSetIP || len(im.Spec.IPs) > 0 {
			continue
		}
		derived := im.Annotations[reconcile.DerivedServiceAnnotation]
		for _, u := range applied {
			if u.GetKind() != "Service" || u.GetNamespace() != im.Namespace || u.GetName() != derived {
				continue
			}
			var svc corev1.Service
			if err := apply.FromUnstructured(u, &svc); err != nil || svc.Spec.ClusterIP == "" {
				continue
			}
			con.Services = slices.DeleteFunc(con.Services, func(s corev1.Service) bool { return s.Namespace == svc.Namespace && s.Name == svc.Name })
			con.Services = append(con.Services, svc)
			again = true
		}
	}
	return again
}

// ProblemsError lists every blocking problem with its fix.
func ProblemsError(problems []reconcile.Problem) error {
	var b strings.Builder
	b.WriteString("nothing was written:")
	for _, p := range problems {
		fmt.Fprintf(&b, "\n  %s: %s\n    fix: %s", p.Cluster, p.Message, p.Fix)
	}
	return errors.New(b.String())
}

func missingNamespacesError(skipped []Skipped) error {
	var b strings.Builder
	b.WriteString("nothing was written:")
	for _, s := range skipped {
		fmt.Fprintf(&b, "\n  %s: namespace %s does not exist; it is needed to import %s\n    fix: %s, or pass --create-namespace",
			s.Cluster.Context, s.Namespace, strings.Join(s.Services, ", "), s.Fix())
	}
	return errors.New(b.String())
}
