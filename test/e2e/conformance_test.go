package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// The project's own KEP-1645 conformance suite: one spec per rule, run
// against `kubectl mcs sync --watch` over the three shared clusters, each
// workload a Deployment behind a Service.
const (
	// confImportWithin bounds how long a spec waits for a ServiceImport (or
	// an export condition, or a removal) to follow a change.
	confImportWithin = 20 * time.Second
	// confSlicesWithin bounds how long a spec waits for EndpointSlices.
	confSlicesWithin = 60 * time.Second
	// controllerManagedBy is the managed-by value of the in-cluster
	// endpointslice controller; MCS slices must carry another one.
	controllerManagedBy = "endpointslice-controller.k8s.io"
)

var (
	confClusters          = []string{"cluster1", "cluster2", "cluster3"}
	serviceExportsV1beta1 = serviceExportsGVR.GroupResource().WithVersion("v1beta1")
)

// TestConformance checks the KEP-1645 rules, one subtest per rule, against
// one `sync --watch` over cluster1..3 in namespace conf-ns. cluster1 (and
// cluster3, where two exporters are needed) export; cluster2 never does, so
// it is the consumer the specs that are not about exporters look at.
func TestConformance(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	ns := "conf-ns"
	createNamespaceEverywhere(ctx, t, set, ns)
	stop := startSyncWatch(ctx, t, set, ns)
	defer stop()

	// Spec 1, KEP-1645 "Importing services": every cluster of the clusterset imports a service while at least one cluster exports it, the exporters too; type Headless for clusterIP None, else ClusterSetIP.
	t.Run("ImportedInEveryClusterWhileExported", func(t *testing.T) { confImportedEverywhere(ctx, t, set, ns) })
	// Spec 2, KEP-1645 "ClusterSetIP" / "Headless": a ClusterSetIP import has one VIP per IP family, in the order of ipFamilies; a Headless one has none.
	t.Run("ClusterSetIPsPerFamily", func(t *testing.T) { confIPs(ctx, t, set, ns) })
	// Spec 3, KEP-1645 "Service Port" / "Session Affinity" / traffic policies: the exported Service's ports, sessionAffinity(+Config), internalTrafficPolicy and trafficDistribution are in the import.
	t.Run("ServicePropertiesImported", func(t *testing.T) { confProperties(ctx, t, set, ns) })
	// Spec 4, KEP-1645 "Constraints and Conflict Resolution": ports are the union, the oldest export wins any conflict, and every export of the service gets Conflict=True with the reason.
	t.Run("ConflictResolution", func(t *testing.T) { confConflicts(ctx, t, set, ns) })
	// Spec 5, KEP-1645 "Exporting services": an ExternalName Service cannot be exported (Valid=False/InvalidServiceType) and is imported nowhere.
	t.Run("ExternalNameNotExported", func(t *testing.T) { confExternalName(ctx, t, set, ns) })
	// Spec 6, KEP-1645 "EndpointSlice": every importing cluster, the exporter included, gets MCS slices labeled with the service and the source cluster id, not managed by the endpointslice controller, removed on unexport.
	t.Run("EndpointSlicesInEveryCluster", func(t *testing.T) { confEndpointSlices(ctx, t, set, ns) })
	// Spec 7, KEP-1645 "ServiceExport" (v1beta1 exportedLabels/exportedAnnotations): only those reach the ServiceImport, never the Service's or the ServiceExport's own metadata.
	t.Run("OnlyExportedMetadataImported", func(t *testing.T) { confExportedMetadata(ctx, t, set, ns) })
	// Not a KEP rule but this implementation's: a derived Service is
	// kubectl mcs's, and exporting it would put a cluster's imported
	// endpoints back into the clusterset as its own. export refuses it,
	// and an export made by hand is Valid=False/InvalidServiceType.
	t.Run("DerivedServiceNotExported", func(t *testing.T) { confDerivedService(ctx, t, set, ns) })
}

