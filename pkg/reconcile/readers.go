package reconcile

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// The rules below are the sync's own, offered to the commands that read
// what the sync wrote (status, resolve), so that a reader never re-codes
// them and cannot disagree with the writer.

// ExportView is one cluster's ServiceExport with its Service (nil when
// the cluster has none), as a reader holds them.
type ExportView struct {
	Cluster string
	Export  *mcsv1beta1.ServiceExport
	Service *corev1.Service
}

// WinningExport is the export that decides the properties of the
// ServiceImport (type, session affinity, traffic policies, IP families,
// exported labels and annotations): KEP-1645's conflict resolution gives
// precedence to the oldest valid export, ties to the lexically smaller
// cluster id. ok is false when no export is valid.
func WinningExport(views []ExportView) (winner ExportView, ok bool) {
	var valid []*exportedService
	byExport := map[*exportedService]ExportView{}
	for _, v := range views {
		e := newExportedService(v.Cluster, v.Export, v.Service, nil)
		if e.valid.ok {
			valid = append(valid, e)
			byExport[e] = v
		}
	}
	if len(valid) == 0 {
		return ExportView{}, false
	}
	sortByPrecedence(valid)
	return byExport[valid[0]], true
}

// ConflictReasons are the reasons of an export's Conflict condition when
// it is True: the sync joins one reason per conflicting property with
// commas (e.g. "TypeConflict,LabelsConflict"), in the order the API lists
// them. None when the condition is missing or not True.
func ConflictReasons(conditions []metav1.Condition) []string {
	c := meta.FindStatusCondition(conditions, string(mcsv1beta1.ServiceExportConditionConflict))
	if c == nil || c.Status != metav1.ConditionTrue {
		return nil
	}
	var reasons []string
	for _, r := range strings.Split(c.Reason, ",") {
		if r = strings.TrimSpace(r); r != "" {
			reasons = append(reasons, r)
		}
	}
	return reasons
}
