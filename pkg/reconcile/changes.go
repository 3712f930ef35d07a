package reconcile

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// addExportStatuses renders the conditions of every export of a service,
// once for the clusterset: they depend on the service's synced exports
// only, so every consumer's sync agrees on them. A service a Problem blocks
// gets none, since nothing of it is written; while an exporter of the
// service is unreachable, each export keeps its Conflict condition.
func (r *run) addExportStatuses(key serviceKey) {
	if r.blocked[key] {
		return
	}
	exports, valid := r.validExports(key)
	var conflictCond metav1.Condition
	if len(valid) > 0 {
		merged := mergeExports(valid)
		conflictCond = conflictCondition(valid, merged.conflicts)
	}
	for _, e := range exports {
		conds := exportConditions(e, conflictCond, r.now)
		if r.partial[key] {
			keepObservedConflict(conds, e.export.Status.Conditions)
		}
		r.plan.ExportStatuses = append(r.plan.ExportStatuses, ExportStatus{
			Cluster: e.cluster, Namespace: e.export.Namespace, Name: e.export.Name, Conditions: conds,
		})
		r.statuses = append(r.statuses, Change{
			Cluster: e.cluster, Action: exportStatusAction(conds, e.export.Status.Conditions),
			Kind: KindServiceExportStatus, Namespace: e.export.Namespace, Name: e.export.Name,
		})
	}
}

func (r *consumerRun) addDesired(out *serviceOutcome, observedImport *mcsv1beta1.ServiceImport) {
	d := out.desired
	im := d.serviceImport
	out.changes.imports = append(out.changes.imports, r.change(importAction(im, observedImport), KindServiceImport, im.Namespace, im.Name))
	out.changes.importStatuses = append(out.changes.importStatuses, r.change(importStatusAction(im, observedImport), KindServiceImportStatus, im.Namespace, im.Name))

	svc := d.service
	out.changes.services = append(out.changes.services,
		r.change(serviceAction(svc, r.services[objectKey{svc.Namespace, svc.Name}]), KindService, svc.Namespace, svc.Name))

	for i := range d.slices {
		s := &d.slices[i]
		out.changes.slices = append(out.changes.slices,
			r.change(sliceAction(s, r.slicesByName[objectKey{s.Namespace, s.Name}]), KindEndpointSlice, s.Namespace, s.Name))
	}
}

// addDeletions removes what kubectl-mcs manages and nothing backs any more:
// slices of synced clusters that are no longer wanted, and, once the service
// is not live (no valid synced export, no retained cluster), its derived
// Service and ServiceImport. Only objects carrying our label are candidates.
func (r *consumerRun) addDeletions(out *serviceOutcome, key serviceKey, desired *rendered, retained []retainedCluster, live bool, observedImport *mcsv1beta1.ServiceImport) {
	wanted := map[string]bool{}
	if desired != nil {
		for i := range desired.slices {
			wanted[desired.slices[i].Name] = true
		}
	}
	kept := map[string]bool{}
	for _, c := range retained {
		kept[c.id] = true
	}
	ch := &out.changes
	for _, s := range r.managedSlices[key] {
		if !wanted[s.Name] && !kept[s.Labels[mcsv1beta1.LabelSourceCluster]] {
			ch.deleteSlices = append(ch.deleteSlices, r.change(ActionDelete, KindEndpointSlice, s.Namespace, s.Name))
		}
	}
	if live {
		// A managed Service of this service under another name is left
		// over from an older naming; the derived name is in the plan.
		for _, svc := range r.managedDerived[key] {
			if desired != nil && svc.Name != desired.service.Name {
				ch.deleteServices = append(ch.deleteServices, r.change(ActionDelete, KindService, svc.Namespace, svc.Name))
			}
		}
		return
	}
	for _, svc := range r.managedDerived[key] {
		ch.deleteServices = append(ch.deleteServices, r.change(ActionDelete, KindService, svc.Namespace, svc.Name))
	}
	if observedImport != nil && isManaged(observedImport.Labels) {
		ch.deleteImports = append(ch.deleteImports, r.change(ActionDelete, KindServiceImport, key.Namespace, key.Name))
	}
}

func (r *consumerRun) staleClusters(key serviceKey, retained []retainedCluster) []StaleCluster {
	var out []StaleCluster
	for _, c := range retained {
		reason := StaleNotSynced
		if r.unreachable[c.id] {
			reason = StaleUnreachable
		}
		out = append(out, StaleCluster{
			Cluster: c.id, Namespace: key.Namespace, Service: key.Name, Reason: reason, EndpointSlices: c.slices,
		})
	}
	return out
}

func (r *consumerRun) change(action Action, kind, namespace, name string) Change {
	return Change{Cluster: r.id, Action: action, Kind: kind, Namespace: namespace, Name: name}
}

// keepObservedConflict puts back the Conflict condition an export already
// has (when it has one) in place of the one rendered from a partial view.
func keepObservedConflict(desired, observed []metav1.Condition) {
	o := meta.FindStatusCondition(observed, string(mcsv1beta1.ServiceExportConditionConflict))
	if o == nil {
		return
	}
	for i := range desired {
		if desired[i].Type == o.Type {
			desired[i] = *o.DeepCopy()
		}
	}
}