// confDerivedService: a derived Service cannot be exported.
func confDerivedService(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	createWorkload(ctx, t, set.Cluster("cluster1"), ns, confService("c8-web", false))
	kubectlMCS(t, set.Kubeconfig, "export", "c8-web", "-n", ns, "--context", "cluster1").mustSucceed(t)
	if ok, state := within(ctx, confImportWithin, importsIn(ctx, set, ns, "c8-web", confClusters, mcsv1beta1.ClusterSetIP, "cluster1")); !ok {
		t.Fatalf("c8-web exported by cluster1: want a ServiceImport in every cluster within %s; saw %s", confImportWithin, state)
	}
	derived := reconcile.DerivedServiceName("c8-web")
	kubectlMCS(t, set.Kubeconfig, "export", derived, "-n", ns, "--context", "cluster2").
		mustFail(t, "cluster2", "Service "+ns+"/"+derived+" is the Service kubectl mcs derived from the ServiceImport "+ns+"/c8-web", "export Service "+ns+"/c8-web in a cluster that runs it")

	consumer := set.Cluster("cluster2")
	createV1beta1Export(ctx, t, consumer, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: derived, Namespace: ns}})
	eventually(ctx, t, confImportWithin, derived+": Valid=False/InvalidServiceType on cluster2's hand-made export", func() (bool, string) {
		c := meta.FindStatusCondition(getExport(ctx, t, consumer, ns, derived).Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(mcsv1beta1.ServiceExportReasonInvalidServiceType), conditionString(c)
	})
	staysUnimported(ctx, t, set, ns, derived, "an export of the derived Service "+derived)
	kubectlMCS(t, set.Kubeconfig, "unexport", derived, "-n", ns, "--context", "cluster2", "--force").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "unexport", "c8-web", "-n", ns, "--context", "cluster1").mustSucceed(t)
}

// confImportedEverywhere: spec 1.
func confImportedEverywhere(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	want := map[string]mcsv1beta1.ServiceImportType{"c1-vip": mcsv1beta1.ClusterSetIP, "c1-headless": mcsv1beta1.Headless}
	for _, name := range []string{"cluster1", "cluster3"} {
		createWorkload(ctx, t, set.Cluster(name), ns, confService("c1-vip", false))
	}
	createWorkload(ctx, t, set.Cluster("cluster1"), ns, confService("c1-headless", true))
	kubectlMCS(t, set.Kubeconfig, "export", "c1-vip", "c1-headless", "-n", ns, "--context", "cluster1").mustSucceed(t)

	for svc, typ := range want {
		if ok, state := within(ctx, confImportWithin, importsIn(ctx, set, ns, svc, confClusters, typ, "cluster1")); !ok {
			t.Errorf("%s exported by cluster1: want a %s ServiceImport in every cluster (cluster1 included) within %s; saw %s", svc, typ, confImportWithin, state)
		}
	}

	// A second exporter, then the first one leaves: still imported everywhere.
	kubectlMCS(t, set.Kubeconfig, "export", "c1-vip", "-n", ns, "--context", "cluster3").mustSucceed(t)
	if ok, state := within(ctx, confImportWithin, importsIn(ctx, set, ns, "c1-vip", confClusters, mcsv1beta1.ClusterSetIP, "cluster1", "cluster3")); !ok {
		t.Errorf("c1-vip exported by cluster1 and cluster3: want a ClusterSetIP ServiceImport from both in every cluster within %s; saw %s", confImportWithin, state)
	}
	kubectlMCS(t, set.Kubeconfig, "unexport", "c1-vip", "-n", ns, "--context", "cluster1").mustSucceed(t)
	if ok, state := within(ctx, confImportWithin, importsIn(ctx, set, ns, "c1-vip", confClusters, mcsv1beta1.ClusterSetIP, "cluster3")); !ok {
		t.Errorf("c1-vip still exported by cluster3 after cluster1's unexport: want its ServiceImport (status.clusters [cluster3]) in every cluster within %s; saw %s", confImportWithin, state)
	}

	// The last unexport: gone from every cluster.
	kubectlMCS(t, set.Kubeconfig, "unexport", "c1-vip", "-n", ns, "--context", "cluster3").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "unexport", "c1-headless", "-n", ns, "--context", "cluster1").mustSucceed(t)
	for svc := range want {
		if ok, state := within(ctx, confImportWithin, importsGone(ctx, set, ns, svc)); !ok {
			t.Errorf("%s: the last export is gone, want no ServiceImport in any cluster within %s; saw %s", svc, confImportWithin, state)
		}
	}
}

