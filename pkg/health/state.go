// The clusterset checks: the exports and imports as the reconcile library
// sees them, with every reachable cluster a source and a consumer, the way
// `kubectl mcs sync` runs it.

package health

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// readSnapshot reads every cluster with a usable id, in parallel, as the
// engine does, and runs the library over what could be read.
func (r *run) readSnapshot(ctx context.Context) {
	ms := r.each(hasID)
	errs := forEach(ctx, ms, func(ctx context.Context, m *member) error {
		var err error
		if m.source, err = snapshot.ReadSource(ctx, m.cluster, r.opts.Scope); err != nil {
			return err
		}
		m.consumer, err = snapshot.ReadConsumer(ctx, m.cluster, r.opts.Scope)
		return err
	})
	r.snap = reconcile.Snapshot{Now: metav1.NewTime(r.opts.Now().UTC().Truncate(time.Second))}
	for i, m := range ms {
		if errs[i] != nil {
			r.add(CategoryExports, Check{Name: "exports and imports read", Cluster: m.context, Result: Fail, Message: message(errs[i])})
			continue
		}
		m.read = true
		r.snap.Sources = append(r.snap.Sources, m.source)
		r.snap.Consumers = append(r.snap.Consumers, m.consumer)
	}
	r.plan = reconcile.Reconcile(r.snap)
}

// syncFix is the sync of the clusters read, over the run's scope.
func (r *run) syncFix() string {
	return fmt.Sprintf("kubectl mcs sync --clusters %s %s", strings.Join(contexts(r.each(wasRead)), ","), r.scopeFlags())
}

func (r *run) checkNamespaces() {
	for _, m := range r.each(wasRead) {
		cp := r.plan.Consumer(m.cluster.ID)
		if cp == nil || len(cp.MissingNamespaces) == 0 {
			r.add(CategoryNamespaces, Check{Name: "exported namespaces exist", Cluster: m.context, Result: Pass,
				Message: "every namespace exported in the clusterset exists here"})
			continue
		}
		c := Check{Name: "exported namespaces exist", Cluster: m.context, Result: Fail}
		var names []string
		for _, mn := range cp.MissingNamespaces {
			names = append(names, mn.Namespace)
			c.Details = append(c.Details, fmt.Sprintf("namespace %s is missing: %s not imported here", mn.Namespace, joinComma(mn.Services)))
			c.Fix = append(c.Fix, fmt.Sprintf("kubectl create namespace %s --context %s", mn.Namespace, m.context))
		}
		c.Message = "exported namespaces missing here (namespace sameness): " + joinComma(names)
		r.add(CategoryNamespaces, c)
	}
}

// checkExports gives each source's exports the Valid and Conflict
// conditions the library renders for them.
func (r *run) checkExports() {
	for _, m := range r.each(wasRead) {
		c := Check{Name: "exports valid, without conflict", Cluster: m.context, Result: Pass}
		n := 0
		var conflicts []string
		for _, es := range r.plan.ExportStatuses {
			if es.Cluster != m.cluster.ID {
				continue
			}
			n++
			key := es.Namespace + "/" + es.Name
			if v := meta.FindStatusCondition(es.Conditions, string(mcsv1beta1.ServiceExportConditionValid)); v != nil && v.Status != metav1.ConditionTrue {
				c.Result = Fail
				c.Details = append(c.Details, fmt.Sprintf("%s is not valid (%s): %s", key, v.Reason, v.Message))
				c.Fix = append(c.Fix, fmt.Sprintf("create the Service %s, or stop exporting it: kubectl mcs unexport %s -n %s --context %s", key, es.Name, es.Namespace, m.context))
			}
			if cf := meta.FindStatusCondition(es.Conditions, string(mcsv1beta1.ServiceExportConditionConflict)); cf != nil && cf.Status == metav1.ConditionTrue {
				conflicts = append(conflicts, key)
				c.Details = append(c.Details, fmt.Sprintf("%s has a conflict (%s): %s", key, cf.Reason, cf.Message))
			}
		}
		switch {
		case c.Result == Fail:
			c.Message = "exports that cannot be imported"
		case len(conflicts) > 0:
			c.Result = Warn
			c.Message = "exports in conflict with the other clusters' exports of the same service: " + joinComma(conflicts)
			c.Fix = []string{"make the exported Services agree across the clusters (the details say on what)"}
		case n == 0:
			c.Message = "no ServiceExports" + r.where()
		default:
			c.Message = fmt.Sprintf("%d export(s), every one valid, none in conflict", n)
		}
		r.add(CategoryExports, c)
	}
}

func (r *run) where() string {
	if r.opts.Scope.Namespace == "" {
		return " in any namespace"
	}
	return " in namespace " + r.opts.Scope.Namespace
}

