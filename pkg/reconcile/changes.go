package reconcile

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// addExportStatuses renders the conditions of every export of a service.
func (r *run) addExportStatuses(exports, valid []*exportedService, merged *mergedExports) {
	var conflictCond metav1.Condition
	if merged != nil {
		conflictCond = conflictCondition(valid, merged.conflicts)
	}
	for _, e := range exports {
		conds := exportConditions(e, conflictCond, r.now)
		r.plan.ExportStatuses = append(r.plan.ExportStatuses, ExportStatus{
			Cluster: e.cluster, Namespace: e.export.Namespace, Name: e.export.Name, Conditions: conds,
		})
		r.changes.statuses = append(r.changes.statuses, Change{
			Cluster: e.cluster, Action: exportStatusAction(conds, e.export.Status.Conditions),
			Kind: KindServiceExportStatus, Namespace: e.export.Namespace, Name: e.export.Name,
		})
	}
}

func (r *run) addDesired(d *rendered, observedImport *mcsv1beta1.ServiceImport) {
	im := d.serviceImport
	r.plan.Imports = append(r.plan.Imports, *im)
	r.changes.imports = append(r.changes.imports, r.change(importAction(im, observedImport), KindServiceImport, im.Namespace, im.Name))

	svc := d.service
	r.plan.Services = append(r.plan.Services, *svc)
	r.changes.services = append(r.changes.services,
		r.change(serviceAction(svc, r.services[objectKey{svc.Namespace, svc.Name}]), KindService, svc.Namespace, svc.Name))

	for i := range d.slices {
		s := &d.slices[i]
		r.plan.EndpointSlices = append(r.plan.EndpointSlices, *s)
		r.changes.slices = append(r.changes.slices,
			r.change(sliceAction(s, r.slicesByName[objectKey{s.Namespace, s.Name}]), KindEndpointSlice, s.Namespace, s.Name))
	}
}

// addDeletions removes what kubectl-mcs manages and nothing backs any more:
// slices of synced clusters that are no longer wanted, and, once the service
// is not live (no valid synced export, no retained cluster), its derived
// Service and ServiceImport. Only objects carrying our label are candidates.
func (r *run) addDeletions(key serviceKey, desired *rendered, retained []retainedCluster, live bool, observedImport *mcsv1beta1.ServiceImport) {
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
	for _, s := range r.managedSlices[key] {
		if !wanted[s.Name] && !kept[s.Labels[mcsv1beta1.LabelSourceCluster]] {
			r.changes.deleteSlices = append(r.changes.deleteSlices, r.change(ActionDelete, KindEndpointSlice, s.Namespace, s.Name))
		}
	}
	if live {
		// A managed Service of this service under another name is left
		// over from an older naming; the derived name is in the plan.
		for _, svc := range r.managedDerived[key] {
			if desired != nil && svc.Name != desired.service.Name {
				r.changes.deleteServices = append(r.changes.deleteServices, r.change(ActionDelete, KindService, svc.Namespace, svc.Name))
			}
		}
		return
	}
	for _, svc := range r.managedDerived[key] {
		r.changes.deleteServices = append(r.changes.deleteServices, r.change(ActionDelete, KindService, svc.Namespace, svc.Name))
	}
	if observedImport != nil && isManaged(observedImport.Labels) {
		r.changes.deleteImports = append(r.changes.deleteImports, r.change(ActionDelete, KindServiceImport, key.Namespace, key.Name))
	}
}

func (r *run) addStale(key serviceKey, retained []retainedCluster) {
	for _, c := range retained {
		reason := StaleNotSynced
		if r.unreachable[c.id] {
			reason = StaleUnreachable
		}
		r.plan.Stale = append(r.plan.Stale, StaleCluster{
			Cluster: c.id, Namespace: key.Namespace, Service: key.Name, Reason: reason, EndpointSlices: c.slices,
		})
	}
}

func (r *run) change(action Action, kind, namespace, name string) Change {
	return Change{Cluster: r.consumerID, Action: action, Kind: kind, Namespace: namespace, Name: name}
}
