package reconcile

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// FuzzReconcile turns the fuzzer's bytes into a clusterset snapshot (see
// fuzzGen) and checks the properties every plan must have, whatever the
// input: determinism, idempotence once applied, one source cluster and at
// most 100 endpoints per mirrored slice, our label on everything we render,
// no write over or deletion of what we do not manage, and problems that
// block their own service only. The seed corpus under
// testdata/fuzz/FuzzReconcile runs with every plain `go test`.
func FuzzReconcile(f *testing.F) {
	f.Add([]byte{}) // all-zero choices: one source, one ClusterIP service
	f.Fuzz(func(t *testing.T, data []byte) {
		fc := generateFuzzCase(data)
		checkFuzzCase(t, fc, data)
	})
}

// Byte-driven generator. The input is read front to back, one choice per
// byte, and an exhausted input reads as zeros; zero always picks the most
// ordinary option. A mutation of one byte therefore changes one decision,
// which is what lets coverage guidance make progress, and every byte string
// is a valid case. Bulk data (endpoints) comes from a PCG seeded by two
// bytes, so that 250 endpoints do not need 250 bytes of input.

var (
	fuzzClusterIDs = []string{"cluster1", "cluster2", "cluster3"}
	fuzzNamespaces = []string{"ns1", "ns2"}
	// The 62-character name gets a shortened, hashed derived name.
	fuzzServiceNames = []string{"db", "web", strings.Repeat("long-service-name-", 3) + "exported"}
	fuzzBaseTime     = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Few creation times, so that precedence ties are common.
	fuzzExportTimes = []metav1.Time{
		metav1.NewTime(fuzzBaseTime.Add(8 * time.Hour)),
		metav1.NewTime(fuzzBaseTime.Add(9 * time.Hour)),
		metav1.NewTime(fuzzBaseTime.Add(9*time.Hour + 30*time.Minute)),
	}
	// Few ports with overlapping names and numbers, so that port conflicts,
	// name clashes and unnamed ports among several are common.
	fuzzPorts = []corev1.ServicePort{
		{Name: "tcp", Port: 3306, Protocol: corev1.ProtocolTCP},
		{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "", Port: 80}, // protocol left to the server's default
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, AppProtocol: ptrTo("dns")},
	}
)

const (
	fuzzConsumerID = "consumer"
	// fuzzMaxEndpoints bounds the endpoints of one snapshot: one export can
	// still have 250 (three mirrored slices), and an input stays well under
	// 50 ms with every check on a shared 2-core machine.
	fuzzMaxEndpoints = 450
	// The previous run happened before the current one; the server
	// simulation moves the clock one hour per applied plan.
	fuzzPreviousNow = 10 * time.Hour
	fuzzCurrentNow  = 13 * time.Hour
)

type fuzzGen struct {
	data []byte
	pos  int
}

func (g *fuzzGen) next() byte {
	if g.pos >= len(g.data) {
		return 0
	}
	b := g.data[g.pos]
	g.pos++
	return b
}

func (g *fuzzGen) intn(n int) int { return int(g.next()) % n }

func (g *fuzzGen) seed() uint64 { return uint64(g.next())<<8 | uint64(g.next()) }

// Service shapes of one export.
const (
	fuzzClusterIP = iota
	fuzzHeadless
	fuzzNodePort
	fuzzExternalName
	fuzzNoService
)

// fuzzExportSpec is what one source holds for one service; the byte fields
// are decoded by addExport and fuzzSourceSlices.
type fuzzExportSpec struct {
	exported   bool // a ServiceExport exists
	kind       int  // fuzzClusterIP...fuzzNoService
	created    int  // index into fuzzExportTimes
	generation int64
	ports      byte // mask over fuzzPorts; 0x40 no ports; 0x80 appProtocol on http
	attrs      byte // session affinity, internalTrafficPolicy, ipFamilies, trafficDistribution
	meta       byte // exportedLabels, exportedAnnotations
	endpoints  int
	layout     byte // slice count and address families
	endpoint   byte // port sets, hostnames, duplicates, odd addresses, spread
	seed       uint64
}

func (g *fuzzGen) exportSpec() fuzzExportSpec {
	b := g.next()
	kinds := [8]int{fuzzClusterIP, fuzzHeadless, fuzzClusterIP, fuzzHeadless, fuzzNodePort, fuzzExternalName, fuzzNoService, fuzzHeadless}
	e := fuzzExportSpec{exported: b>>5 != 7, kind: kinds[b&7]}
	b = g.next()
	e.created, e.generation = int(b)%len(fuzzExportTimes), 1+int64(b/3)%2
	e.ports, e.attrs, e.meta = g.next(), g.next(), g.next()
	class, fine := g.next(), int(g.next())
	switch class % 8 {
	case 0:
		e.endpoints = fine % 5
	case 1:
		e.endpoints = 0
	case 2:
		e.endpoints = 1 + fine%30
	case 3:
		e.endpoints = 99 + fine%3 // around the 100-per-slice boundary
	case 4:
		e.endpoints = 150 + fine%101
	case 5:
		e.endpoints = 200 + fine%51
	case 6:
		e.endpoints = 30 + fine%70
	case 7:
		e.endpoints = 250
	}
	e.layout, e.endpoint = g.next(), g.next()
	e.seed = g.seed()
	return e
}

// fuzzSourceSpec is one exporting cluster; exports[i] is for keys[i].
type fuzzSourceSpec struct {
	id          string
	unreachable bool
	exports     []fuzzExportSpec
}

// fuzzCase is a generated snapshot and what the checks need to know about
// how it was made.
type fuzzCase struct {
	snap Snapshot
	keys []serviceKey // every service the generator may have used
}