// confIPs: spec 2, seen from the consumer cluster2.
func confIPs(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	exporter, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	createWorkload(ctx, t, exporter, ns, confService("c2-vip", false))
	createWorkload(ctx, t, exporter, ns, confService("c2-headless", true))
	kubectlMCS(t, set.Kubeconfig, "export", "c2-vip", "c2-headless", "-n", ns, "--context", "cluster1").mustSucceed(t)

	si := waitServiceImport(ctx, t, consumer, ns, "c2-vip", "ClusterSetIP with ips", func(si *mcsv1beta1.ServiceImport) bool {
		return si.Spec.Type == mcsv1beta1.ClusterSetIP && len(si.Spec.IPs) > 0
	})
	if len(si.Spec.IPFamilies) == 0 || len(si.Spec.IPs) != len(si.Spec.IPFamilies) {
		t.Errorf("%s: ClusterSetIP import: ips %v, ipFamilies %v: want one IP per family", consumer.Name, si.Spec.IPs, si.Spec.IPFamilies)
	}
	for i, ip := range si.Spec.IPs {
		addr, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
			t.Errorf("%s: ips[%d] = %q is not an IP address: %v", consumer.Name, i, ip, err)
		case !addr.Is4():
			t.Errorf("%s: ips[%d] = %s, want an IPv4 address (these clusters are IPv4 only)", consumer.Name, i, ip)
		case i < len(si.Spec.IPFamilies) && si.Spec.IPFamilies[i] != corev1.IPv4Protocol:
			t.Errorf("%s: ips[%d] = %s is IPv4 but ipFamilies[%d] = %s: want the IPs in the order of ipFamilies", consumer.Name, i, ip, i, si.Spec.IPFamilies[i])
		}
	}

	si = waitServiceImport(ctx, t, consumer, ns, "c2-headless", "Headless", func(si *mcsv1beta1.ServiceImport) bool {
		return si.Spec.Type == mcsv1beta1.Headless
	})
	if len(si.Spec.IPs) != 0 {
		t.Errorf("%s: Headless import has ips %v, want none", consumer.Name, si.Spec.IPs)
	}
}

// confProperties: spec 3, seen from the consumer cluster2.
func confProperties(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	exporter, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	svc := confService("c3-web", false)
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, AppProtocol: new("http"), TargetPort: intstr.FromInt32(8080)},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(5353)},
	}
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(int32(600))}}
	svc.Spec.InternalTrafficPolicy = new(corev1.ServiceInternalTrafficPolicyLocal)
	svc.Spec.TrafficDistribution = new(corev1.ServiceTrafficDistributionPreferClose)
	createWorkload(ctx, t, exporter, ns, svc)
	kubectlMCS(t, set.Kubeconfig, "export", "c3-web", "-n", ns, "--context", "cluster1").mustSucceed(t)

	si := waitServiceImport(ctx, t, consumer, ns, "c3-web", "ClusterSetIP", func(si *mcsv1beta1.ServiceImport) bool {
		return si.Spec.Type == mcsv1beta1.ClusterSetIP
	})
	if got, want := portStrings(si.Spec.Ports), []string{"dns:53/UDP", "http:80/TCP(http)"}; !slices.Equal(got, want) {
		t.Errorf("%s: import ports %v, want the Service's %v", consumer.Name, got, want)
	}
	if si.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
		t.Errorf("%s: import sessionAffinity %q, want ClientIP", consumer.Name, si.Spec.SessionAffinity)
	}
	if c := si.Spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil || *c.ClientIP.TimeoutSeconds != 600 {
		t.Errorf("%s: import sessionAffinityConfig %s, want clientIP.timeoutSeconds 600", consumer.Name, jsonString(c))
	}
	if p := si.Spec.InternalTrafficPolicy; p == nil || *p != corev1.ServiceInternalTrafficPolicyLocal {
		t.Errorf("%s: import internalTrafficPolicy %s, want Local", consumer.Name, jsonString(p))
	}
	if d := si.Spec.TrafficDistribution; d == nil || *d != corev1.ServiceTrafficDistributionPreferClose {
		t.Errorf("%s: import trafficDistribution %s, want PreferClose", consumer.Name, jsonString(d))
	}
}

