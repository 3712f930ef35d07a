package reconcile

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// This file is a small stand-in for the API servers in tests: it applies a
// plan to a snapshot the way server-side apply would (our fields replaced,
// other labels kept, server defaults and allocated cluster IPs added).

func copySnapshot(s Snapshot) Snapshot {
	out := Snapshot{Now: s.Now}
	for _, con := range s.Consumers {
		c := Consumer{ClusterID: con.ClusterID, Namespaces: append([]string(nil), con.Namespaces...)}
		for i := range con.Imports {
			c.Imports = append(c.Imports, *con.Imports[i].DeepCopy())
		}
		for i := range con.Services {
			c.Services = append(c.Services, *con.Services[i].DeepCopy())
		}
		for i := range con.EndpointSlices {
			c.EndpointSlices = append(c.EndpointSlices, *con.EndpointSlices[i].DeepCopy())
		}
		out.Consumers = append(out.Consumers, c)
	}
	for _, src := range s.Sources {
		c := Source{ClusterID: src.ClusterID, Unreachable: src.Unreachable}
		for i := range src.Exports {
			c.Exports = append(c.Exports, *src.Exports[i].DeepCopy())
		}
		for i := range src.Services {
			c.Services = append(c.Services, *src.Services[i].DeepCopy())
		}
		for i := range src.EndpointSlices {
			c.EndpointSlices = append(c.EndpointSlices, *src.EndpointSlices[i].DeepCopy())
		}
		out.Sources = append(out.Sources, c)
	}
	return out
}

// shuffleSnapshot reorders every list whose order carries no meaning.
// Observed consumer slices keep their endpoint order: that order is what a
// rerun compares against.
func shuffleSnapshot(s Snapshot, rng *rand.Rand) Snapshot {
	out := copySnapshot(s)
	shuffle(rng, out.Sources)
	for i := range out.Sources {
		src := &out.Sources[i]
		shuffle(rng, src.Exports)
		for j := range src.Exports {
			shuffle(rng, src.Exports[j].Status.Conditions)
		}
		shuffle(rng, src.Services)
		for j := range src.Services {
			shuffle(rng, src.Services[j].Spec.Ports)
		}
		shuffle(rng, src.EndpointSlices)
		for j := range src.EndpointSlices {
			shuffle(rng, src.EndpointSlices[j].Endpoints)
			shuffle(rng, src.EndpointSlices[j].Ports)
		}
	}
	shuffle(rng, out.Consumers)
	for i := range out.Consumers {
		con := &out.Consumers[i]
		shuffle(rng, con.Namespaces)
		shuffle(rng, con.Imports)
		for j := range con.Imports {
			shuffle(rng, con.Imports[j].Status.Clusters)
			shuffle(rng, con.Imports[j].Status.Conditions)
		}
		shuffle(rng, con.Services)
		shuffle(rng, con.EndpointSlices)
	}
	return out
}

func shuffle[T any](rng *rand.Rand, list []T) {
	rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
}

// applyPlan returns the snapshot the next run would read after the caller
// applied p, one hour later.
func applyPlan(s Snapshot, p Plan) Snapshot {
	out := copySnapshot(s)
	out.Now = metav1.NewTime(s.Now.Add(time.Hour))
	for _, ch := range p.Changes {
		if ch.Action == ActionUnchanged {
			continue
		}
		var c *Consumer
		var cp *ConsumerPlan
		if ch.Kind != KindServiceExportStatus {
			c = &out.Consumers[slices.IndexFunc(out.Consumers, func(c Consumer) bool { return c.ClusterID == ch.Cluster })]
			cp = p.Consumer(ch.Cluster)
		}
		switch ch.Kind {
		case KindServiceImport:
			i := indexOf(c.Imports, ch.Namespace, ch.Name, func(o *mcsv1beta1.ServiceImport) metav1.Object { return o })
			if ch.Action == ActionDelete {
				c.Imports = removeAt(c.Imports, i)
				continue
			}
			d := find(cp.Imports, ch.Namespace, ch.Name, func(o *mcsv1beta1.ServiceImport) metav1.Object { return o }).DeepCopy()
			if i >= 0 {
				o := &c.Imports[i]
				o.Labels = mergeLabels(o.Labels, d.Labels)
				o.Annotations = mergeLabels(o.Annotations, d.Annotations)
				o.Spec = d.Spec
				bumpResourceVersion(&o.ObjectMeta)
			} else {
				created(&d.ObjectMeta, s.Now)
				d.Status = mcsv1beta1.ServiceImportStatus{}
				c.Imports = append(c.Imports, *d)
			}
		case KindServiceImportStatus:
			// Written after the import itself, which exists by now.
			o := &c.Imports[indexOf(c.Imports, ch.Namespace, ch.Name, func(o *mcsv1beta1.ServiceImport) metav1.Object { return o })]
			o.Status = find(cp.Imports, ch.Namespace, ch.Name, func(o *mcsv1beta1.ServiceImport) metav1.Object { return o }).Status
			bumpResourceVersion(&o.ObjectMeta)
		case KindService:
			i := indexOf(c.Services, ch.Namespace, ch.Name, func(o *corev1.Service) metav1.Object { return o })
			if ch.Action == ActionDelete {
				c.Services = removeAt(c.Services, i)
				continue
			}
			d := find(cp.Services, ch.Namespace, ch.Name, func(o *corev1.Service) metav1.Object { return o }).DeepCopy()
			if i >= 0 && ch.Action == ActionUpdate {
				o := &c.Services[i]
				d.Spec.ClusterIP, d.Spec.ClusterIPs = o.Spec.ClusterIP, o.Spec.ClusterIPs
				o.Labels = mergeLabels(o.Labels, d.Labels)
				o.Spec = d.Spec
				defaultService(o)
				bumpResourceVersion(&o.ObjectMeta)
				continue
			}
			if i >= 0 { // replace: delete, then create
				c.Services = removeAt(c.Services, i)
			}
			created(&d.ObjectMeta, s.Now)
			defaultService(d)
			c.Services = append(c.Services, *d)
		case KindEndpointSlice:
			i := indexOf(c.EndpointSlices, ch.Namespace, ch.Name, func(o *discoveryv1.EndpointSlice) metav1.Object { return o })
			if ch.Action == ActionDelete {
				c.EndpointSlices = removeAt(c.EndpointSlices, i)
				continue
			}
			d := find(cp.EndpointSlices, ch.Namespace, ch.Name, func(o *discoveryv1.EndpointSlice) metav1.Object { return o }).DeepCopy()
			if i >= 0 {
				o := &c.EndpointSlices[i]
				o.Labels = mergeLabels(o.Labels, d.Labels)
				o.AddressType, o.Endpoints, o.Ports = d.AddressType, d.Endpoints, d.Ports
				bumpResourceVersion(&o.ObjectMeta)
			} else {
				created(&d.ObjectMeta, s.Now)
				c.EndpointSlices = append(c.EndpointSlices, *d)
			}
		case KindServiceExportStatus:
			applyExportStatus(&out, p, ch)
		default:
			panic("unknown kind " + ch.Kind)
		}
	}
	return out
}

