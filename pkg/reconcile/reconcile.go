package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

var (
	serviceImportTypeMeta = metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: "ServiceImport"}
	serviceTypeMeta       = metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "Service"}
)

// fixNotManaged is offered with Problems about objects in the way.
const fixNotManaged = "rename or delete it, it is not managed by kubectl-mcs"

// Reconcile computes the plan for one snapshot. It is pure: the snapshot is
// not modified, and the same snapshot always gives the same plan.
//
// Per service (namespace/name) it decides, once for the clusterset:
//   - the export conditions of every export read from a reachable source,
//     from every synced export of the service (never from what one consumer
//     holds);
//
// and in every consumer:
//   - the ServiceImport, derived Service and mirrored slices, when at least
//     one synced export is valid, or when clusters not synced in this run
//     still back an import we manage (those clusters are retained as they
//     are, see StaleCluster); a consumer without the namespace gets nothing
//     and is listed in MissingNamespaces;
//   - deletions of managed objects that no export backs any more, never of
//     objects without our label and never of a retained cluster's slices.
func Reconcile(s Snapshot) Plan {
	r := newRun(&s)
	keys := r.serviceKeys()
	for _, c := range r.consumers {
		for _, key := range keys {
			c.reconcileService(key)
		}
	}
	for _, key := range keys {
		r.addExportStatuses(key)
	}
	return r.finish()
}

// objectKey names a namespaced object in the consumer.
type objectKey struct {
	Namespace string
	Name      string
}

// run holds the clusterset-wide indexes and the plan under construction of
// one Reconcile.
type run struct {
	now metav1.Time
	// synced are the sources read in this run, unreachable those that could
	// not be read; a cluster in neither was not part of the run.
	synced      map[string]bool
	unreachable map[string]bool

	exports map[serviceKey][]*exportedService
	// blocked are the services a Problem stops in some consumer: nothing of
	// them is written anywhere, their export statuses included.
	blocked map[serviceKey]bool
	// partial are the services an unreachable exporter still backs: their
	// exports cannot all be compared in this run, so every export keeps
	// the Conflict condition it has (a conflict, or its absence, does not
	// flap while a cluster is down).
	partial map[serviceKey]bool

	consumers []*consumerRun
	plan      Plan
	statuses  []Change
}

// consumerRun holds one consumer's indexes and its part of the plan.
type consumerRun struct {
	*run
	id         string
	namespaces map[string]bool

	imports          map[serviceKey]*mcsv1beta1.ServiceImport
	services         map[objectKey]*corev1.Service
	slicesByName     map[objectKey]*discoveryv1.EndpointSlice
	managedSlices    map[serviceKey][]*discoveryv1.EndpointSlice
	managedDerived   map[serviceKey][]*corev1.Service
	missingNamespace map[string][]string // namespace -> services that need it
	// claimed are the derived Service names a service of this run renders,
	// whether or not a problem then blocks it: a leftover Service under
	// such a name is left for that service to take over, never deleted.
	claimed map[objectKey]bool
	// byService keeps each service's rendering and changes until every
	// consumer is decided: a service blocked in one consumer is written in
	// none.
	byService map[serviceKey]*serviceOutcome

	out ConsumerPlan
}

// serviceOutcome is what one consumer holds and changes for one service.
type serviceOutcome struct {
	desired *rendered
	stale   []StaleCluster
	changes changeLists
}

// changeLists buckets changes by the phase the caller applies them in.
type changeLists struct {
	services, imports, importStatuses, slices   []Change
	deleteSlices, deleteServices, deleteImports []Change
}

func (c *changeLists) add(o changeLists) {
	c.services = append(c.services, o.services...)
	c.imports = append(c.imports, o.imports...)
	c.importStatuses = append(c.importStatuses, o.importStatuses...)
	c.slices = append(c.slices, o.slices...)
	c.deleteSlices = append(c.deleteSlices, o.deleteSlices...)
	c.deleteServices = append(c.deleteServices, o.deleteServices...)
	c.deleteImports = append(c.deleteImports, o.deleteImports...)
}

// rendered is everything desired in the consumer for one service.
type rendered struct {
	serviceImport *mcsv1beta1.ServiceImport
	service       *corev1.Service
	slices        []discoveryv1.EndpointSlice
}