// generateFuzzCase builds a snapshot of 1-3 sources exporting 1-3 services
// in 1-2 namespaces to a consumer that may already hold the result of an
// earlier run (of a slightly different clusterset), a hand-made
// ServiceImport, a user-owned Service with a derived name or a user-owned
// EndpointSlice with a mirrored name, and may lack a namespace.
func generateFuzzCase(data []byte) *fuzzCase {
	g := &fuzzGen{data: data}
	nSources, nNamespaces, nServices := 1+g.intn(3), 1+g.intn(2), 1+g.intn(3)

	fc := &fuzzCase{}
	for range nServices {
		ns, name := fuzzNamespaces[g.intn(nNamespaces)], g.intn(len(fuzzServiceNames))
		// Distinct keys: on a repeat, take the next name.
		for i := 0; i < len(fuzzServiceNames); i++ {
			k := serviceKey{ns, fuzzServiceNames[(name+i)%len(fuzzServiceNames)]}
			if !slices.Contains(fc.keys, k) {
				fc.keys = append(fc.keys, k)
				break
			}
		}
	}
	// A key's index is encoded in its endpoint addresses; sorted, the index
	// does not depend on the order the bytes happened to name the keys in.
	slices.SortFunc(fc.keys, compareServiceKeys)

	base := g.intn(len(fuzzClusterIDs))
	var sources []fuzzSourceSpec
	for i := range nSources {
		src := fuzzSourceSpec{id: fuzzClusterIDs[(base+i)%len(fuzzClusterIDs)]}
		for range fc.keys {
			src.exports = append(src.exports, g.exportSpec())
		}
		sources = append(sources, src)
	}
	if u := g.intn(8); u < nSources {
		sources[u].unreachable = true
	}
	if g.intn(16) == 15 && nSources > 1 {
		// Two kubeconfig contexts that resolve to the same cluster id.
		sources[nSources-1].id = sources[0].id
	}

	var namespaces []string
	for _, k := range fc.keys {
		if !slices.Contains(namespaces, k.Namespace) {
			namespaces = append(namespaces, k.Namespace)
		}
	}
	consumerNamespaces := slices.Clone(namespaces)
	switch g.intn(8) {
	case 5:
		consumerNamespaces = consumerNamespaces[1:]
	case 6:
		consumerNamespaces = consumerNamespaces[:len(consumerNamespaces)-1]
	case 7:
		consumerNamespaces = nil
	}
	consumerNamespaces = append(consumerNamespaces, "default")

	mode := g.next()
	fc.snap = Snapshot{
		Now:       metav1.NewTime(fuzzBaseTime.Add(fuzzCurrentNow)),
		Sources:   fc.buildSources(sources, mode&fuzzSourceConsumes != 0),
		Consumers: []Consumer{{ClusterID: fuzzConsumerID, Namespaces: consumerNamespaces}},
	}
	if mode&fuzzPrevious != 0 {
		fc.applyPreviousRun(g, sources, namespaces, mode)
	}
	if mode&fuzzHandMadeImport != 0 {
		fc.addHandMadeImport(g)
	}
	if mode&fuzzUserService != 0 {
		fc.addUserService(g)
	}
	if mode&fuzzUserSlice != 0 {
		fc.addUserSlice(g)
	}
	return fc
}

// Bits of the byte that says what the consumer already holds.
const (
	fuzzPrevious          = 1 << iota // the result of an earlier run
	fuzzPreviousTwice                 // ... applied twice: ClusterSetIP ips known
	fuzzHandMadeImport                // a ServiceImport without our label
	fuzzUserService                   // a Service under a derived name
	fuzzUserSlice                     // an EndpointSlice under a mirrored name
	fuzzKeepGoneNamespace             // objects of a namespace it lacks stay listed
	fuzzSourceConsumes                // a source holds a slice we mirrored into it
)

// applyPreviousRun fills the consumer with what an earlier run of a
// slightly different clusterset left there: possibly a cluster that is not
// among this run's sources, the current unreachable cluster still
// reachable, a few exports that changed since (removed, other type, other
// ports, other endpoints), applied once (ClusterSetIP ips not yet known) or
// twice. Export conditions written then are carried over to the exports
// that still exist.
func (fc *fuzzCase) applyPreviousRun(g *fuzzGen, current []fuzzSourceSpec, namespaces []string, mode byte) {
	p := g.next()
	var previous []fuzzSourceSpec
	for _, src := range current {
		prev := fuzzSourceSpec{id: src.id, exports: slices.Clone(src.exports)}
		prev.unreachable = src.unreachable && p&0x02 != 0
		previous = append(previous, prev)
	}
	if p&0x01 != 0 {
		for _, id := range fuzzClusterIDs {
			if !slices.ContainsFunc(current, func(s fuzzSourceSpec) bool { return s.id == id }) {
				extra := fuzzSourceSpec{id: id}
				for range fc.keys {
					extra.exports = append(extra.exports, g.exportSpec())
				}
				previous = append(previous, extra)
				break
			}
		}
	}
	for range int(p>>2) % 4 {
		src, key := g.intn(len(previous)), g.intn(len(fc.keys))
		previous[src].exports[key] = g.exportSpec()
	}
	prevNamespaces := append(slices.Clone(namespaces), "default")
	if p&0x10 != 0 {
		prevNamespaces = slices.Clone(fc.snap.Consumers[0].Namespaces)
	}

	snap := Snapshot{
		Now:       metav1.NewTime(fuzzBaseTime.Add(fuzzPreviousNow)),
		Sources:   fc.buildSources(previous, false),
		Consumers: []Consumer{{ClusterID: fuzzConsumerID, Namespaces: prevNamespaces}},
	}
	runs := 1
	if mode&fuzzPreviousTwice != 0 {
		runs = 2
	}
	for range runs {
		plan := Reconcile(snap)
		if len(plan.Problems) > 0 {
			break // the caller writes nothing
		}
		snap = applyPlan(snap, plan)
	}

	// A deleted namespace takes its objects along; fuzzKeepGoneNamespace
	// keeps them in the lists anyway, as a reader that does not filter would.
	keep := func(ns string) bool {
		return mode&fuzzKeepGoneNamespace != 0 || slices.Contains(fc.snap.Consumers[0].Namespaces, ns)
	}
	c := &fc.snap.Consumers[0]
	for _, o := range snap.Consumers[0].Imports {
		if keep(o.Namespace) {
			c.Imports = append(c.Imports, o)
		}
	}
	for _, o := range snap.Consumers[0].Services {
		if keep(o.Namespace) {
			c.Services = append(c.Services, o)
		}
	}
	for _, o := range snap.Consumers[0].EndpointSlices {
		if keep(o.Namespace) {
			c.EndpointSlices = append(c.EndpointSlices, o)
		}
	}
	for i := range fc.snap.Sources {
		src := &fc.snap.Sources[i]
		for j := range src.Exports {
			e := &src.Exports[j]
			for _, prev := range snap.Sources {
				if prev.ClusterID != src.ClusterID {
					continue
				}
				for _, pe := range prev.Exports {
					if pe.Namespace == e.Namespace && pe.Name == e.Name {
						e.Status = *pe.Status.DeepCopy()
					}
				}
			}
		}
	}
}

