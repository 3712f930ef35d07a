package reconcile

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// serviceKey names a multi-cluster service: namespace sameness makes the
// (namespace, name) pair the same service in every cluster of the set.
type serviceKey struct {
	Namespace string
	Name      string
}

func (k serviceKey) String() string { return k.Namespace + "/" + k.Name }

func compareServiceKeys(a, b serviceKey) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// exportedService is one ServiceExport of a reachable source together with
// what the source holds for it.
type exportedService struct {
	cluster string
	export  *mcsv1beta1.ServiceExport
	// service is nil when the export has no Service.
	service *corev1.Service
	// slices are the source's own EndpointSlices of the service.
	slices []*discoveryv1.EndpointSlice
	valid  validity
	// importType and ports are only set for valid exports.
	importType mcsv1beta1.ServiceImportType
	ports      []mcsv1beta1.ServicePort
}

// validity is the export's Valid condition, decided once.
type validity struct {
	ok      bool
	reason  mcsv1beta1.ServiceExportConditionReason
	message string
}

func newExportedService(cluster string, export *mcsv1beta1.ServiceExport, service *corev1.Service, slices []*discoveryv1.EndpointSlice) *exportedService {
	e := &exportedService{cluster: cluster, export: export, service: service, slices: slices}
	key := serviceKey{export.Namespace, export.Name}
	switch {
	case service == nil:
		e.valid = validity{reason: mcsv1beta1.ServiceExportReasonNoService,
			message: fmt.Sprintf("Service %s does not exist in %s", key, cluster)}
	case !Exportable(service):
		why, _ := NotExportable(service)
		e.valid = validity{reason: mcsv1beta1.ServiceExportReasonInvalidServiceType, message: why}
	default:
		e.importType = ImportTypeOf(service)
		e.ports = servicePortsOf(service)
		e.valid = validity{ok: true, reason: mcsv1beta1.ServiceExportReasonValid,
			message: fmt.Sprintf("Service %s is exported as %s", key, e.importType)}
	}
	return e
}

// Exportable says whether a Service can be exported (NotExportable says
// why not).
func Exportable(svc *corev1.Service) bool {
	why, _ := NotExportable(svc)
	return why == ""
}

// NotExportable says why a Service cannot be exported, and what to export
// instead; "" when it can be:
//   - an ExternalName Service has no endpoints to import (KEP-1645,
//     "Exporting services"); the MCS API's InvalidServiceType;
//   - a Service kubectl mcs derived from a ServiceImport (DerivedFrom) is
//     this implementation's, not the user's: exporting it would put the
//     endpoints the cluster imported back into the clusterset as its own,
//     under another name. The KEP lets a controller refuse a type it cannot
//     export; this is one, reported with the same reason.
func NotExportable(svc *corev1.Service) (why, instead string) {
	key := serviceKey{svc.Namespace, svc.Name}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return fmt.Sprintf("Service %s is of type ExternalName, which cannot be exported", key),
			"export a ClusterIP or headless Service instead"
	}
	if imported, ok := DerivedFrom(svc); ok {
		return fmt.Sprintf("Service %s is the Service kubectl mcs derived from the ServiceImport %s/%s, which cannot be exported", key, svc.Namespace, imported),
			fmt.Sprintf("export Service %s/%s in a cluster that runs it", svc.Namespace, imported)
	}
	return "", ""
}

// DerivedFrom says whether a Service is one kubectl mcs derived from a
// ServiceImport (labelled managed-by kubectl-mcs and with the import's
// name), and names the import.
func DerivedFrom(svc *corev1.Service) (importName string, ok bool) {
	importName = svc.Labels[mcsv1beta1.LabelServiceName]
	return importName, isManaged(svc.Labels) && importName != ""
}

// ImportTypeOf maps a Service to its import type: clusterIP None is
// Headless; ClusterIP, NodePort and LoadBalancer all get a clusterset VIP.
func ImportTypeOf(svc *corev1.Service) mcsv1beta1.ServiceImportType {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return mcsv1beta1.Headless
	}
	return mcsv1beta1.ClusterSetIP
}

// compareByPrecedence orders exports so that the winner comes first: the
// oldest ServiceExport wins, ties go to the lexically smaller cluster id.
func compareByPrecedence(a, b *exportedService) int {
	if c := a.export.CreationTimestamp.Time.Compare(b.export.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(a.cluster, b.cluster)
}

func sortByPrecedence(exports []*exportedService) {
	slices.SortFunc(exports, compareByPrecedence)
}

// winnerNote explains in condition messages why the first export won.
func winnerNote(valid []*exportedService) string {
	if len(valid) > 1 && valid[0].export.CreationTimestamp.Equal(&valid[1].export.CreationTimestamp) {
		return "(oldest export, tie broken by cluster id)"
	}
	return "(oldest export)"
}

func clusterIDs(exports []*exportedService) []string {
	ids := make([]string, 0, len(exports))
	for _, e := range exports {
		ids = append(ids, e.cluster)
	}
	return ids
}

// sortedUnique sorts ids and drops repeats.
func sortedUnique(ids []string) []string {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ValidCondition is the Valid condition of one export, given its Service
// (nil when it does not exist), as the sync renders it. `kubectl mcs export`
// writes it at once, before any import runs. The caller sets
// ObservedGeneration and LastTransitionTime.
func ValidCondition(clusterID string, export *mcsv1beta1.ServiceExport, service *corev1.Service) metav1.Condition {
	e := newExportedService(clusterID, export, service, nil)
	status := metav1.ConditionFalse
	if e.valid.ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{
		Type:    string(mcsv1beta1.ServiceExportConditionValid),
		Status:  status,
		Reason:  string(e.valid.reason),
		Message: e.valid.message,
	}
}