// confConflicts: spec 4. cluster1 exports each service first, cluster3
// (whose Service differs in one property) a second later; cluster2 consumes.
func confConflicts(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	first, second, consumer := set.Cluster("cluster1"), set.Cluster("cluster3"), set.Cluster("cluster2")
	withPorts := func(s *corev1.Service, ports ...corev1.ServicePort) *corev1.Service {
		s.Spec.Ports = ports
		return s
	}
	port := func(name string, port int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}
	}
	clientIP := func(s *corev1.Service) *corev1.Service {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		return s
	}
	services := []struct {
		name          string
		first, second *corev1.Service
		// labels: exported with a v1beta1 ServiceExport carrying these
		// exportedLabels instead of `kubectl mcs export`.
		labelsFirst, labelsSecond map[string]string
	}{
		{name: "c4-union",
			first:  withPorts(confService("c4-union", false), port("http", 80)),
			second: withPorts(confService("c4-union", false), port("http", 80), port("metrics", 9090))},
		{name: "c4-port",
			first:  withPorts(confService("c4-port", false), port("http", 80)),
			second: withPorts(confService("c4-port", false), port("http", 8080))},
		{name: "c4-type", first: confService("c4-type", false), second: confService("c4-type", true)},
		{name: "c4-affinity", first: clientIP(confService("c4-affinity", false)), second: confService("c4-affinity", false)},
		{name: "c4-labels", first: confService("c4-labels", false), second: confService("c4-labels", false),
			labelsFirst: map[string]string{"tier": "gold"}, labelsSecond: map[string]string{"tier": "silver", "zone": "eu"}},
	}
	exportAll := func(c *localcluster.Cluster, second bool) {
		var viaPlugin []string
		for _, s := range services {
			labels := s.labelsFirst
			if second {
				labels = s.labelsSecond
			}
			if labels == nil {
				viaPlugin = append(viaPlugin, s.name)
				continue
			}
			createV1beta1Export(ctx, t, c, &mcsv1beta1.ServiceExport{
				ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: ns},
				Spec:       mcsv1beta1.ServiceExportSpec{ExportedLabels: labels},
			})
		}
		kubectlMCS(t, set.Kubeconfig, append([]string{"export", "-n", ns, "--context", c.Name}, viaPlugin...)...).mustSucceed(t)
	}
	for _, s := range services {
		createWorkload(ctx, t, first, ns, s.first)
		createWorkload(ctx, t, second, ns, s.second)
	}
	exportAll(first, false)
	time.Sleep(1100 * time.Millisecond) // creationTimestamps have one-second resolution
	exportAll(second, true)
	for _, s := range services {
		older, newer := getExport(ctx, t, first, ns, s.name), getExport(ctx, t, second, ns, s.name)
		if !older.CreationTimestamp.Before(&newer.CreationTimestamp) {
			t.Fatalf("%s: cluster1's export (created %s) is not older than cluster3's (created %s)", s.name, older.CreationTimestamp, newer.CreationTimestamp)
		}
	}

	t.Run("PortsUnion", func(t *testing.T) {
		waitServiceImport(ctx, t, consumer, ns, "c4-union", "ports http:80/TCP and metrics:9090/TCP (the union)", func(si *mcsv1beta1.ServiceImport) bool {
			return slices.Equal(portStrings(si.Spec.Ports), []string{"http:80/TCP", "metrics:9090/TCP"})
		})
	})
	t.Run("PortConflict", func(t *testing.T) {
		eventually(ctx, t, confImportWithin, "c4-port: Conflict=True/PortConflict on the exports of cluster1 and cluster3", conflictOnEvery(ctx, t, set, ns, "c4-port", mcsv1beta1.ServiceExportReasonPortConflict))
		waitServiceImport(ctx, t, consumer, ns, "c4-port", "port http:80/TCP (cluster1's, the oldest export)", func(si *mcsv1beta1.ServiceImport) bool {
			return slices.Equal(portStrings(si.Spec.Ports), []string{"http:80/TCP"})
		})
	})
	t.Run("TypeConflict", func(t *testing.T) {
		eventually(ctx, t, confImportWithin, "c4-type: Conflict=True/TypeConflict on the exports of cluster1 and cluster3", conflictOnEvery(ctx, t, set, ns, "c4-type", mcsv1beta1.ServiceExportReasonTypeConflict))
		waitServiceImport(ctx, t, consumer, ns, "c4-type", "type ClusterSetIP (cluster1's, the oldest export)", func(si *mcsv1beta1.ServiceImport) bool {
			return si.Spec.Type == mcsv1beta1.ClusterSetIP
		})
	})
	t.Run("SessionAffinityConflict", func(t *testing.T) {
		eventually(ctx, t, confImportWithin, "c4-affinity: Conflict=True/SessionAffinityConflict on the exports of cluster1 and cluster3", conflictOnEvery(ctx, t, set, ns, "c4-affinity", mcsv1beta1.ServiceExportReasonSessionAffinityConflict))
		waitServiceImport(ctx, t, consumer, ns, "c4-affinity", "sessionAffinity ClientIP (cluster1's, the oldest export)", func(si *mcsv1beta1.ServiceImport) bool {
			return si.Spec.SessionAffinity == corev1.ServiceAffinityClientIP
		})
	})
	t.Run("LabelsConflict", func(t *testing.T) {
		eventually(ctx, t, confImportWithin, "c4-labels: Conflict=True/LabelsConflict on the exports of cluster1 and cluster3", conflictOnEvery(ctx, t, set, ns, "c4-labels", mcsv1beta1.ServiceExportReasonLabelsConflict))
		// KEP-1645 "Labels and Annotations": the map is resolved as a
		// whole, so cluster3's zone, a key cluster1 does not set, does
		// not travel either.
		waitServiceImport(ctx, t, consumer, ns, "c4-labels", "labels {tier=gold} only (cluster1's map, the oldest export)", func(si *mcsv1beta1.ServiceImport) bool {
			_, zone := si.Labels["zone"]
			return si.Labels["tier"] == "gold" && !zone
		})
	})
}

