package reconcile

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// exportConditions renders the Valid, Ready and Conflict conditions of one
// export, in that order.
//
// Ready is True/Exported for a valid export (this project pushes: once the
// plan is applied the service is in the consumer). An invalid export is not
// Ready, and the reason says whether waiting can help: NoService is Pending
// (creating the Service fixes it on the next sync), InvalidServiceType is
// Failed (the Service itself must change). A valid export whose service is
// blocked by a Problem gets no status at all, since nothing is written then.
//
// conflictCond is shared by every valid export of the service; an invalid
// export takes no part in the comparison and says so.
func exportConditions(e *exportedService, conflictCond metav1.Condition, now metav1.Time) []metav1.Condition {
	key := serviceKey{e.export.Namespace, e.export.Name}
	gen := e.export.Generation
	valid := metav1.Condition{
		Type:    string(mcsv1beta1.ServiceExportConditionValid),
		Status:  metav1.ConditionTrue,
		Reason:  string(e.valid.reason),
		Message: e.valid.message,
	}
	ready := metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionReady)}
	switch {
	case e.valid.ok:
		ready.Status = metav1.ConditionTrue
		ready.Reason = string(mcsv1beta1.ServiceExportReasonExported)
		ready.Message = fmt.Sprintf("exported as %s ServiceImport %s", e.importType, key)
	case e.valid.reason == mcsv1beta1.ServiceExportReasonNoService:
		valid.Status = metav1.ConditionFalse
		ready.Status = metav1.ConditionFalse
		ready.Reason = string(mcsv1beta1.ServiceExportReasonPending)
		ready.Message = fmt.Sprintf("waiting for Service %s to exist in %s", key, e.cluster)
	default:
		valid.Status = metav1.ConditionFalse
		ready.Status = metav1.ConditionFalse
		ready.Reason = string(mcsv1beta1.ServiceExportReasonFailed)
		ready.Message = "not exported: " + e.valid.message
	}
	if !e.valid.ok {
		conflictCond = metav1.Condition{
			Type:    string(mcsv1beta1.ServiceExportConditionConflict),
			Status:  metav1.ConditionFalse,
			Reason:  string(mcsv1beta1.ServiceExportReasonNoConflicts),
			Message: "not compared: the export is not valid",
		}
	}
	conds := []metav1.Condition{valid, ready, conflictCond}
	for i := range conds {
		conds[i].ObservedGeneration = gen
		conds[i].LastTransitionTime = now
	}
	keepTransitionTimes(conds, e.export.Status.Conditions)
	return conds
}

// conflictCondition is the Conflict condition set on every valid export of
// a service: reasons joined with commas, one message line per conflict.
func conflictCondition(valid []*exportedService, conflicts []conflict) metav1.Condition {
	c := metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionConflict)}
	if len(conflicts) == 0 {
		c.Status = metav1.ConditionFalse
		c.Reason = string(mcsv1beta1.ServiceExportReasonNoConflicts)
		// Only the exports synced in this run are compared; the message
		// says which, so that it does not claim more than was seen.
		if len(valid) == 1 {
			c.Message = "nothing to compare: " + valid[0].cluster + " is the only exporter synced in this run"
		} else {
			c.Message = "the exports of " + strings.Join(clusterIDs(valid), ", ") + " agree"
		}
		return c
	}
	reasons := make([]string, len(conflicts))
	messages := make([]string, len(conflicts))
	for i, k := range conflicts {
		reasons[i] = string(k.reason)
		messages[i] = k.message
	}
	c.Status = metav1.ConditionTrue
	c.Reason = strings.Join(reasons, ",")
	c.Message = strings.Join(messages, "\n")
	return c
}

// importReadyCondition is the ServiceImport's Ready condition.
func importReadyCondition(clusters []string, stale []string, now metav1.Time) metav1.Condition {
	msg := "imported from " + strings.Join(clusters, ", ")
	if len(stale) > 0 {
		msg += "; not synced in this run, kept as last mirrored: " + strings.Join(stale, ", ")
	}
	return metav1.Condition{
		Type:               string(mcsv1beta1.ServiceImportConditionReady),
		Status:             metav1.ConditionTrue,
		Reason:             string(mcsv1beta1.ServiceImportReasonReady),
		Message:            msg,
		LastTransitionTime: now,
	}
}

// keepTransitionTimes gives meta.SetStatusCondition semantics to conditions
// rendered from scratch: a condition whose status did not change keeps the
// observed lastTransitionTime, so a rerun with nothing new changes nothing.
func keepTransitionTimes(desired, observed []metav1.Condition) {
	for i := range desired {
		o := meta.FindStatusCondition(observed, desired[i].Type)
		if o != nil && o.Status == desired[i].Status && !o.LastTransitionTime.IsZero() {
			desired[i].LastTransitionTime = o.LastTransitionTime
		}
	}
}
