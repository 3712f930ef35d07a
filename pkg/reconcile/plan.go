package reconcile

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Plan is the outcome of one run. The object lists hold complete desired
// objects (TypeMeta, labels, ServiceImport status) restricted to the fields
// kubectl-mcs owns, ready for server-side apply with FieldManager. When
// Problems is not empty the caller must write nothing at all.
type Plan struct {
	// Problems are blocking errors; a service with a problem has nothing
	// rendered and no change listed, in any consumer.
	Problems []Problem `json:"problems,omitempty"`
	// Changes lists every desired object with its action, then every
	// deletion, in the order the caller must apply them; each names the
	// cluster it is applied in.
	Changes []Change `json:"changes,omitempty"`
	// Consumers holds what each consumer must hold, in cluster id order.
	Consumers []ConsumerPlan `json:"consumers,omitempty"`
	// ExportStatuses are the desired Valid, Ready and Conflict conditions of
	// every ServiceExport read from a reachable source. They are a function
	// of the sources alone, the same whichever consumers are synced, so
	// that syncs of different consumers never undo each other.
	ExportStatuses []ExportStatus `json:"exportStatuses,omitempty"`
}

// ConsumerPlan is what one consumer must hold.
type ConsumerPlan struct {
	Cluster        string                      `json:"cluster"`
	Imports        []mcsv1beta1.ServiceImport  `json:"imports,omitempty"`
	Services       []corev1.Service            `json:"services,omitempty"`
	EndpointSlices []discoveryv1.EndpointSlice `json:"endpointSlices,omitempty"`
	// Stale lists, per import, the clusters that were not synced in this run
	// (unreachable or not among the sources) and whose mirrored slices were
	// therefore kept as they are.
	Stale []StaleCluster `json:"stale,omitempty"`
	// MissingNamespaces are the namespaces of valid exports that do not
	// exist in this consumer: nothing is imported there (namespace
	// sameness), and the caller says so.
	MissingNamespaces []MissingNamespace `json:"missingNamespaces,omitempty"`
}

// MissingNamespace is an exported namespace a consumer lacks, with the
// services that would be imported into it.
type MissingNamespace struct {
	Namespace string   `json:"namespace"`
	Services  []string `json:"services"`
}

// Consumer returns the plan of the consumer with the given cluster id, or
// nil.
func (p *Plan) Consumer(clusterID string) *ConsumerPlan {
	for i := range p.Consumers {
		if p.Consumers[i].Cluster == clusterID {
			return &p.Consumers[i]
		}
	}
	return nil
}

// ExportStatus is the desired status of one ServiceExport in a source.
type ExportStatus struct {
	Cluster    string             `json:"cluster"`
	Namespace  string             `json:"namespace"`
	Name       string             `json:"name"`
	Conditions []metav1.Condition `json:"conditions"`
}

// Action says what the caller has to do with one object.
type Action string

const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionUnchanged Action = "unchanged"
	// ActionReplace is only used for a derived Service that must switch
	// between headless and ClusterIP: spec.clusterIP is immutable, so the
	// caller deletes the Service and creates it again.
	ActionReplace Action = "replace"
	ActionDelete  Action = "delete"
)

// Kinds named in Changes and Problems.
const (
	KindServiceImport = "ServiceImport"
	// KindServiceImportStatus is the status subresource of a ServiceImport,
	// written on its own so that a change to one half never rewrites the
	// other.
	KindServiceImportStatus = "ServiceImportStatus"
	KindService             = "Service"
	KindEndpointSlice       = "EndpointSlice"
	KindServiceExportStatus = "ServiceExportStatus"
	KindCluster             = "Cluster"
)

// Change is one step of the plan, applied in the cluster it names.
type Change struct {
	Cluster   string `json:"cluster"`
	Action    Action `json:"action"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s %s %s/%s", c.Cluster, c.Action, c.Kind, c.Namespace, c.Name)
}

// Problem is a blocking error with the fix a user can apply.
type Problem struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Message   string `json:"message"`
	Fix       string `json:"fix"`
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s: %s (fix: %s)", p.Cluster, p.Message, p.Fix)
}

// StaleCluster is a cluster that still contributes to an import through the
// slices mirrored from it in an earlier run.
type StaleCluster struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// Reason is StaleUnreachable or StaleNotSynced.
	Reason string `json:"reason"`
	// EndpointSlices are the kept slices, by name.
	EndpointSlices []string `json:"endpointSlices,omitempty"`
}

// Reasons for StaleCluster.
const (
	StaleUnreachable = "unreachable"
	StaleNotSynced   = "not synced in this run"
)