// confExternalName: spec 5. `kubectl mcs export` refuses an ExternalName
// Service, so the ServiceExport is made directly, as a user could.
func confExternalName(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	exporter := set.Cluster("cluster1")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "c5-external", Namespace: ns},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
	}
	if _, err := exporter.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createV1beta1Export(ctx, t, exporter, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "c5-external", Namespace: ns}})

	eventually(ctx, t, confImportWithin, "c5-external: Valid=False/InvalidServiceType on cluster1's export", func() (bool, string) {
		c := meta.FindStatusCondition(getExport(ctx, t, exporter, ns, "c5-external").Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(mcsv1beta1.ServiceExportReasonInvalidServiceType), conditionString(c)
	})
	staysUnimported(ctx, t, set, ns, "c5-external", "an ExternalName export")
}

// staysUnimported checks that an invalid export is imported nowhere. Its
// condition is written by the sync that would have imported it, so the
// import must stay absent for a while after that too.
func staysUnimported(ctx context.Context, t *testing.T, set *localcluster.Set, ns, svc, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if ok, state := importsGone(ctx, set, ns, svc)(); !ok {
			t.Fatalf("%s was imported: %s", what, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// confEndpointSlices: spec 6.
func confEndpointSlices(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	exporter := set.Cluster("cluster1")
	svc := confService("c6-web", true)
	createWorkload(ctx, t, exporter, ns, svc, 2)
	addrs := readyAddresses(ctx, t, exporter, ns, "c6-web")
	kubectlMCS(t, set.Kubeconfig, "export", "c6-web", "-n", ns, "--context", "cluster1").mustSucceed(t)

	if ok, state := within(ctx, confSlicesWithin, mcsSlicesIn(ctx, set, ns, "c6-web", "cluster1", addrs)); !ok {
		t.Errorf("c6-web exported by cluster1 (ready endpoints %v): want MCS EndpointSlices (labeled %s=c6-web, %s=cluster1, managed-by not %s) holding those endpoints in every cluster, cluster1 included, within %s; saw %s",
			addrs, mcsv1beta1.LabelServiceName, mcsv1beta1.LabelSourceCluster, controllerManagedBy, confSlicesWithin, state)
	}
	kubectlMCS(t, set.Kubeconfig, "unexport", "c6-web", "-n", ns, "--context", "cluster1").mustSucceed(t)
	if ok, state := within(ctx, confImportWithin, mcsSlicesIn(ctx, set, ns, "c6-web", "cluster1", nil)); !ok {
		t.Errorf("c6-web unexported: want its MCS EndpointSlices gone from every cluster within %s; saw %s", confImportWithin, state)
	}
}

// confExportedMetadata: spec 7, seen from the consumer cluster2.
func confExportedMetadata(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	exporter, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	svc := confService("c7-web", false)
	svc.Labels = map[string]string{"conf.example/service-label": "yes"}
	svc.Annotations = map[string]string{"conf.example/service-annotation": "yes"}
	createWorkload(ctx, t, exporter, ns, svc)
	createV1beta1Export(ctx, t, exporter, &mcsv1beta1.ServiceExport{
		ObjectMeta: metav1.ObjectMeta{Name: "c7-web", Namespace: ns,
			Labels:      map[string]string{"conf.example/export-label": "yes"},
			Annotations: map[string]string{"conf.example/export-annotation": "yes"}},
		Spec: mcsv1beta1.ServiceExportSpec{
			ExportedLabels:      map[string]string{"conf.example/exported-label": "yes"},
			ExportedAnnotations: map[string]string{"conf.example/exported-annotation": "yes"},
		},
	})

	si := waitServiceImport(ctx, t, consumer, ns, "c7-web", "the exportedLabels and exportedAnnotations", func(si *mcsv1beta1.ServiceImport) bool {
		return si.Labels["conf.example/exported-label"] == "yes" && si.Annotations["conf.example/exported-annotation"] == "yes"
	})
	for _, k := range []string{"conf.example/service-label", "conf.example/export-label"} {
		if v, ok := si.Labels[k]; ok {
			t.Errorf("%s: ServiceImport has label %s=%s, which is not in spec.exportedLabels (labels %v)", consumer.Name, k, v, si.Labels)
		}
	}
	for _, k := range []string{"conf.example/service-annotation", "conf.example/export-annotation"} {
		if v, ok := si.Annotations[k]; ok {
			t.Errorf("%s: ServiceImport has annotation %s=%s, which is not in spec.exportedAnnotations (annotations %v)", consumer.Name, k, v, si.Annotations)
		}
	}
}

// TestWatchWritesNothingWhenIdleOrRestarted: three clusters export the same
// ten services; once a watch has reached the steady state, the same watch
// started again with nothing changed, and left idle, writes nothing.
func TestWatchWritesNothingWhenIdleOrRestarted(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ns := "idle-ns"
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("idle-%d", i))
	}
	createNamespaceEverywhere(ctx, t, set, ns)
	for _, c := range set.Clusters {
		for i, name := range names {
			createWorkload(ctx, t, c, ns, confService(name, i%2 == 1))
		}
	}
	for _, c := range set.Clusters {
		kubectlMCS(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", c.Name).mustSucceed(t)
	}

	stop := startSyncWatch(ctx, t, set, ns)
	if ok, state := within(ctx, confSlicesWithin, steadyState(ctx, t, set, ns, names)); !ok {
		t.Errorf("the first watch did not reach the steady state (every cluster has every ServiceImport, with ips where ClusterSetIP, and slices from all three exporters) within %s: %s", confSlicesWithin, state)
	}
	time.Sleep(2 * time.Second) // let the last status writes land
	first := stop()
	t.Logf("first watch (to the steady state): %d write requests %v", first.totalWrites(), first.writes)

	idleCtx, stopIdle := context.WithCancel(ctx)
	go func() { time.Sleep(10 * time.Second); stopIdle() }()
	second := kubectlMCSWatch(idleCtx, t, set.Kubeconfig, syncWatchArgs(ns)...)
	stopIdle()
	t.Logf("second watch (restarted with nothing changed, then ~8s idle): %d write requests %v", second.totalWrites(), second.writes)
	if second.code != 0 {
		t.Errorf("the second watch exited %d:\n%s", second.code, headTail(second.stderr, 20))
	}
	if n := second.totalWrites(); n != 0 {
		t.Errorf("the watch restarted with nothing changed and left idle sent %d write requests (%v), want 0", n, second.writes)
	}
}

// --- helpers ---

func syncWatchArgs(ns string) []string {
	return []string{"sync", "-n", ns, "--clusters", strings.Join(confClusters, ","), "--watch"}
}

// startSyncWatch runs `kubectl mcs sync -n NS --clusters cluster1,cluster2,
// cluster3 --watch` in the background; the returned func stops it, checks it
// exited cleanly and returns the run (call it once).
func startSyncWatch(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) func() pluginRun {
	t.Helper()
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan pluginRun, 1)
	go func() { done <- kubectlMCSWatch(watchCtx, t, set.Kubeconfig, syncWatchArgs(ns)...) }()
	stopped := false
	var run pluginRun
	return func() pluginRun {
		if stopped {
			return run
		}
		stopped = true
		stopWatch()
		select {
		case run = <-done:
			if run.code != 0 {
				t.Errorf("the watch exited %d:\n%s", run.code, headTail(run.stderr, 20))
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the watch did not stop within 30s of its cancellation")
		}
		return run
	}
}

// kubectlMCSWatch is kubectlMCSContext for a long --watch run, whose log
// (one line per decision) can run to megabytes: it logs the first and last
// lines of the output only.
func kubectlMCSWatch(ctx context.Context, t *testing.T, kubeconfig string, args ...string) pluginRun {
	t.Helper()
	r := pluginrun.Run(ctx, kubeconfig, args...)
	t.Logf("$ kubectl mcs %s\n%s%s(exit %d)", strings.Join(args, " "), headTail(r.Stdout, 20), headTail(r.Stderr, 20), r.Code)
	return pluginRun{args: args, stdout: r.Stdout, stderr: r.Stderr, code: r.Code, writes: r.Writes, reads: r.Reads}
}

// headTail keeps the first and last n lines of out.
func headTail(out string, n int) string {
	lines := strings.SplitAfter(out, "\n")
	if len(lines) <= 2*n+1 {
		return out
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("... %d lines left out ...\n", len(lines)-2*n) + strings.Join(lines[len(lines)-n:], "")
}

// within polls cond like eventually but reports instead of failing, so a
// spec can say what is missing and still check the rest.
func within(ctx context.Context, d time.Duration, cond func() (bool, string)) (bool, string) {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d, true, func(context.Context) (bool, error) {
		ok, state := cond()
		last = state
		return ok, nil
	})
	return err == nil, last
}

// confService is a Service in front of the Deployment createWorkload makes
// for it: one port http 80 -> 8080, headless or ClusterIP.
func confService(name string, headless bool) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
		}},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return svc
}