// retainedCluster is a cluster that was not synced in this run but still
// backs an import, with the slices mirrored from it earlier.
type retainedCluster struct {
	id     string
	slices []string
}

func newRun(s *Snapshot) *run {
	r := &run{
		now:         s.Now,
		synced:      map[string]bool{},
		unreachable: map[string]bool{},
		exports:     map[serviceKey][]*exportedService{},
		blocked:     map[serviceKey]bool{},
		partial:     map[serviceKey]bool{},
	}
	r.indexSources(s.Sources)
	consumers := slices.Clone(s.Consumers)
	slices.SortFunc(consumers, func(a, b Consumer) int { return strings.Compare(a.ClusterID, b.ClusterID) })
	for i := range consumers {
		r.consumers = append(r.consumers, r.newConsumerRun(&consumers[i]))
	}
	return r
}

func (r *run) newConsumerRun(con *Consumer) *consumerRun {
	c := &consumerRun{
		run:              r,
		id:               con.ClusterID,
		namespaces:       map[string]bool{},
		imports:          map[serviceKey]*mcsv1beta1.ServiceImport{},
		services:         map[objectKey]*corev1.Service{},
		slicesByName:     map[objectKey]*discoveryv1.EndpointSlice{},
		managedSlices:    map[serviceKey][]*discoveryv1.EndpointSlice{},
		managedDerived:   map[serviceKey][]*corev1.Service{},
		missingNamespace: map[string][]string{},
		claimed:          map[objectKey]bool{},
		byService:        map[serviceKey]*serviceOutcome{},
		out:              ConsumerPlan{Cluster: con.ClusterID},
	}
	for _, ns := range con.Namespaces {
		c.namespaces[ns] = true
	}
	c.indexConsumer(con)
	return c
}

// indexSources indexes the exports of every usable source. A source whose
// id is not a DNS label, or is shared with another source, is reported and
// left out: its slices would be mislabeled or mixed with another cluster's.
func (r *run) indexSources(sources []Source) {
	count := map[string]int{}
	for i := range sources {
		count[sources[i].ClusterID]++
	}
	reported := map[string]bool{}
	report := func(id, message, fix string) {
		if !reported[id] {
			reported[id] = true
			r.plan.Problems = append(r.plan.Problems, Problem{Cluster: id, Kind: KindCluster, Name: id, Message: message, Fix: fix})
		}
	}
	for i := range sources {
		src := &sources[i]
		id := src.ClusterID
		if errs := validation.IsDNS1123Label(id); len(errs) > 0 {
			report(id, fmt.Sprintf("cluster id %q is not a DNS label: %s", id, strings.Join(errs, "; ")),
				"give the cluster a DNS-label id (ClusterProperty cluster.clusterset.k8s.io, KEP-2149)")
			continue
		}
		if count[id] > 1 {
			report(id, fmt.Sprintf("cluster id %q is used by %d source clusters", id, count[id]),
				"give every cluster its own id (ClusterProperty cluster.clusterset.k8s.io, KEP-2149)")
			// Treated as unreachable: its mirrored slices stay untouched.
			r.unreachable[id] = true
			continue
		}
		if src.Unreachable {
			r.unreachable[id] = true
			continue
		}
		r.synced[id] = true
		r.indexSource(src)
	}
}

func (r *run) indexSource(src *Source) {
	services := make(map[objectKey]*corev1.Service, len(src.Services))
	for i := range src.Services {
		svc := &src.Services[i]
		services[objectKey{svc.Namespace, svc.Name}] = svc
	}
	slicesByService := map[serviceKey][]*discoveryv1.EndpointSlice{}
	for i := range src.EndpointSlices {
		s := &src.EndpointSlices[i]
		name := s.Labels[discoveryv1.LabelServiceName]
		// Slices we mirrored into this cluster (it may consume as well) are
		// not its own endpoints.
		if name == "" || s.Labels[discoveryv1.LabelManagedBy] == FieldManager {
			continue
		}
		key := serviceKey{s.Namespace, name}
		slicesByService[key] = append(slicesByService[key], s)
	}
	for i := range src.Exports {
		e := &src.Exports[i]
		key := serviceKey{e.Namespace, e.Name}
		r.exports[key] = append(r.exports[key],
			newExportedService(src.ClusterID, e, services[objectKey(key)], slicesByService[key]))
	}
}