// addHandMadeImport puts a ServiceImport without our label in the consumer,
// as the seed scenario tells users to write, replacing any import there.
func (fc *fuzzCase) addHandMadeImport(g *fuzzGen) {
	key, variant := fc.keys[g.intn(len(fc.keys))], g.next()
	im := mcsv1beta1.ServiceImport{
		TypeMeta: serviceImportTypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, UID: "uid-handmade", ResourceVersion: "7",
			CreationTimestamp: metav1.NewTime(fuzzBaseTime.Add(11 * time.Hour))},
		Spec: mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.Headless},
	}
	if variant&1 != 0 {
		im.Spec.Type = mcsv1beta1.ClusterSetIP
		im.Spec.IPs = []string{"10.96.0.42"}
	}
	for i, p := range fuzzPorts {
		if variant>>1&(1<<i) != 0 {
			im.Spec.Ports = append(im.Spec.Ports, mcsv1beta1.ServicePort{Name: p.Name, Protocol: protocolOrTCP(p.Protocol), Port: p.Port})
		}
	}
	if variant&0x80 != 0 {
		im.Labels = map[string]string{ManagedByLabel: "helm"}
		im.Status.Clusters = []mcsv1beta1.ClusterStatus{{Cluster: "cluster2"}}
		im.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Pending",
			LastTransitionTime: im.CreationTimestamp}}
	}
	c := &fc.snap.Consumers[0]
	c.Imports = slices.DeleteFunc(c.Imports, func(o mcsv1beta1.ServiceImport) bool {
		return o.Namespace == im.Namespace && o.Name == im.Name
	})
	c.Imports = append(c.Imports, im)
}

// addUserService puts a Service under a derived name that we do not manage
// (no label, someone else's label), or one we manage that claims to derive
// from another service, replacing any Service there.
func (fc *fuzzCase) addUserService(g *fuzzGen) {
	key, variant := fc.keys[g.intn(len(fc.keys))], g.next()
	svc := corev1.Service{
		TypeMeta: serviceTypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: DerivedServiceName(key.Name), Namespace: key.Namespace, UID: "uid-user",
			ResourceVersion: "9", CreationTimestamp: metav1.NewTime(fuzzBaseTime.Add(11 * time.Hour))},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.7.7", ClusterIPs: []string{"10.96.7.7"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if variant&0x10 != 0 {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	}
	switch variant % 4 {
	case 1:
		svc.Labels = map[string]string{ManagedByLabel: "helm"}
	case 2:
		// Ours by label, but derived from another service of the universe.
		other := fuzzServiceNames[(slices.Index(fuzzServiceNames, key.Name)+1+int(variant>>2&1))%len(fuzzServiceNames)]
		svc.Labels = map[string]string{ManagedByLabel: FieldManager, mcsv1beta1.LabelServiceName: other}
	case 3:
		svc.Labels = map[string]string{ManagedByLabel: FieldManager}
	}
	c := &fc.snap.Consumers[0]
	c.Services = slices.DeleteFunc(c.Services, func(o corev1.Service) bool {
		return o.Namespace == svc.Namespace && o.Name == svc.Name
	})
	c.Services = append(c.Services, svc)
}

// addUserSlice puts an EndpointSlice under a mirrored slice's name: one of
// the endpointslice controller's, an unlabeled one, or one with our label
// but shaped by hand (wrong address type, no source-cluster label).
func (fc *fuzzCase) addUserSlice(g *fuzzGen) {
	key, cluster, variant := fc.keys[g.intn(len(fc.keys))], fuzzClusterIDs[g.intn(len(fuzzClusterIDs))], g.next()
	derived := DerivedServiceName(key.Name)
	s := discoveryv1.EndpointSlice{
		TypeMeta: endpointSliceTypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:      EndpointSliceName(derived, cluster, discoveryv1.AddressTypeIPv4, int(variant>>4&1)),
			Namespace: key.Namespace, UID: "uid-user-slice", ResourceVersion: "3",
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.1"}}},
	}
	switch variant % 4 {
	case 1:
		s.Labels = map[string]string{discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io", discoveryv1.LabelServiceName: derived}
	case 2:
		s.Labels = map[string]string{discoveryv1.LabelManagedBy: FieldManager, discoveryv1.LabelServiceName: derived,
			mcsv1beta1.LabelServiceName: key.Name, mcsv1beta1.LabelSourceCluster: cluster}
		s.AddressType = discoveryv1.AddressTypeIPv6
		s.Endpoints[0].Addresses = []string{"2001:db8::1"}
	case 3:
		s.Labels = map[string]string{discoveryv1.LabelManagedBy: FieldManager, mcsv1beta1.LabelServiceName: key.Name}
	}
	c := &fc.snap.Consumers[0]
	c.EndpointSlices = slices.DeleteFunc(c.EndpointSlices, func(o discoveryv1.EndpointSlice) bool {
		return o.Namespace == s.Namespace && o.Name == s.Name
	})
	c.EndpointSlices = append(c.EndpointSlices, s)
}

// buildSources renders the source specs as the objects a reader returns.
// mirroredToo adds to the first source a slice kubectl-mcs mirrored into it
// (a cluster can consume as well), which must never count as its own.
func (fc *fuzzCase) buildSources(specs []fuzzSourceSpec, mirroredToo bool) []Source {
	var out []Source
	budget := fuzzMaxEndpoints
	for n, spec := range specs {
		src := Source{ClusterID: spec.id, Unreachable: spec.unreachable}
		cidx := slices.Index(fuzzClusterIDs, spec.id) + 1
		for sidx, key := range fc.keys {
			e := spec.exports[sidx]
			e.endpoints = min(e.endpoints, budget)
			budget -= e.endpoints
			fc.addExport(&src, cidx, sidx, key, e)
		}
		if mirroredToo && n == 0 && len(fc.keys) > 0 {
			other := cidx%len(fuzzClusterIDs) + 1
			key := fc.keys[0]
			src.EndpointSlices = append(src.EndpointSlices, discoveryv1.EndpointSlice{
				TypeMeta: endpointSliceTypeMeta,
				ObjectMeta: metav1.ObjectMeta{Name: EndpointSliceName(DerivedServiceName(key.Name), fuzzClusterIDs[other-1], discoveryv1.AddressTypeIPv4, 0),
					Namespace: key.Namespace,
					Labels: map[string]string{discoveryv1.LabelManagedBy: FieldManager, discoveryv1.LabelServiceName: key.Name,
						mcsv1beta1.LabelServiceName: key.Name, mcsv1beta1.LabelSourceCluster: fuzzClusterIDs[other-1]}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{fuzzAddress(discoveryv1.AddressTypeIPv4, other, 0, 0)}}},
			})
		}
		out = append(out, src)
	}
	return out
}