// createWorkload creates a Deployment (one replica unless given) named
// like svc, and svc selecting its pods, in namespace ns of c, and waits for
// the Service's ready endpoints.
func createWorkload(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string, svc *corev1.Service, replicas ...int32) {
	t.Helper()
	n := int32(1)
	if len(replicas) > 0 {
		n = replicas[0]
	}
	labels := map[string]string{"app": svc.Name}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.example/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	svc = svc.DeepCopy()
	svc.Namespace = ns
	svc.Spec.Selector = labels
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	waitForReadyEndpoints(ctx, t, c, ns, svc.Name, int(n))
}

// createV1beta1Export creates a ServiceExport as given, in v1beta1 (the
// version with spec.exportedLabels/exportedAnnotations).
func createV1beta1Export(ctx context.Context, t *testing.T, c *localcluster.Cluster, e *mcsv1beta1.ServiceExport) {
	t.Helper()
	e = e.DeepCopy()
	e.TypeMeta = metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: "ServiceExport"}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(e)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	if _, err := c.Dynamic().Resource(serviceExportsV1beta1).Namespace(e.Namespace).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("%s: creating v1beta1 ServiceExport %s/%s: %v", c.Name, e.Namespace, e.Name, err)
	}
}

// importsIn checks that every named cluster has a ServiceImport of svc of
// the given type whose status.clusters are exactly the exporters.
func importsIn(ctx context.Context, set *localcluster.Set, ns, svc string, in []string, typ mcsv1beta1.ServiceImportType, exporters ...string) func() (bool, string) {
	return func() (bool, string) {
		ok := true
		var states []string
		for _, name := range in {
			si, err := getServiceImportErr(ctx, set.Cluster(name), ns, svc)
			if err != nil {
				ok = false
				states = append(states, name+": "+importErrString(err))
				continue
			}
			got := clustersOf(si)
			slices.Sort(got)
			ok = ok && si.Spec.Type == typ && slices.Equal(got, exporters)
			states = append(states, fmt.Sprintf("%s: %s from %v", name, si.Spec.Type, got))
		}
		return ok, strings.Join(states, "; ")
	}
}