// indexConsumer indexes the consumer's objects in the namespaces in scope.
func (r *consumerRun) indexConsumer(c *Consumer) {
	for i := range c.Imports {
		im := &c.Imports[i]
		if r.namespaces[im.Namespace] {
			r.imports[serviceKey{im.Namespace, im.Name}] = im
		}
	}
	for i := range c.Services {
		svc := &c.Services[i]
		if !r.namespaces[svc.Namespace] {
			continue
		}
		r.services[objectKey{svc.Namespace, svc.Name}] = svc
		if owner := svc.Labels[mcsv1beta1.LabelServiceName]; owner != "" && isManaged(svc.Labels) {
			key := serviceKey{svc.Namespace, owner}
			r.managedDerived[key] = append(r.managedDerived[key], svc)
		}
	}
	for i := range c.EndpointSlices {
		s := &c.EndpointSlices[i]
		if !r.namespaces[s.Namespace] {
			continue
		}
		r.slicesByName[objectKey{s.Namespace, s.Name}] = s
		if owner := s.Labels[mcsv1beta1.LabelServiceName]; owner != "" && isManagedSlice(s) {
			key := serviceKey{s.Namespace, owner}
			r.managedSlices[key] = append(r.managedSlices[key], s)
		}
	}
}

func isManaged(labels map[string]string) bool { return labels[ManagedByLabel] == FieldManager }

func isManagedSlice(s *discoveryv1.EndpointSlice) bool {
	return s.Labels[discoveryv1.LabelManagedBy] == FieldManager
}

// serviceKeys lists every service this run has to decide about: exported by
// a synced source, or already present in a consumer as a managed object.
// Hand-made imports nobody exports are not ours to decide about.
func (r *run) serviceKeys() []serviceKey {
	set := map[serviceKey]bool{}
	for k := range r.exports {
		set[k] = true
	}
	for _, c := range r.consumers {
		for k, im := range c.imports {
			if isManaged(im.Labels) {
				set[k] = true
			}
		}
		for k := range c.managedSlices {
			set[k] = true
		}
		for k := range c.managedDerived {
			set[k] = true
		}
	}
	return slices.SortedFunc(maps.Keys(set), compareServiceKeys)
}

// validExports returns a service's exports, winner first, and the valid
// ones among them.
func (r *run) validExports(key serviceKey) (exports, valid []*exportedService) {
	exports = r.exports[key]
	sortByPrecedence(exports)
	for _, e := range exports {
		if e.valid.ok {
			valid = append(valid, e)
		}
	}
	return exports, valid
}

func (r *consumerRun) reconcileService(key serviceKey) {
	_, valid := r.validExports(key)
	if !r.namespaces[key.Namespace] {
		if len(valid) > 0 {
			r.missingNamespace[key.Namespace] = append(r.missingNamespace[key.Namespace], key.Name)
		}
		return
	}

	observedImport := r.imports[key]
	retained := r.retainedClusters(key, observedImport)
	for _, c := range retained {
		if r.unreachable[c.id] {
			r.partial[key] = true
		}
	}
	var merged *mergedExports
	if len(valid) > 0 {
		m := mergeExports(valid)
		merged = &m
	}
	desired := r.render(key, valid, merged, retained, observedImport)
	if desired != nil {
		r.claimed[objectKey{desired.service.Namespace, desired.service.Name}] = true
	}
	if problems := r.ownershipProblems(key, desired); len(problems) > 0 {
		r.plan.Problems = append(r.plan.Problems, problems...)
		r.blocked[key] = true
		return
	}

	out := &serviceOutcome{desired: desired}
	if desired != nil {
		r.addDesired(out, observedImport)
	}
	live := len(valid) > 0 || len(retained) > 0
	r.addDeletions(out, key, desired, retained, live, observedImport)
	out.stale = r.staleClusters(key, retained)
	r.byService[key] = out
}

