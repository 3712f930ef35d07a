package reconcile

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// render builds the desired objects of a service, or nil when there is
// nothing to hold: no valid export and no retained import to keep. With
// valid exports the import follows them; with only retained clusters it
// keeps the spec, labels and annotations it has (nothing newer is known).
func (r *consumerRun) render(key serviceKey, valid []*exportedService, merged *mergedExports, retained []retainedCluster, observed *mcsv1beta1.ServiceImport) *rendered {
	var spec mcsv1beta1.ServiceImportSpec
	var labels, annotations map[string]string
	switch {
	case merged != nil:
		w := merged.winner.service
		spec = mcsv1beta1.ServiceImportSpec{
			Type:                  merged.winner.importType,
			Ports:                 merged.ports,
			SessionAffinity:       sessionAffinityOf(w),
			SessionAffinityConfig: w.Spec.SessionAffinityConfig.DeepCopy(),
			IPFamilies:            slices.Clone(w.Spec.IPFamilies),
			InternalTrafficPolicy: copyPtr(w.Spec.InternalTrafficPolicy),
			TrafficDistribution:   copyPtr(w.Spec.TrafficDistribution),
		}
		labels = maps.Clone(merged.labels)
		annotations = maps.Clone(merged.annotations)
	case len(retained) > 0 && observed != nil:
		spec = *observed.Spec.DeepCopy()
		labels = maps.Clone(observed.Labels)
		annotations = maps.Clone(observed.Annotations)
	default:
		return nil
	}
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ManagedByLabel] = FieldManager
	derived := DerivedServiceName(key.Name)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[DerivedServiceAnnotation] = derived

	spec.IPs = nil
	if spec.Type == mcsv1beta1.ClusterSetIP {
		spec.IPs = r.clusterSetIPs(key.Namespace, derived)
	}

	clusters := clusterIDs(valid)
	var staleIDs []string
	for _, c := range retained {
		clusters = append(clusters, c.id)
		staleIDs = append(staleIDs, c.id)
	}
	clusters = sortedUnique(clusters)
	status := mcsv1beta1.ServiceImportStatus{
		EndpointSliceObjects: mcsv1beta1.EndpointSliceObjectsPresent,
		Clusters:             make([]mcsv1beta1.ClusterStatus, len(clusters)),
		Conditions:           []metav1.Condition{importReadyCondition(clusters, staleIDs, r.now)},
	}
	for i, id := range clusters {
		status.Clusters[i].Cluster = id
	}
	if observed != nil {
		keepTransitionTimes(status.Conditions, observed.Status.Conditions)
	}

	out := &rendered{
		serviceImport: &mcsv1beta1.ServiceImport{
			TypeMeta: serviceImportTypeMeta,
			ObjectMeta: metav1.ObjectMeta{
				Name:        key.Name,
				Namespace:   key.Namespace,
				Labels:      labels,
				Annotations: annotations,
			},
			Spec:   spec,
			Status: status,
		},
		service: derivedService(key, derived, &spec),
	}
	for _, e := range valid {
		out.slices = append(out.slices, mirrorSlices(key, derived, e.cluster, e.slices)...)
	}
	return out
}

// clusterSetIPs is the VIP of a ClusterSetIP import: the cluster IPs the
// consumer allocated to the derived Service. Empty until that Service exists
// (the first run creates it; the next one fills the import in), and never
// taken from a headless Service or one we do not manage.
func (r *consumerRun) clusterSetIPs(namespace, derived string) []string {
	svc := r.services[objectKey{namespace, derived}]
	if svc == nil || !isManaged(svc.Labels) || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	return slices.Clone(ips[:min(len(ips), 2)])
}