// importsGone checks that no cluster has a ServiceImport of svc.
func importsGone(ctx context.Context, set *localcluster.Set, ns, svc string) func() (bool, string) {
	return func() (bool, string) {
		ok := true
		var states []string
		for _, c := range set.Clusters {
			si, err := getServiceImportErr(ctx, c, ns, svc)
			switch {
			case apierrors.IsNotFound(err):
				states = append(states, c.Name+": none")
			case err != nil:
				ok = false
				states = append(states, c.Name+": "+err.Error())
			default:
				ok = false
				states = append(states, fmt.Sprintf("%s: %s ServiceImport from %v", c.Name, si.Spec.Type, clustersOf(si)))
			}
		}
		return ok, strings.Join(states, "; ")
	}
}

func importErrString(err error) string {
	if apierrors.IsNotFound(err) {
		return "no ServiceImport"
	}
	return err.Error()
}

// waitServiceImport waits until c has a ServiceImport of svc for which ok
// holds (what says what ok wants) and returns it.
func waitServiceImport(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, svc, what string, ok func(*mcsv1beta1.ServiceImport) bool) *mcsv1beta1.ServiceImport {
	t.Helper()
	var si *mcsv1beta1.ServiceImport
	eventually(ctx, t, confImportWithin, fmt.Sprintf("%s: ServiceImport %s/%s with %s", c.Name, ns, svc, what), func() (bool, string) {
		got, err := getServiceImportErr(ctx, c, ns, svc)
		if err != nil {
			return false, importErrString(err)
		}
		si = got
		return ok(got), fmt.Sprintf("metadata.labels %v, metadata.annotations %v, spec %s, status.clusters %v", got.Labels, got.Annotations, jsonString(got.Spec), clustersOf(got))
	})
	return si
}