// retainedClusters are the clusters that back the import without being
// synced in this run: listed in the status of the import we manage, or the
// source of slices we mirrored. Their slices are left as they are.
func (r *consumerRun) retainedClusters(key serviceKey, observed *mcsv1beta1.ServiceImport) []retainedCluster {
	byID := map[string][]string{}
	if observed != nil && isManaged(observed.Labels) {
		for _, c := range observed.Status.Clusters {
			if !r.synced[c.Cluster] {
				byID[c.Cluster] = byID[c.Cluster]
			}
		}
	}
	for _, s := range r.managedSlices[key] {
		if id := s.Labels[mcsv1beta1.LabelSourceCluster]; id != "" && !r.synced[id] {
			byID[id] = append(byID[id], s.Name)
		}
	}
	out := make([]retainedCluster, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		names := byID[id]
		slices.Sort(names)
		out = append(out, retainedCluster{id: id, slices: names})
	}
	return out
}

// finish gathers every consumer's part of the plan, except the services a
// Problem blocks, sorts every list and lays the changes out in apply order:
// derived Services (a ClusterSetIP import takes its IPs from one), imports,
// their statuses, slices, export statuses, then deletions from the leaves up
// (slices, Services, imports).
func (r *run) finish() Plan {
	p := &r.plan
	var all changeLists
	for _, c := range r.consumers {
		all.add(c.finish())
		p.Consumers = append(p.Consumers, c.out)
	}
	slices.SortFunc(p.Problems, func(a, b Problem) int {
		return compareStrings(a.Cluster, b.Cluster, a.Namespace, b.Namespace, a.Kind, b.Kind, a.Name, b.Name, a.Message, b.Message)
	})
	slices.SortFunc(p.ExportStatuses, func(a, b ExportStatus) int {
		return compareStrings(a.Cluster, b.Cluster, a.Namespace, b.Namespace, a.Name, b.Name)
	})
	for _, bucket := range [][]Change{all.services, all.imports, all.importStatuses, all.slices, r.statuses, all.deleteSlices, all.deleteServices, all.deleteImports} {
		slices.SortFunc(bucket, compareChanges)
		p.Changes = append(p.Changes, bucket...)
	}
	return *p
}

// finish fills the consumer's plan with the services no Problem blocks and
// returns their changes.
func (r *consumerRun) finish() changeLists {
	var changes changeLists
	for _, key := range slices.SortedFunc(maps.Keys(r.byService), compareServiceKeys) {
		if r.blocked[key] {
			continue
		}
		o := r.byService[key]
		if d := o.desired; d != nil {
			r.out.Imports = append(r.out.Imports, *d.serviceImport)
			r.out.Services = append(r.out.Services, *d.service)
			r.out.EndpointSlices = append(r.out.EndpointSlices, d.slices...)
		}
		r.out.Stale = append(r.out.Stale, o.stale...)
		changes.add(o.changes)
	}
	for _, ns := range slices.Sorted(maps.Keys(r.missingNamespace)) {
		names := r.missingNamespace[ns]
		slices.Sort(names)
		r.out.MissingNamespaces = append(r.out.MissingNamespaces, MissingNamespace{Namespace: ns, Services: names})
	}
	p := &r.out
	slices.SortFunc(p.Imports, func(a, b mcsv1beta1.ServiceImport) int {
		return compareStrings(a.Namespace, b.Namespace, a.Name, b.Name)
	})
	slices.SortFunc(p.Services, func(a, b corev1.Service) int {
		return compareStrings(a.Namespace, b.Namespace, a.Name, b.Name)
	})
	slices.SortFunc(p.EndpointSlices, func(a, b discoveryv1.EndpointSlice) int {
		return compareStrings(a.Namespace, b.Namespace, a.Name, b.Name)
	})
	slices.SortFunc(p.Stale, func(a, b StaleCluster) int {
		return compareStrings(a.Namespace, b.Namespace, a.Service, b.Service, a.Cluster, b.Cluster)
	})
	// Deletions of derived Services are decided per service, before every
	// service has claimed its name; drop those another service needs.
	changes.deleteServices = slices.DeleteFunc(changes.deleteServices, func(ch Change) bool {
		return r.claimed[objectKey{ch.Namespace, ch.Name}]
	})
	return changes
}

func compareChanges(a, b Change) int {
	return compareStrings(a.Cluster, b.Cluster, a.Namespace, b.Namespace, a.Name, b.Name)
}

// compareStrings compares pairs (a0, b0), (a1, b1), ... in turn.
func compareStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}