func (fc *fuzzCase) addExport(src *Source, cidx, sidx int, key serviceKey, e fuzzExportSpec) {
	if e.exported {
		ex := mcsv1beta1.ServiceExport{
			TypeMeta: metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: "ServiceExport"},
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Generation: e.generation,
				CreationTimestamp: fuzzExportTimes[e.created]},
		}
		switch e.meta % 4 {
		case 1:
			ex.Spec.ExportedLabels = map[string]string{"tier": "web"}
		case 2:
			ex.Spec.ExportedLabels = map[string]string{"tier": "api"}
		case 3:
			// Exporters cannot take our ownership marker over.
			ex.Spec.ExportedLabels = map[string]string{"tier": "web", ManagedByLabel: "someone-else"}
		}
		switch e.meta >> 2 % 4 {
		case 1:
			ex.Spec.ExportedAnnotations = map[string]string{"owner": "a"}
		case 2:
			ex.Spec.ExportedAnnotations = map[string]string{"owner": "b"}
		case 3:
			ex.Spec.ExportedAnnotations = map[string]string{"owner": "a", "note": "x"}
		}
		src.Exports = append(src.Exports, ex)
	}
	if e.kind == fuzzNoService {
		return
	}
	svc := corev1.Service{
		TypeMeta:   serviceTypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": key.Name}},
	}
	switch e.kind {
	case fuzzClusterIP, fuzzNodePort:
		ip := fmt.Sprintf("10.%d.0.%d", 100+cidx, sidx+1)
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		if e.kind == fuzzNodePort {
			svc.Spec.Type = corev1.ServiceTypeNodePort
		}
	case fuzzHeadless:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	case fuzzExternalName:
		svc.Spec.Type, svc.Spec.ExternalName, svc.Spec.Selector = corev1.ServiceTypeExternalName, key.Name+".example.com", nil
	}
	if e.ports&0x40 == 0 {
		mask := e.ports & 0x3f
		if mask == 0 {
			mask = 1
		}
		for i, p := range fuzzPorts {
			if mask&(1<<i) != 0 {
				p.TargetPort.IntVal = p.Port + 10000
				if e.kind == fuzzNodePort {
					p.NodePort = 30000 + p.Port
				}
				if e.ports&0x80 != 0 && p.Name == "http" {
					p.AppProtocol = ptrTo("kubernetes.io/h2c")
				}
				svc.Spec.Ports = append(svc.Spec.Ports, p)
			}
		}
	}
	switch e.attrs % 4 {
	case 0:
		svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	case 2:
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	case 3:
		timeout := int32(10800)
		if e.attrs&0x80 != 0 {
			timeout = 60
		}
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
	}
	switch e.attrs >> 2 % 4 {
	case 0, 3:
		svc.Spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyCluster)
	case 2:
		svc.Spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyLocal)
	}
	switch e.attrs >> 4 % 4 {
	case 0:
		svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = []corev1.IPFamily{corev1.IPv4Protocol}, ptrTo(corev1.IPFamilyPolicySingleStack)
	case 2:
		svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = []corev1.IPFamily{corev1.IPv6Protocol}, ptrTo(corev1.IPFamilyPolicySingleStack)
	case 3:
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		svc.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyPreferDualStack)
	}
	if e.attrs&0x40 != 0 {
		svc.Spec.TrafficDistribution = ptrTo(corev1.ServiceTrafficDistributionPreferClose)
	}
	src.Services = append(src.Services, svc)
	src.EndpointSlices = append(src.EndpointSlices, fuzzSourceSlices(cidx, sidx, key, &svc, e)...)
}

