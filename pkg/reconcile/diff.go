package reconcile

import (
	"encoding/json"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Change detection compares desired objects with observed ones on the fields
// kubectl-mcs sets, and nothing else: the server adds defaults (a Service
// gets clusterIP, ipFamilies, targetPort...), other managers add labels, and
// none of that is a reason to write. Where kubectl-mcs owns a whole subtree
// (a ServiceImport's spec and status, a slice's endpoints and ports) the
// comparison is exact, so that a value we stopped setting is noticed too.

// importAction decides what to do with a desired ServiceImport's metadata
// and spec (its status is importStatusAction's). A hand-made import lacks
// our label, so adopting it is an update. The CRD has no defaults, so the
// spec compares exactly (Semantic: nil and empty lists are equal).
func importAction(desired, observed *mcsv1beta1.ServiceImport) Action {
	switch {
	case observed == nil:
		return ActionCreate
	case !mapSubset(desired.Labels, observed.Labels),
		!mapSubset(desired.Annotations, observed.Annotations),
		!equality.Semantic.DeepEqual(desired.Spec, observed.Spec):
		return ActionUpdate
	}
	return ActionUnchanged
}

// importStatusAction decides whether a ServiceImport's status subresource
// must be written: always for a new import (a create cannot set it), else
// when it differs (times compare as instants).
func importStatusAction(desired, observed *mcsv1beta1.ServiceImport) Action {
	if observed == nil || !sameImportStatus(desired.Status, observed.Status) {
		return ActionUpdate
	}
	return ActionUnchanged
}

// sameImportStatus compares status exactly, except for the order of
// status.clusters and status.conditions: both are listType=map (keyed by
// cluster and by type), so the order another writer or the server keeps
// them in means nothing, and must not make the same snapshot an update in
// one listing and unchanged in another. desired is rendered sorted.
func sameImportStatus(desired, observed mcsv1beta1.ServiceImportStatus) bool {
	desired.Clusters = sortedCopy(desired.Clusters, compareClusterStatus)
	observed.Clusters = sortedCopy(observed.Clusters, compareClusterStatus)
	desired.Conditions = sortedCopy(desired.Conditions, compareConditionTypes)
	observed.Conditions = sortedCopy(observed.Conditions, compareConditionTypes)
	return equality.Semantic.DeepEqual(desired, observed)
}

// sortedCopy returns list itself when it is already sorted (the common
// case: what we wrote), a sorted copy otherwise; list is never modified.
func sortedCopy[T any](list []T, cmp func(a, b T) int) []T {
	if slices.IsSortedFunc(list, cmp) {
		return list
	}
	return slices.SortedStableFunc(slices.Values(list), cmp)
}

func compareClusterStatus(a, b mcsv1beta1.ClusterStatus) int {
	return strings.Compare(a.Cluster, b.Cluster)
}

func compareConditionTypes(a, b metav1.Condition) int { return strings.Compare(a.Type, b.Type) }

// serviceAction decides what to do with a desired derived Service.
// spec.clusterIP is immutable, so switching between headless and ClusterIP
// is a replace, never an update.
func serviceAction(desired, observed *corev1.Service) Action {
	switch {
	case observed == nil:
		return ActionCreate
	case isHeadless(desired) != isHeadless(observed):
		return ActionReplace
	case !mapSubset(desired.Labels, observed.Labels),
		!mapSubset(desired.Annotations, observed.Annotations),
		!jsonSubset(desired.Spec, observed.Spec):
		return ActionUpdate
	}
	return ActionUnchanged
}

func isHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// sliceAction decides what to do with a desired mirrored EndpointSlice. It
// runs once per slice on the hot path, so it compares typed fields instead
// of going through JSON.
func sliceAction(desired, observed *discoveryv1.EndpointSlice) Action {
	switch {
	case observed == nil:
		return ActionCreate
	case desired.AddressType != observed.AddressType:
		// addressType is immutable; the name encodes it, so only a slice
		// someone else shaped can get here.
		return ActionReplace
	case !mapSubset(desired.Labels, observed.Labels),
		!slices.EqualFunc(desired.Ports, observed.Ports, sameEndpointPort),
		!slices.EqualFunc(desired.Endpoints, observed.Endpoints, sameMirroredEndpoint):
		return ActionUpdate
	}
	return ActionUnchanged
}

func sameEndpointPort(a, b discoveryv1.EndpointPort) bool {
	name := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	proto := func(p *corev1.Protocol) corev1.Protocol {
		if p == nil {
			return corev1.ProtocolTCP
		}
		return *p
	}
	return name(a.Name) == name(b.Name) && proto(a.Protocol) == proto(b.Protocol) &&
		equalPtr(a.Port, b.Port) && equalPtr(a.AppProtocol, b.AppProtocol)
}

// sameMirroredEndpoint compares the fields a mirrored endpoint carries.
func sameMirroredEndpoint(a, b discoveryv1.Endpoint) bool {
	return slices.Equal(a.Addresses, b.Addresses) &&
		equalPtr(a.Hostname, b.Hostname) && equalPtr(a.Zone, b.Zone) &&
		equalPtr(a.Conditions.Ready, b.Conditions.Ready) &&
		equalPtr(a.Conditions.Serving, b.Conditions.Serving) &&
		equalPtr(a.Conditions.Terminating, b.Conditions.Terminating)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// exportStatusAction compares the conditions kubectl-mcs owns (Valid, Ready,
// Conflict) with the export's current ones; conditions of other types are
// someone else's and ignored.
func exportStatusAction(desired, observed []metav1.Condition) Action {
	for _, d := range desired {
		i := slices.IndexFunc(observed, func(o metav1.Condition) bool { return o.Type == d.Type })
		if i < 0 {
			return ActionUpdate
		}
		o := observed[i]
		if o.Status != d.Status || o.Reason != d.Reason || o.Message != d.Message ||
			o.ObservedGeneration != d.ObservedGeneration || !o.LastTransitionTime.Equal(&d.LastTransitionTime) {
			return ActionUpdate
		}
	}
	return ActionUnchanged
}

func mapSubset(desired, observed map[string]string) bool {
	for k, v := range desired {
		if got, ok := observed[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// jsonSubset reports whether every value set in desired is set to the same
// value in observed, comparing the JSON forms: maps key by key, lists
// element by element with equal length, scalars by value. Empty values in
// desired (null, "", 0, {}, []) constrain nothing: they are what omitempty
// leaves out anyway, and what a zero struct such as an unset targetPort
// (IntOrString) marshals to.
func jsonSubset(desired, observed any) bool {
	return valueSubset(toJSONValue(desired), toJSONValue(observed))
}

func toJSONValue(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		// The API types always marshal; a failure here is a programming error.
		panic(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

func valueSubset(desired, observed any) bool {
	switch d := desired.(type) {
	case map[string]any:
		o, _ := observed.(map[string]any)
		for k, dv := range d {
			if isEmptyValue(dv) {
				continue
			}
			if !valueSubset(dv, o[k]) {
				return false
			}
		}
		return true
	case []any:
		o, _ := observed.([]any)
		if len(d) != len(o) {
			return false
		}
		for i := range d {
			if !valueSubset(d[i], o[i]) {
				return false
			}
		}
		return true
	default:
		return desired == observed
	}
}

func isEmptyValue(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case float64:
		return t == 0
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}
