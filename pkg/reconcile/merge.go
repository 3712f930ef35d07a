package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// conflict is one reason of the Conflict condition with the sentence that
// explains it.
type conflict struct {
	reason  mcsv1beta1.ServiceExportConditionReason
	message string
}

// mergedExports is what the valid exports of one service agree on, or what
// precedence decided where they disagree.
type mergedExports struct {
	winner      *exportedService
	ports       []mcsv1beta1.ServicePort
	labels      map[string]string
	annotations map[string]string
	conflicts   []conflict
}

// winnerField is a property of the Service that the winning export decides
// alone. render gives a normalised, printable value: two exports conflict
// when their renderings differ.
type winnerField struct {
	name   string
	reason mcsv1beta1.ServiceExportConditionReason
	render func(*exportedService) string
}

// Server defaults are folded in (an empty sessionAffinity is None, a nil
// internalTrafficPolicy is Cluster) so that a Service read from an older
// server does not conflict with the same Service read from a newer one.
var (
	typeField = winnerField{"type", mcsv1beta1.ServiceExportReasonTypeConflict,
		func(e *exportedService) string { return string(e.importType) }}
	sessionAffinityField = winnerField{"sessionAffinity", mcsv1beta1.ServiceExportReasonSessionAffinityConflict,
		func(e *exportedService) string { return string(sessionAffinityOf(e.service)) }}
	sessionAffinityConfigField = winnerField{"sessionAffinityConfig", mcsv1beta1.ServiceExportReasonSessionAffinityConfigConflict,
		func(e *exportedService) string {
			return renderSessionAffinityConfig(e.service.Spec.SessionAffinityConfig)
		}}
	internalTrafficPolicyField = winnerField{"internalTrafficPolicy", mcsv1beta1.ServiceExportReasonInternalTrafficPolicyConflict,
		func(e *exportedService) string {
			if p := e.service.Spec.InternalTrafficPolicy; p != nil {
				return string(*p)
			}
			return string(corev1.ServiceInternalTrafficPolicyCluster)
		}}
	trafficDistributionField = winnerField{"trafficDistribution", mcsv1beta1.ServiceExportReasonTrafficDistributionConflict,
		func(e *exportedService) string { return renderOptional(e.service.Spec.TrafficDistribution) }}
	ipFamiliesField = winnerField{"ipFamilies", mcsv1beta1.ServiceExportReasonIPFamilyConflict,
		func(e *exportedService) string {
			if len(e.service.Spec.IPFamilies) == 0 {
				return "(unset)"
			}
			parts := make([]string, len(e.service.Spec.IPFamilies))
			for i, f := range e.service.Spec.IPFamilies {
				parts[i] = string(f)
			}
			return strings.Join(parts, ",")
		}}
)

// mergeExports merges the valid exports of one service, given in precedence
// order (at least one). The winner decides type, session affinity, traffic
// policies, IP families, exported labels and exported annotations (each
// map as a whole); ports are a union where the winner's port wins each
// clash. Every disagreement is
// reported as a conflict, in the order the reasons are listed in the API.
func mergeExports(valid []*exportedService) mergedExports {
	m := mergedExports{winner: valid[0]}
	note := winnerNote(valid)

	m.checkWinnerField(valid, typeField, note)

	union := unionPorts(valid)
	m.ports = union.ports
	if c, ok := portConflict(valid, union, note); ok {
		m.conflicts = append(m.conflicts, c)
	}

	for _, f := range []winnerField{sessionAffinityField, sessionAffinityConfigField,
		internalTrafficPolicyField, trafficDistributionField, ipFamiliesField} {
		m.checkWinnerField(valid, f, note)
	}

	var c []string
	m.labels, c = mergeStringMaps(valid, "exportedLabels", note,
		func(e *exportedService) map[string]string { return e.export.Spec.ExportedLabels })
	if len(c) > 0 {
		m.conflicts = append(m.conflicts, conflict{mcsv1beta1.ServiceExportReasonLabelsConflict, strings.Join(c, "\n")})
	}
	m.annotations, c = mergeStringMaps(valid, "exportedAnnotations", note,
		func(e *exportedService) map[string]string { return e.export.Spec.ExportedAnnotations })
	if len(c) > 0 {
		m.conflicts = append(m.conflicts, conflict{mcsv1beta1.ServiceExportReasonAnnotationsConflict, strings.Join(c, "\n")})
	}
	// Our ownership marker is not the exporters' to set.
	delete(m.labels, ManagedByLabel)
	return m
}

// checkWinnerField records a conflict when any export disagrees with the
// winner on f, e.g. "type: using Headless from cluster1 (oldest export);
// cluster3 has ClusterSetIP".
func (m *mergedExports) checkWinnerField(valid []*exportedService, f winnerField, note string) {
	want := f.render(valid[0])
	var dissent []string
	for _, e := range valid[1:] {
		if got := f.render(e); got != want {
			dissent = append(dissent, e.cluster+" has "+got)
		}
	}
	if len(dissent) == 0 {
		return
	}
	m.conflicts = append(m.conflicts, conflict{f.reason,
		fmt.Sprintf("%s: using %s from %s %s; %s", f.name, want, valid[0].cluster, note, strings.Join(dissent, ", "))})
}

// mergeStringMaps decides exportedLabels or exportedAnnotations. KEP-1645
// ("Labels and annotations") puts each map as a whole under conflict
// resolution, like the type or the port list: the ServiceImport carries the
// winning (oldest) export's map unchanged, and any difference between the
// exports' maps (a key that only some exports set, or another value) is one
// conflict line naming every export that differs, e.g. "exportedLabels:
// using {tier=cache} from cluster1 (oldest export); cluster3 has
// {region=eu, tier=session-store}".
func mergeStringMaps(valid []*exportedService, field, note string, get func(*exportedService) map[string]string) (map[string]string, []string) {
	want := get(valid[0])
	var dissent []string
	for _, e := range valid[1:] {
		// A nil map and an empty one both mean "nothing exported".
		if got := get(e); !maps.Equal(got, want) {
			dissent = append(dissent, e.cluster+" has "+renderStringMap(got))
		}
	}
	merged := maps.Clone(want)
	if len(merged) == 0 {
		merged = nil
	}
	if len(dissent) == 0 {
		return merged, nil
	}
	return merged, []string{fmt.Sprintf("%s: using %s from %s %s; %s",
		field, renderStringMap(want), valid[0].cluster, note, strings.Join(dissent, ", "))}
}

// renderStringMap prints a label or annotation map in key order, "{}" when
// it is empty.
func renderStringMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func sessionAffinityOf(svc *corev1.Service) corev1.ServiceAffinity {
	if svc.Spec.SessionAffinity == "" {
		return corev1.ServiceAffinityNone
	}
	return svc.Spec.SessionAffinity
}

func renderSessionAffinityConfig(c *corev1.SessionAffinityConfig) string {
	if c == nil || c.ClientIP == nil {
		return "(unset)"
	}
	if c.ClientIP.TimeoutSeconds == nil {
		return "clientIP.timeoutSeconds=(unset)"
	}
	return "clientIP.timeoutSeconds=" + strconv.Itoa(int(*c.ClientIP.TimeoutSeconds))
}

func renderOptional(s *string) string {
	if s == nil || *s == "" {
		return "(unset)"
	}
	return *s
}