// derivedService is the selector-less Service that makes the mirrored slices
// reachable through cluster DNS and kube-proxy. Ports keep their names; the
// source's targetPort is not copied: the slices say where traffic goes.
//
// A ClusterSetIP import gets a ClusterIP Service that honours the import's
// session affinity and asks for dual-stack when the import is dual-stack.
// ipFamilies themselves are left to the consumer, so that the Service can be
// created whatever families the consumer supports. internalTrafficPolicy and
// trafficDistribution are not copied: they describe nodes and zones of the
// exporting cluster, which the consumer's kube-proxy cannot honour.
func derivedService(key serviceKey, derived string, spec *mcsv1beta1.ServiceImportSpec) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta: serviceTypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:      derived,
			Namespace: key.Namespace,
			Labels: map[string]string{
				ManagedByLabel:              FieldManager,
				mcsv1beta1.LabelServiceName: key.Name,
			},
		},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: make([]corev1.ServicePort, len(spec.Ports)),
		},
	}
	for i, p := range spec.Ports {
		// targetPort means nothing without a selector (the slices carry the
		// endpoint ports), but the typed field cannot be left out of the
		// JSON: unset it would be sent as 0. port is what the server
		// defaults it to anyway, so it is stated here.
		svc.Spec.Ports[i] = corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port,
			TargetPort: intstr.FromInt32(p.Port), AppProtocol: copyPtr(p.AppProtocol)}
	}
	if spec.Type == mcsv1beta1.Headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		return svc
	}
	svc.Spec.SessionAffinity = spec.SessionAffinity
	if svc.Spec.SessionAffinity == "" {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	svc.Spec.SessionAffinityConfig = spec.SessionAffinityConfig.DeepCopy()
	policy := corev1.IPFamilyPolicySingleStack
	if len(spec.IPFamilies) == 2 {
		policy = corev1.IPFamilyPolicyPreferDualStack
	}
	svc.Spec.IPFamilyPolicy = &policy
	return svc
}

// ownershipProblems refuses to write over objects kubectl-mcs does not
// manage: a Service holding the derived name, or an EndpointSlice holding a
// mirrored slice's name. ServiceImports are not checked: a hand-made one is
// adopted, as the seed scenario needs.
func (r *consumerRun) ownershipProblems(key serviceKey, desired *rendered) []Problem {
	if desired == nil {
		return nil
	}
	var problems []Problem
	svc := desired.service
	if o := r.services[objectKey{svc.Namespace, svc.Name}]; o != nil {
		owner := o.Labels[mcsv1beta1.LabelServiceName]
		switch {
		case !isManaged(o.Labels):
			problems = append(problems, Problem{Cluster: r.id, Namespace: svc.Namespace, Kind: KindService, Name: svc.Name,
				Message: fmt.Sprintf("Service %s/%s exists in %s and is not managed by kubectl-mcs (%s); kubectl-mcs needs this name for the derived Service of %s",
					svc.Namespace, svc.Name, r.id, describeLabel(o.Labels, ManagedByLabel), key),
				Fix: fixNotManaged})
		case owner != "" && owner != key.Name && DerivedServiceName(owner) == svc.Name:
			// Two services whose names shorten to the same derived name. A
			// Service labeled for a service whose derived name is another
			// one is not a clash: it is that service's leftover, which its
			// own run would delete (addDeletions) and this one takes over.
			problems = append(problems, Problem{Cluster: r.id, Namespace: svc.Namespace, Kind: KindService, Name: svc.Name,
				Message: fmt.Sprintf("Service %s/%s is the derived Service of %s/%s; %s needs the same name",
					svc.Namespace, svc.Name, svc.Namespace, owner, key),
				Fix: "rename one of the two services: their names shorten to the same derived name"})
		}
	}
	for i := range desired.slices {
		s := &desired.slices[i]
		if o := r.slicesByName[objectKey{s.Namespace, s.Name}]; o != nil && !isManagedSlice(o) {
			problems = append(problems, Problem{Cluster: r.id, Namespace: s.Namespace, Kind: KindEndpointSlice, Name: s.Name,
				Message: fmt.Sprintf("EndpointSlice %s/%s exists in %s and is not managed by kubectl-mcs (%s); kubectl-mcs needs this name to mirror %s from %s",
					s.Namespace, s.Name, r.id, describeLabel(o.Labels, discoveryv1.LabelManagedBy), key, s.Labels[mcsv1beta1.LabelSourceCluster]),
				Fix: fixNotManaged})
		}
	}
	return problems
}

func describeLabel(labels map[string]string, name string) string {
	if v, ok := labels[name]; ok {
		return fmt.Sprintf("%s=%s", name, v)
	}
	return "no " + name + " label"
}