// fuzzSourceSlices are the source's own slices of a service: 1-3 slices of
// one address family, or both for dual-stack, or FQDN; the same ports as
// the Service, or a second port set on the last slice (a rollout changing
// targetPort), or ports left to server defaults, or none; endpoints spread
// over the slices, sometimes also in a second slice with other conditions
// (the controller moving them), with random readiness and hostnames.
func fuzzSourceSlices(cidx, sidx int, key serviceKey, svc *corev1.Service, e fuzzExportSpec) []discoveryv1.EndpointSlice {
	if e.endpoints == 0 && e.layout&0x80 == 0 {
		return nil
	}
	nSlices := 1 + int(e.layout)%3
	families := []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	switch e.layout / 3 % 8 {
	case 4, 5:
		families = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
	case 6:
		families = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
		nSlices = max(nSlices, 2)
	case 7:
		families = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN}
	}
	portsMode := e.endpoint % 4
	ports := func(shift int32) []discoveryv1.EndpointPort {
		if portsMode == 3 {
			return nil
		}
		var out []discoveryv1.EndpointPort
		for _, p := range svc.Spec.Ports {
			ep := discoveryv1.EndpointPort{Name: ptrTo(p.Name), Port: ptrTo(p.Port + 10000 + shift), Protocol: ptrTo(protocolOrTCP(p.Protocol)),
				AppProtocol: copyPtr(p.AppProtocol)}
			if portsMode == 2 {
				if p.Name == "" {
					ep.Name = nil
				}
				if p.Protocol == "" {
					ep.Protocol = nil
				}
			}
			out = append(out, ep)
		}
		return out
	}
	out := make([]discoveryv1.EndpointSlice, nSlices)
	for j := range out {
		shift := int32(0)
		if portsMode == 1 && j == nSlices-1 && nSlices > 1 {
			shift = 5
		}
		labels := map[string]string{discoveryv1.LabelServiceName: key.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}
		if e.endpoint&0x40 != 0 && j == 0 && nSlices > 1 {
			// A slice of some other controller, not labeled for the service.
			delete(labels, discoveryv1.LabelServiceName)
		}
		out[j] = discoveryv1.EndpointSlice{
			TypeMeta:    endpointSliceTypeMeta,
			ObjectMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("%s-%c%c%d", key.Name, 'a'+cidx, 'k'+sidx, j), Namespace: key.Namespace, Labels: labels},
			AddressType: families[j%len(families)],
			Ports:       ports(shift),
		}
	}
	rng := rand.New(rand.NewPCG(e.seed, uint64(cidx<<4|sidx)))
	hostnames := e.endpoint&0x04 != 0
	duplicates := e.endpoint&0x08 != 0
	oddAddresses := e.endpoint&0x30 == 0x30
	for i := range e.endpoints {
		j := i % nSlices
		if e.endpoint&0x80 != 0 {
			j = i * nSlices / max(e.endpoints, 1) // chunks instead of round robin
		}
		place := func(j int) {
			s := &out[j]
			ep := discoveryv1.Endpoint{
				Addresses: []string{fuzzAddress(s.AddressType, cidx, sidx, i)},
				Conditions: discoveryv1.EndpointConditions{
					Ready:       fuzzBool(rng, 7, 2),
					Serving:     fuzzBool(rng, 7, 2),
					Terminating: fuzzBool(rng, 1, 8),
				},
			}
			switch {
			case rng.IntN(50) == 0:
				ep.Addresses = nil // the API allows it; there is nothing to mirror
			case oddAddresses && rng.IntN(10) == 0:
				// Two addresses, or one of the other family in this slice.
				other := discoveryv1.AddressTypeIPv6
				if s.AddressType == discoveryv1.AddressTypeIPv6 {
					other = discoveryv1.AddressTypeIPv4
				}
				ep.Addresses = append(ep.Addresses, fuzzAddress(other, cidx, sidx, i))
				if rng.IntN(2) == 0 {
					ep.Addresses = ep.Addresses[1:]
				}
			}
			if hostnames || rng.IntN(5) == 0 {
				ep.Hostname = ptrTo(key.Name[:min(len(key.Name), 20)] + "-" + strconv.Itoa(i))
			}
			if rng.IntN(2) == 0 {
				ep.Zone = ptrTo("zone-" + string(rune('a'+rng.IntN(3))))
			}
			if rng.IntN(2) == 0 {
				ep.NodeName = ptrTo("node-" + strconv.Itoa(rng.IntN(4)))
				ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: key.Namespace, Name: "pod-" + strconv.Itoa(i)}
			}
			s.Endpoints = append(s.Endpoints, ep)
		}
		place(j)
		if duplicates && nSlices > 1 && rng.IntN(8) == 0 {
			// The copy lands in a slice of the same family if there is one.
			k := (j + len(families)) % nSlices
			if k != j {
				place(k)
			}
		}
	}
	return out
}

// fuzzBool is a *bool that is true, false or unset in the given odds
// (trueOdds : falseOdds : 1).
func fuzzBool(rng *rand.Rand, trueOdds, falseOdds int) *bool {
	n := rng.IntN(trueOdds + falseOdds + 1)
	switch {
	case n < trueOdds:
		return ptrTo(true)
	case n < trueOdds+falseOdds:
		return ptrTo(false)
	}
	return nil
}

// fuzzAddress encodes the source cluster and the service into every
// endpoint address, so that the checks can tell where a mirrored endpoint
// came from. IPv4 addresses sit in 198.18.0.0/15, as pod IPs do in the e2e
// clusters.
func fuzzAddress(t discoveryv1.AddressType, cidx, sidx, i int) string {
	itoa := strconv.Itoa
	switch t {
	case discoveryv1.AddressTypeIPv6:
		return "fd00:" + itoa(cidx) + ":" + itoa(sidx) + "::" + strconv.FormatInt(int64(i+1), 16)
	case discoveryv1.AddressTypeFQDN:
		return "ep-" + itoa(i) + ".s" + itoa(sidx) + ".c" + itoa(cidx) + ".example.com"
	}
	return "198.18." + itoa(cidx*40+sidx*10+i/250) + "." + itoa(i%250+1)
}

// fuzzAddressOrigin decodes fuzzAddress: the cluster index (1-based) and the
// service index, or ok=false for an address the generator did not make.
func fuzzAddressOrigin(addr string) (cidx, sidx int, ok bool) {
	var a, b, c, d int
	if n, _ := fmt.Sscanf(addr, "198.18.%d.%d", &c, &d); n == 2 {
		return c / 40, c % 40 / 10, true
	}
	if n, _ := fmt.Sscanf(addr, "fd00:%d:%d::", &a, &b); n == 2 {
		return a, b, true
	}
	if n, _ := fmt.Sscanf(addr, "ep-%d.s%d.c%d.example.com", &d, &b, &a); n == 3 {
		return a, b, true
	}
	return 0, 0, false
}

// Checks.