func applyExportStatus(s *Snapshot, p Plan, ch Change) {
	var want []metav1.Condition
	for _, st := range p.ExportStatuses {
		if st.Cluster == ch.Cluster && st.Namespace == ch.Namespace && st.Name == ch.Name {
			want = st.Conditions
		}
	}
	for i := range s.Sources {
		if s.Sources[i].ClusterID != ch.Cluster {
			continue
		}
		for j := range s.Sources[i].Exports {
			e := &s.Sources[i].Exports[j]
			if e.Namespace != ch.Namespace || e.Name != ch.Name {
				continue
			}
			for _, cond := range want {
				replaced := false
				for k := range e.Status.Conditions {
					if e.Status.Conditions[k].Type == cond.Type {
						e.Status.Conditions[k], replaced = cond, true
					}
				}
				if !replaced {
					e.Status.Conditions = append(e.Status.Conditions, cond)
				}
			}
		}
	}
}

// defaultService adds what the API server sets on a Service: allocated
// cluster IPs, families, session affinity, traffic policy, target ports.
func defaultService(svc *corev1.Service) {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	} else if svc.Spec.ClusterIP == "" {
		h := fnv.New32a()
		h.Write([]byte(svc.Namespace + "/" + svc.Name))
		sum := h.Sum32()
		svc.Spec.ClusterIP = fmt.Sprintf("10.96.%d.%d", sum>>8&0xff, sum&0xff|1)
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		if p := svc.Spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyPreferDualStack {
			svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, fmt.Sprintf("fd00:10:96::%x", sum&0xffff|1))
		}
	}
	if svc.Spec.IPFamilyPolicy == nil {
		policy := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &policy
	}
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	if len(svc.Spec.ClusterIPs) == 2 {
		svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, corev1.IPv6Protocol)
	}
	if svc.Spec.SessionAffinity == "" {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if svc.Spec.InternalTrafficPolicy == nil {
		policy := corev1.ServiceInternalTrafficPolicyCluster
		svc.Spec.InternalTrafficPolicy = &policy
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.TargetPort.IntVal == 0 && p.TargetPort.StrVal == "" {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
}

func created(m *metav1.ObjectMeta, now metav1.Time) {
	m.UID = types.UID("uid-" + m.Namespace + "-" + m.Name)
	m.ResourceVersion = "1"
	m.CreationTimestamp = now
}

func bumpResourceVersion(m *metav1.ObjectMeta) {
	m.ResourceVersion += "1"
}

func mergeLabels(observed, desired map[string]string) map[string]string {
	if len(desired) == 0 {
		return observed
	}
	out := maps.Clone(observed)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, desired)
	return out
}

func indexOf[T any](list []T, namespace, name string, meta func(*T) metav1.Object) int {
	for i := range list {
		if m := meta(&list[i]); m.GetNamespace() == namespace && m.GetName() == name {
			return i
		}
	}
	return -1
}

func find[T any](list []T, namespace, name string, meta func(*T) metav1.Object) *T {
	i := indexOf(list, namespace, name, meta)
	if i < 0 {
		panic(fmt.Sprintf("plan changes %s/%s but does not render it", namespace, name))
	}
	return &list[i]
}

func removeAt[T any](list []T, i int) []T {
	if i < 0 {
		panic("plan deletes an object the consumer does not hold")
	}
	return append(list[:i:i], list[i+1:]...)
}

func findService(list []corev1.Service, namespace, name string) *corev1.Service {
	i := indexOf(list, namespace, name, func(o *corev1.Service) metav1.Object { return o })
	if i < 0 {
		return nil
	}
	return &list[i]
}

// lineDiff shows where two renderings first differ, with some context.
func lineDiff(want, got []byte) string {
	w := strings.Split(string(want), "\n")
	g := strings.Split(string(got), "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b bytes.Buffer
	from := max(0, i-3)
	fmt.Fprintf(&b, "first difference at line %d\n--- want\n", i+1)
	for _, l := range w[from:min(len(w), i+8)] {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("+++ got\n")
	for _, l := range g[from:min(len(g), i+8)] {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