// checkImports tells, per consumer, what a sync would change: writes make
// imports stale against their sources, deletions are managed objects
// nothing exports any more, and problems block the sync altogether.
func (r *run) checkImports() {
	for _, m := range r.each(wasRead) {
		id := m.cluster.ID
		stale, orphans := map[string][]string{}, map[string][]string{}
		for _, ch := range r.plan.Changes {
			if ch.Cluster != id || ch.Action == reconcile.ActionUnchanged || ch.Kind == reconcile.KindServiceExportStatus {
				continue
			}
			service := r.serviceOf(m, ch)
			what := fmt.Sprintf("%s %s %s", ch.Action, ch.Kind, ch.Name)
			if ch.Action == reconcile.ActionDelete {
				orphans[service] = append(orphans[service], what)
			} else {
				stale[service] = append(stale[service], what)
			}
		}
		up := Check{Name: "imports up to date", Cluster: m.context, Result: Pass}
		for _, p := range r.plan.Problems {
			if p.Cluster == id {
				up.Result = Fail
				up.Details = append(up.Details, fmt.Sprintf("%s %s/%s: %s", p.Kind, p.Namespace, p.Name, p.Message))
				up.Fix = append(up.Fix, p.Fix)
			}
		}
		switch {
		case up.Result == Fail:
			up.Message = "a sync would refuse to write here"
		case len(stale) > 0:
			up.Result = Fail
			up.Message = "STALE against their sources: " + joinComma(slicesSortedKeys(stale))
			for _, s := range slicesSortedKeys(stale) {
				up.Details = append(up.Details, s+": "+joinComma(stale[s]))
			}
			up.Fix = []string{r.syncFix()}
		default:
			up.Message = fmt.Sprintf("%d import(s), each as its sources make it", len(r.plan.Consumer(id).Imports))
		}
		r.add(CategoryImports, up)
		orphaned := Check{Name: "no orphaned objects", Cluster: m.context, Result: Pass,
			Message: "every managed object belongs to a service some cluster exports"}
		if len(orphans) > 0 {
			orphaned.Result = Fail
			orphaned.Message = "managed objects of services (or clusters) that no longer export: " + joinComma(slicesSortedKeys(orphans))
			for _, s := range slicesSortedKeys(orphans) {
				orphaned.Details = append(orphaned.Details, s+": "+joinComma(orphans[s]))
			}
			orphaned.Fix = []string{r.syncFix()}
		}
		r.add(CategoryImports, orphaned)
	}
}

// serviceOf names the service (namespace/name) a change of a consumer
// belongs to, from the object as planned or as read.
func (r *run) serviceOf(m *member, ch reconcile.Change) string {
	key := func(name string) string { return ch.Namespace + "/" + name }
	switch ch.Kind {
	case reconcile.KindServiceImport, reconcile.KindServiceImportStatus:
		return key(ch.Name)
	case reconcile.KindService:
		cp := r.plan.Consumer(m.cluster.ID)
		for _, list := range [][]metav1.Object{objects(cp.Services), objects(m.consumer.Services)} {
			if s := labelOf(list, ch.Namespace, ch.Name); s != "" {
				return key(s)
			}
		}
	case reconcile.KindEndpointSlice:
		cp := r.plan.Consumer(m.cluster.ID)
		for _, list := range [][]metav1.Object{objects(cp.EndpointSlices), objects(m.consumer.EndpointSlices)} {
			if s := labelOf(list, ch.Namespace, ch.Name); s != "" {
				return key(s)
			}
		}
	}
	return key(ch.Name)
}

func objects[T any, P interface {
	*T
	metav1.Object
}](list []T) []metav1.Object {
	out := make([]metav1.Object, len(list))
	for i := range list {
		out[i] = P(&list[i])
	}
	return out
}

// labelOf is the service-name label of the named object of list.
func labelOf(list []metav1.Object, namespace, name string) string {
	i := slices.IndexFunc(list, func(o metav1.Object) bool { return o.GetNamespace() == namespace && o.GetName() == name })
	if i < 0 {
		return ""
	}
	return list[i].GetLabels()[mcsv1beta1.LabelServiceName]
}

// checkOtherControllers looks at who else writes the objects an import
// consists of: another field manager on a ServiceImport, derived Service or
// mirrored EndpointSlice is another MCS controller (or a hand) that the
// sync will fight with.
func (r *run) checkOtherControllers() {
	for _, m := range r.each(wasRead) {
		c := Check{Name: "no other writer", Cluster: m.context, Result: Pass,
			Message: fmt.Sprintf("ServiceImports, derived Services and mirrored EndpointSlices are written by %s alone", reconcile.FieldManager)}
		managers := map[string]bool{}
		note := func(kind string, o metav1.Object) {
			for _, mf := range o.GetManagedFields() {
				if mf.Manager == reconcile.FieldManager {
					continue
				}
				managers[mf.Manager] = true
				sub := ""
				if mf.Subresource != "" {
					sub = " (" + mf.Subresource + ")"
				}
				c.Details = append(c.Details, fmt.Sprintf("%s %s/%s: fields%s managed by %q (%s)", kind, o.GetNamespace(), o.GetName(), sub, mf.Manager, mf.Operation))
			}
		}
		for _, o := range objects(m.consumer.Imports) {
			note("ServiceImport", o)
		}
		for _, o := range objects(m.consumer.Services) {
			note("Service", o)
		}
		for _, o := range objects(m.consumer.EndpointSlices) {
			note("EndpointSlice", o)
		}
		if len(managers) > 0 {
			c.Result = Warn
			c.Message = "also written by " + joinComma(quoted(slicesSortedKeys(managers))) + ": two writers of one object undo each other's changes"
			c.Fix = []string{fmt.Sprintf("leave these objects to one MCS controller: stop the other, or stop syncing %s with kubectl mcs", m.context)}
		}
		r.add(CategoryControllers, c)
	}
}

func quoted(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