// checkFuzzCase runs Reconcile on the generated snapshot and checks every
// invariant; on failure it logs the snapshot in the golden input format, so
// that it can become a testdata/<case>/input.yaml.
func checkFuzzCase(t *testing.T, fc *fuzzCase, data []byte) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("snapshot, as a golden input.yaml:\n%s", fuzzSnapshotYAML(fc.snap))
		}
	})
	pristine := copySnapshot(fc.snap)
	plan := reconcileNoPanic(t, fc.snap)

	checkFuzzDeterministic(t, fc.snap, plan, data)
	// reflect first, it is much cheaper; Semantic only to forgive copySnapshot
	// turning an empty list into nil.
	if !reflect.DeepEqual(pristine, fc.snap) && !equality.Semantic.DeepEqual(pristine, fc.snap) {
		t.Fatal("invariant 1 (pure): Reconcile modified its input snapshot")
	}
	checkFuzzSlices(t, fc, plan)
	checkFuzzManagedBy(t, plan)
	checkFuzzOwnership(t, fc, plan)
	checkFuzzProblems(t, fc, plan)
	checkFuzzConsistency(t, fc, plan)
	if len(plan.Problems) == 0 && !t.Failed() {
		// Exactly what TestGolden checks, including the ClusterSetIP ips
		// fill-in on the second pass and a third pass all unchanged.
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("invariant 2 (idempotent): applying the plan panicked: %v\n%s", r, debug.Stack())
			}
		}()
		assertIdempotent(t, fc.snap, plan)
		if t.Failed() {
			t.Log("invariant 2 (idempotent): the plan, applied by the server simulation of server_test.go, does not converge (see above)")
		}
	}
}

func reconcileNoPanic(t *testing.T, s Snapshot) (plan Plan) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Reconcile panicked (a bad snapshot must give a Problem, never a panic): %v\n%s", r, debug.Stack())
		}
	}()
	return Reconcile(s)
}

// checkFuzzDeterministic: invariant 1. Shuffle seeds come from the input,
// so that a failure reproduces from the corpus file alone.
func checkFuzzDeterministic(t *testing.T, snap Snapshot, plan Plan, data []byte) {
	t.Helper()
	want := planBytes(t, plan)
	if again := planBytes(t, reconcileNoPanic(t, snap)); !bytes.Equal(again, want) {
		t.Fatalf("invariant 1 (deterministic): a second Reconcile of the same snapshot differs:\n%s", lineDiff(want, again))
	}
	h := fnv.New64a()
	h.Write(data)
	seed := h.Sum64()
	for i := range uint64(2) {
		shuffled := shuffleSnapshot(snap, rand.New(rand.NewPCG(seed, i)))
		if got := planBytes(t, reconcileNoPanic(t, shuffled)); !bytes.Equal(got, want) {
			t.Fatalf("invariant 1 (deterministic): Reconcile of a shuffled snapshot (order of sources, objects, endpoints) differs:\n%s",
				lineDiff(want, got))
		}
	}
}

// checkFuzzSlices: invariant 3. Every mirrored slice holds endpoints of the
// one synced source cluster its label names, of the service it is labeled
// for, and at most maxEndpointsPerSlice of them; its name says the same.
func checkFuzzSlices(t *testing.T, fc *fuzzCase, plan Plan) {
	t.Helper()
	synced := fuzzSynced(fc.snap)
	for _, s := range plan.Consumers[0].EndpointSlices {
		cluster, svc := s.Labels[mcsv1beta1.LabelSourceCluster], s.Labels[mcsv1beta1.LabelServiceName]
		if len(s.Endpoints) > maxEndpointsPerSlice {
			t.Errorf("invariant 3 (slice size): EndpointSlice %s/%s holds %d endpoints, more than %d",
				s.Namespace, s.Name, len(s.Endpoints), maxEndpointsPerSlice)
		}
		if !synced[cluster] {
			t.Errorf("invariant 3 (one source cluster): EndpointSlice %s/%s has source-cluster %q, not a cluster synced in this run",
				s.Namespace, s.Name, cluster)
		}
		sidx := slices.Index(fc.keys, serviceKey{s.Namespace, svc})
		if sidx < 0 {
			t.Errorf("invariant 3: EndpointSlice %s/%s is labeled for service %q, which nobody exports", s.Namespace, s.Name, svc)
		}
		derived := DerivedServiceName(svc)
		if s.Labels[discoveryv1.LabelServiceName] != derived || !strings.HasPrefix(s.Name, derived+"."+cluster+"-") {
			t.Errorf("invariant 3: EndpointSlice %s/%s (%s=%s) does not match service %s from %s",
				s.Namespace, s.Name, discoveryv1.LabelServiceName, s.Labels[discoveryv1.LabelServiceName], svc, cluster)
		}
		cidx := slices.Index(fuzzClusterIDs, cluster) + 1
		for _, ep := range s.Endpoints {
			for _, addr := range ep.Addresses {
				c, si, ok := fuzzAddressOrigin(addr)
				if !ok || c != cidx || si != sidx {
					t.Errorf("invariant 3 (one source cluster): EndpointSlice %s/%s labeled source-cluster=%s service=%s "+
						"holds %s, an endpoint of cluster%d service #%d",
						s.Namespace, s.Name, cluster, svc, addr, c, si)
				}
			}
		}
	}
}

// checkFuzzManagedBy: invariant 4.
func checkFuzzManagedBy(t *testing.T, plan Plan) {
	t.Helper()
	for _, o := range plan.Consumers[0].Imports {
		if o.Labels[ManagedByLabel] != FieldManager {
			t.Errorf("invariant 4 (managed-by): ServiceImport %s/%s has %s=%q, want %q",
				o.Namespace, o.Name, ManagedByLabel, o.Labels[ManagedByLabel], FieldManager)
		}
	}
	for _, o := range plan.Consumers[0].Services {
		if o.Labels[ManagedByLabel] != FieldManager {
			t.Errorf("invariant 4 (managed-by): Service %s/%s has %s=%q, want %q", o.Namespace, o.Name, ManagedByLabel, o.Labels[ManagedByLabel], FieldManager)
		}
	}
	for _, o := range plan.Consumers[0].EndpointSlices {
		if o.Labels[discoveryv1.LabelManagedBy] != FieldManager {
			t.Errorf("invariant 4 (managed-by): EndpointSlice %s/%s has %s=%q, want %q",
				o.Namespace, o.Name, discoveryv1.LabelManagedBy, o.Labels[discoveryv1.LabelManagedBy], FieldManager)
		}
	}
}