// conflictOnEvery checks that the exports of svc in cluster1 and cluster3
// both have Conflict=True with reason among their comma-joined reasons.
func conflictOnEvery(ctx context.Context, t *testing.T, set *localcluster.Set, ns, svc string, reason mcsv1beta1.ServiceExportConditionReason) func() (bool, string) {
	return func() (bool, string) {
		ok := true
		var states []string
		for _, name := range []string{"cluster1", "cluster3"} {
			c := meta.FindStatusCondition(getExport(ctx, t, set.Cluster(name), ns, svc).Status.Conditions, string(mcsv1beta1.ServiceExportConditionConflict))
			ok = ok && c != nil && c.Status == metav1.ConditionTrue && slices.Contains(strings.Split(c.Reason, ","), string(reason))
			states = append(states, name+": "+conditionString(c))
		}
		return ok, strings.Join(states, "; ")
	}
}

func conditionString(c *metav1.Condition) string {
	if c == nil {
		return "(no condition)"
	}
	return fmt.Sprintf("%s/%s %q", c.Status, c.Reason, c.Message)
}

// mcsSlicesIn checks that every cluster has MCS EndpointSlices of svc from
// source, not managed by the endpointslice controller, whose ready
// addresses are exactly want (nil: that there are no such slices at all).
func mcsSlicesIn(ctx context.Context, set *localcluster.Set, ns, svc, source string, want []string) func() (bool, string) {
	return func() (bool, string) {
		ok := true
		var states []string
		for _, c := range set.Clusters {
			eps, err := mcsEndpoints(ctx, c, ns, svc, source)
			if err != nil {
				ok = false
				states = append(states, c.Name+": "+err.Error())
				continue
			}
			var addrs, names []string
			for _, ep := range eps {
				name := ep.slice + "(managed-by " + ep.managedBy + ")"
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
				if ep.managedBy == "" || ep.managedBy == controllerManagedBy {
					ok = false
				}
				if ep.address != "" && ep.ready {
					addrs = append(addrs, ep.address)
				}
			}
			slices.Sort(addrs)
			if want == nil {
				ok = ok && len(eps) == 0
			} else {
				ok = ok && len(eps) > 0 && slices.Equal(addrs, want)
			}
			if len(eps) == 0 {
				states = append(states, c.Name+": no slices")
			} else {
				states = append(states, fmt.Sprintf("%s: %v with %v", c.Name, names, addrs))
			}
		}
		return ok, strings.Join(states, "; ")
	}
}

// readyAddresses returns the sorted ready addresses of a Service's own
// EndpointSlices (made by the cluster's endpointslice controller).
func readyAddresses(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, svc string) []string {
	t.Helper()
	list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) > 0 && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				out = append(out, ep.Addresses[0])
			}
		}
	}
	slices.Sort(out)
	return out
}

// steadyState checks that every cluster has a ServiceImport of every
// service (with ips where ClusterSetIP) and, for each, slices with ready
// endpoints from every cluster of the set, its own included.
func steadyState(ctx context.Context, t *testing.T, set *localcluster.Set, ns string, services []string) func() (bool, string) {
	return func() (bool, string) {
		var missing []string
		for _, c := range set.Clusters {
			for _, svc := range services {
				si, err := getServiceImportErr(ctx, c, ns, svc)
				switch {
				case err != nil:
					missing = append(missing, fmt.Sprintf("%s: %s: %s", c.Name, svc, importErrString(err)))
					continue
				case si.Spec.Type == mcsv1beta1.ClusterSetIP && len(si.Spec.IPs) == 0:
					missing = append(missing, fmt.Sprintf("%s: %s: ClusterSetIP import without ips", c.Name, svc))
				}
				bySource := mirroredBySource(ctx, t, c, ns, svc)
				for _, source := range confClusters {
					if len(bySource[source]) == 0 {
						missing = append(missing, fmt.Sprintf("%s: %s: no endpoints from %s", c.Name, svc, source))
					}
				}
			}
		}
		if len(missing) == 0 {
			return true, "steady"
		}
		shown := missing
		if len(shown) > 12 {
			shown = append(slices.Clone(shown[:12]), fmt.Sprintf("... %d more", len(missing)-12))
		}
		return false, fmt.Sprintf("%d missing: %s", len(missing), strings.Join(shown, "; "))
	}
}

func portStrings(ports []mcsv1beta1.ServicePort) []string {
	var out []string
	for _, p := range ports {
		s := fmt.Sprintf("%s:%d/%s", p.Name, p.Port, p.Protocol)
		if p.AppProtocol != nil {
			s += "(" + *p.AppProtocol + ")"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// jsonString prints v for a failure message.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