// checkFuzzOwnership: invariant 5. A delete (or a replace, which deletes
// first) targets an object the consumer holds with our managed-by label;
// a Service or EndpointSlice is never updated over someone else's (a
// hand-made ServiceImport is adopted, by design). A slice mirrored from a
// cluster that was not synced in this run is never deleted.
func checkFuzzOwnership(t *testing.T, fc *fuzzCase, plan Plan) {
	t.Helper()
	c := &fc.snap.Consumers[0]
	synced := fuzzSynced(fc.snap)
	for _, ch := range plan.Changes {
		if ch.Action == ActionCreate || ch.Action == ActionUnchanged || ch.Kind == KindServiceExportStatus {
			continue
		}
		if ch.Cluster != c.ClusterID {
			t.Errorf("invariant 5 (ownership): %s is not in the consumer %s", ch, c.ClusterID)
			continue
		}
		var managedBy string
		var found bool
		switch ch.Kind {
		case KindServiceImportStatus:
			continue // the status of an import this plan renders (checked by consistency)
		case KindServiceImport:
			if ch.Action == ActionUpdate {
				continue // adopting a hand-made import is an update
			}
			if i := indexOf(c.Imports, ch.Namespace, ch.Name, func(o *mcsv1beta1.ServiceImport) metav1.Object { return o }); i >= 0 {
				managedBy, found = c.Imports[i].Labels[ManagedByLabel], true
			}
		case KindService:
			if i := indexOf(c.Services, ch.Namespace, ch.Name, func(o *corev1.Service) metav1.Object { return o }); i >= 0 {
				managedBy, found = c.Services[i].Labels[ManagedByLabel], true
			}
		case KindEndpointSlice:
			if i := indexOf(c.EndpointSlices, ch.Namespace, ch.Name, func(o *discoveryv1.EndpointSlice) metav1.Object { return o }); i >= 0 {
				s := &c.EndpointSlices[i]
				managedBy, found = s.Labels[discoveryv1.LabelManagedBy], true
				if id := s.Labels[mcsv1beta1.LabelSourceCluster]; ch.Action == ActionDelete && id != "" && !synced[id] {
					t.Errorf("invariant 5 (stale clusters kept): %s deletes a slice mirrored from %s, which was not synced in this run", ch, id)
				}
			}
		}
		switch {
		case !found:
			t.Errorf("invariant 5 (ownership): %s targets an object the consumer does not hold", ch)
		case managedBy != FieldManager:
			t.Errorf("invariant 5 (ownership): %s targets an object not managed by %s (managed-by %q)", ch, FieldManager, managedBy)
		}
	}
}

// checkFuzzProblems: invariant 6. A problem blocks its own service: nothing
// of that service is rendered or changed, in any cluster; a problem that is
// not about a service (a cluster id) blocks none.
func checkFuzzProblems(t *testing.T, fc *fuzzCase, plan Plan) {
	t.Helper()
	blocked := map[serviceKey]Problem{}
	for _, p := range plan.Problems {
		var keys []serviceKey
		for _, k := range fc.keys {
			derived := DerivedServiceName(k.Name)
			switch p.Kind {
			case KindService:
				if k.Namespace == p.Namespace && derived == p.Name {
					keys = append(keys, k)
				}
			case KindEndpointSlice:
				if k.Namespace == p.Namespace && strings.HasPrefix(p.Name, derived+".") {
					keys = append(keys, k)
				}
			}
		}
		switch {
		case p.Kind == KindCluster:
		case len(keys) == 0:
			t.Errorf("invariant 6 (problems): problem %q names no service being imported", p.Error())
		}
		for _, k := range keys {
			blocked[k] = p
		}
	}
	// The other services go on as if there were no problem: every export
	// of a synced source gets its status, and whatever has a valid export
	// is imported.
	synced := fuzzSynced(fc.snap)
	for _, k := range fc.keys {
		if _, ok := blocked[k]; ok {
			continue
		}
		for _, src := range fc.snap.Sources {
			exports := func(e mcsv1beta1.ServiceExport) bool { return e.Namespace == k.Namespace && e.Name == k.Name }
			if !synced[src.ClusterID] || !slices.ContainsFunc(src.Exports, exports) {
				continue
			}
			if !slices.ContainsFunc(plan.ExportStatuses, func(st ExportStatus) bool {
				return st.Cluster == src.ClusterID && st.Namespace == k.Namespace && st.Name == k.Name
			}) {
				t.Errorf("invariant 6 (problems block their own service only): %s is not blocked, yet its export in %s gets no status", k, src.ClusterID)
			}
		}
		if !slices.Contains(fc.snap.Consumers[0].Namespaces, k.Namespace) {
			if fuzzHasValidExport(fc.snap, k) && !slices.ContainsFunc(plan.Consumers[0].MissingNamespaces, func(m MissingNamespace) bool {
				return m.Namespace == k.Namespace && slices.Contains(m.Services, k.Name)
			}) {
				t.Errorf("namespace sameness: %s has a valid export and the consumer lacks its namespace, yet it is not listed as missing", k)
			}
			continue
		}
		if fuzzHasValidExport(fc.snap, k) && !slices.ContainsFunc(plan.Consumers[0].Imports, func(im mcsv1beta1.ServiceImport) bool {
			return im.Namespace == k.Namespace && im.Name == k.Name
		}) {
			t.Errorf("invariant 6 (problems block their own service only): %s is not blocked and has a valid export, yet it is not imported", k)
		}
	}
	if len(blocked) == 0 {
		return
	}
	names := func(k serviceKey, kind, namespace, name string) bool {
		derived := DerivedServiceName(k.Name)
		if namespace != k.Namespace {
			return false
		}
		switch kind {
		case KindServiceImport, KindServiceImportStatus, KindServiceExportStatus:
			return name == k.Name
		case KindService:
			return name == derived
		case KindEndpointSlice:
			return strings.HasPrefix(name, derived+".")
		}
		return false
	}
	for k, p := range blocked {
		for _, ch := range plan.Changes {
			if names(k, ch.Kind, ch.Namespace, ch.Name) {
				t.Errorf("invariant 6 (problems block their own service): %s is blocked by %q, yet the plan has %s", k, p.Error(), ch)
			}
		}
		for _, o := range plan.Consumers[0].Imports {
			if names(k, KindServiceImport, o.Namespace, o.Name) {
				t.Errorf("invariant 6: %s is blocked by %q, yet ServiceImport %s/%s is rendered", k, p.Error(), o.Namespace, o.Name)
			}
		}
		for _, o := range plan.Consumers[0].Services {
			if names(k, KindService, o.Namespace, o.Name) {
				t.Errorf("invariant 6: %s is blocked by %q, yet Service %s/%s is rendered", k, p.Error(), o.Namespace, o.Name)
			}
		}
		for _, o := range plan.Consumers[0].EndpointSlices {
			if names(k, KindEndpointSlice, o.Namespace, o.Name) {
				t.Errorf("invariant 6: %s is blocked by %q, yet EndpointSlice %s/%s is rendered", k, p.Error(), o.Namespace, o.Name)
			}
		}
		for _, o := range plan.ExportStatuses {
			if names(k, KindServiceExportStatus, o.Namespace, o.Name) {
				t.Errorf("invariant 6: %s is blocked by %q, yet the status of %s's export is rendered", k, p.Error(), o.Cluster)
			}
		}
	}
}

// checkFuzzConsistency: the plan's lists agree with each other. Every
// rendered object has exactly one create/update/replace/unchanged change
// and no delete; every such change names a rendered object; everything
// lands in a namespace the consumer has; every export of a synced source
// gets a status unless its service is blocked.
func checkFuzzConsistency(t *testing.T, fc *fuzzCase, plan Plan) {
	t.Helper()
	type ref struct{ cluster, kind, namespace, name string }
	rendered := map[ref]int{}
	for _, o := range plan.Consumers[0].Imports {
		rendered[ref{fuzzConsumerID, KindServiceImport, o.Namespace, o.Name}]++
		rendered[ref{fuzzConsumerID, KindServiceImportStatus, o.Namespace, o.Name}]++
	}
	for _, o := range plan.Consumers[0].Services {
		rendered[ref{fuzzConsumerID, KindService, o.Namespace, o.Name}]++
	}
	for _, o := range plan.Consumers[0].EndpointSlices {
		rendered[ref{fuzzConsumerID, KindEndpointSlice, o.Namespace, o.Name}]++
	}
	for _, o := range plan.ExportStatuses {
		rendered[ref{o.Cluster, KindServiceExportStatus, o.Namespace, o.Name}]++
	}
	changed := map[ref]int{}
	for _, ch := range plan.Changes {
		r := ref{ch.Cluster, ch.Kind, ch.Namespace, ch.Name}
		changed[r]++
		if rendered[r] == 0 && ch.Action != ActionDelete {
			t.Errorf("consistency: %s names an object the plan does not render", ch)
		}
		if rendered[r] > 0 && ch.Action == ActionDelete {
			t.Errorf("consistency: %s deletes an object the plan renders", ch)
		}
		if ch.Cluster == fuzzConsumerID && !slices.Contains(fc.snap.Consumers[0].Namespaces, ch.Namespace) {
			t.Errorf("consistency: %s is in a namespace the consumer does not have", ch)
		}
	}
	for r, n := range rendered {
		if n != 1 || changed[r] != 1 {
			t.Errorf("consistency: %s %s/%s in %s is rendered %d times and changed %d times, want once each",
				r.kind, r.namespace, r.name, r.cluster, n, changed[r])
		}
	}
}

// fuzzSynced are the sources whose lists this run uses: reachable, with a
// DNS-label id no other source shares.
func fuzzSynced(s Snapshot) map[string]bool {
	count := map[string]int{}
	for _, src := range s.Sources {
		count[src.ClusterID]++
	}
	synced := map[string]bool{}
	for _, src := range s.Sources {
		if !src.Unreachable && count[src.ClusterID] == 1 && len(validation.IsDNS1123Label(src.ClusterID)) == 0 {
			synced[src.ClusterID] = true
		}
	}
	return synced
}

// fuzzHasValidExport: a synced source exports k and has a Service for it
// that is not ExternalName, i.e. there is something to import.
func fuzzHasValidExport(s Snapshot, k serviceKey) bool {
	synced := fuzzSynced(s)
	for _, src := range s.Sources {
		if !synced[src.ClusterID] {
			continue
		}
		exported := slices.ContainsFunc(src.Exports, func(e mcsv1beta1.ServiceExport) bool { return e.Namespace == k.Namespace && e.Name == k.Name })
		valid := slices.ContainsFunc(src.Services, func(svc corev1.Service) bool {
			return svc.Namespace == k.Namespace && svc.Name == k.Name && svc.Spec.Type != corev1.ServiceTypeExternalName
		})
		if exported && valid {
			return true
		}
	}
	return false
}

// fuzzSnapshotYAML writes a snapshot in the format of testdata/<case>/
// input.yaml (see caseInput), so that a failing input becomes a golden
// case by saving the log.
func fuzzSnapshotYAML(s Snapshot) []byte {
	type source struct {
		ClusterID   string `json:"clusterID"`
		Unreachable bool   `json:"unreachable,omitempty"`
		Objects     []any  `json:"objects"`
	}
	var in struct {
		Now      metav1.Time `json:"now"`
		Consumer struct {
			ClusterID  string   `json:"clusterID"`
			Namespaces []string `json:"namespaces"`
			Objects    []any    `json:"objects"`
		} `json:"consumer"`
		Sources []source `json:"sources"`
	}
	in.Now = s.Now
	in.Consumer.ClusterID, in.Consumer.Namespaces = s.Consumers[0].ClusterID, s.Consumers[0].Namespaces
	for _, o := range s.Consumers[0].Imports {
		in.Consumer.Objects = append(in.Consumer.Objects, o)
	}
	for _, o := range s.Consumers[0].Services {
		in.Consumer.Objects = append(in.Consumer.Objects, o)
	}
	for _, o := range s.Consumers[0].EndpointSlices {
		in.Consumer.Objects = append(in.Consumer.Objects, o)
	}
	for _, src := range s.Sources {
		out := source{ClusterID: src.ClusterID, Unreachable: src.Unreachable}
		for _, o := range src.Exports {
			out.Objects = append(out.Objects, o)
		}
		for _, o := range src.Services {
			out.Objects = append(out.Objects, o)
		}
		for _, o := range src.EndpointSlices {
			out.Objects = append(out.Objects, o)
		}
		in.Sources = append(in.Sources, out)
	}
	b, err := yaml.Marshal(in)
	if err != nil {
		return []byte(err.Error())
	}
	return b
}
