package dns

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// This file models the lookups of CoreDNS v1.15's kubernetes plugin
// (plugin/kubernetes: findMultiClusterServices for a multicluster zone,
// findServices for cluster.local) over a State instead of informer caches.
// It keeps their decisions, in their order, so that an answer computed here
// is the answer a pod gets:
//   - endpoints come from EndpointSlices indexed by a label:
//     multicluster.kubernetes.io/service-name for ServiceImports (any slice
//     carrying it, whoever manages it), kubernetes.io/service-name for
//     Services;
//   - only ready endpoints are kept (conditions.ready nil counts as ready);
//   - an endpoint's DNS label is its hostname, else its IP with dashes
//     (endpoint_pod_names is off by default and not modelled);
//   - a per-endpoint query is answered from endpoints for every service
//     type, headless or not;
//   - every (address, port) pair is one entry; a Service or slice without
//     ports gets the sentinel port -1, a ServiceImport without ports gets
//     nothing;
//   - "found" is CoreDNS's err == nil: false means NXDOMAIN.

// index is a State arranged the way CoreDNS's informer indexes are.
type index struct {
	imports   map[objectKey]*mcsv1beta1.ServiceImport
	services  map[objectKey]*corev1.Service
	mcSlices  map[objectKey][]*discoveryv1.EndpointSlice
	svcSlices map[objectKey][]*discoveryv1.EndpointSlice
	// clusters are the cluster ids this state knows: the consumer's own,
	// the imports' status.clusters and the slices' source-cluster labels.
	clusters map[string]bool
	// importKeys lists the imports sorted by namespace, then name.
	importKeys []objectKey
}

type objectKey struct{ namespace, name string }

func newIndex(s State) *index {
	ix := &index{
		imports:   map[objectKey]*mcsv1beta1.ServiceImport{},
		services:  map[objectKey]*corev1.Service{},
		mcSlices:  map[objectKey][]*discoveryv1.EndpointSlice{},
		svcSlices: map[objectKey][]*discoveryv1.EndpointSlice{},
		clusters:  map[string]bool{},
	}
	if s.ClusterID != "" {
		ix.clusters[s.ClusterID] = true
	}
	for i := range s.Imports {
		imp := &s.Imports[i]
		key := objectKey{imp.Namespace, imp.Name}
		ix.imports[key] = imp
		ix.importKeys = append(ix.importKeys, key)
		for _, c := range imp.Status.Clusters {
			ix.clusters[c.Cluster] = true
		}
	}
	slices.SortFunc(ix.importKeys, compareKeys)
	for i := range s.Services {
		svc := &s.Services[i]
		ix.services[objectKey{svc.Namespace, svc.Name}] = svc
	}
	// Sorted so that answers do not depend on the order the caller listed
	// the slices in; CoreDNS's own order is its cache's, i.e. arbitrary.
	sorted := make([]*discoveryv1.EndpointSlice, 0, len(s.EndpointSlices))
	for i := range s.EndpointSlices {
		sorted = append(sorted, &s.EndpointSlices[i])
	}
	slices.SortFunc(sorted, func(a, b *discoveryv1.EndpointSlice) int {
		return compareKeys(objectKey{a.Namespace, a.Name}, objectKey{b.Namespace, b.Name})
	})
	for _, es := range sorted {
		if name, ok := es.Labels[mcsv1beta1.LabelServiceName]; ok {
			key := objectKey{es.Namespace, name}
			ix.mcSlices[key] = append(ix.mcSlices[key], es)
		}
		if name, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
			key := objectKey{es.Namespace, name}
			ix.svcSlices[key] = append(ix.svcSlices[key], es)
		}
		if c := es.Labels[mcsv1beta1.LabelSourceCluster]; c != "" {
			ix.clusters[c] = true
		}
	}
	return ix
}

func compareKeys(a, b objectKey) int {
	if c := strings.Compare(a.namespace, b.namespace); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// request is the part of CoreDNS's recordRequest that kubectl-mcs names
// fill in. Empty fields match anything, as in CoreDNS.
type request struct {
	endpoint, cluster, service, namespace, port, protocol string
}

func requestFor(n Name) request {
	return request{
		endpoint:  n.Host,
		cluster:   n.ClusterID,
		service:   n.Service,
		namespace: n.Namespace,
		port:      n.Port,
		protocol:  n.Protocol,
	}
}

// entry is one msg.Service the plugin would build: an address behind the
// name, with the port and the SRV target CoreDNS derives from the entry's
// key.
type entry struct {
	address  string
	port     int32
	target   string
	cluster  string
	hostname string
	ready    bool
}

// lookup is a find*Services result: the entries CoreDNS returns, whether it
// found the name at all, and the not-ready endpoints it skipped, which
// CoreDNS forgets but a user asking "why no answer?" needs.
type lookup struct {
	entries []entry
	skipped []entry
	found   bool
}

func (l *lookup) add(e entry) {
	if e.ready {
		l.entries = append(l.entries, e)
		l.found = true
		return
	}
	l.skipped = append(l.skipped, e)
}

// findMultiClusterServices answers a request in clusterset.local from the
// ServiceImport and the slices labeled with its name.
func (ix *index) findMultiClusterServices(r request) lookup {
	var l lookup
	imp := ix.imports[objectKey{r.namespace, r.service}]
	if imp == nil {
		return l
	}
	if imp.Spec.Type == mcsv1beta1.Headless || r.endpoint != "" {
		for _, es := range ix.mcSlices[objectKey{imp.Namespace, imp.Name}] {
			cluster := es.Labels[mcsv1beta1.LabelSourceCluster]
			forEachEndpoint(es, func(address, hostname string, port discoveryPort, ready bool) {
				if r.endpoint != "" && (!match(r.cluster, cluster) || !match(r.endpoint, hostname)) {
					return
				}
				if !matchPortAndProtocol(r.port, port.name, r.protocol, port.protocol) {
					return
				}
				l.add(entry{
					address:  address,
					port:     port.port,
					target:   fqdn(hostname, cluster, imp.Name, imp.Namespace, "svc", ClusterSetZone),
					cluster:  cluster,
					hostname: hostname,
					ready:    ready,
				})
			})
		}
		return l
	}
	for _, p := range imp.Spec.Ports {
		if !matchPortAndProtocol(r.port, p.Name, r.protocol, string(p.Protocol)) {
			continue
		}
		l.found = true
		for _, ip := range imp.Spec.IPs {
			l.entries = append(l.entries, entry{
				address: ip,
				port:    p.Port,
				target:  fqdn(imp.Name, imp.Namespace, "svc", ClusterSetZone),
				ready:   true,
			})
		}
	}
	return l
}

// findServices answers a request in cluster.local from the Service and the
// slices labeled kubernetes.io/service-name with its name.
func (ix *index) findServices(r request) lookup {
	var l lookup
	svc := ix.services[objectKey{r.namespace, r.service}]
	// An ExternalName Service would be a CNAME in CoreDNS; a derived
	// Service never is one, so it is simply not found here.
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return l
	}
	clusterIPs := svc.Spec.ClusterIPs
	if len(clusterIPs) == 0 {
		clusterIPs = []string{svc.Spec.ClusterIP}
	}
	if clusterIPs[0] == corev1.ClusterIPNone || r.endpoint != "" {
		for _, es := range ix.svcSlices[objectKey{svc.Namespace, svc.Name}] {
			cluster := es.Labels[mcsv1beta1.LabelSourceCluster]
			forEachEndpoint(es, func(address, hostname string, port discoveryPort, ready bool) {
				if r.endpoint != "" && !match(r.endpoint, hostname) {
					return
				}
				if !matchPortAndProtocol(r.port, port.name, r.protocol, port.protocol) {
					return
				}
				l.add(entry{
					address:  address,
					port:     port.port,
					target:   fqdn(hostname, svc.Name, svc.Namespace, "svc", ClusterZone),
					cluster:  cluster,
					hostname: hostname,
					ready:    ready,
				})
			})
		}
		return l
	}
	ports := svc.Spec.Ports
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Port: -1}}
	}
	for _, p := range ports {
		if !matchPortAndProtocol(r.port, p.Name, r.protocol, string(p.Protocol)) {
			continue
		}
		l.found = true
		for _, ip := range clusterIPs {
			if ip == "" {
				continue // not allocated yet: no record rather than CoreDNS's empty one
			}
			l.entries = append(l.entries, entry{
				address: ip,
				port:    p.Port,
				target:  fqdn(svc.Name, svc.Namespace, "svc", ClusterZone),
				ready:   true,
			})
		}
	}
	return l
}

type discoveryPort struct {
	name, protocol string
	port           int32
}

// forEachEndpoint calls fn for every (address, port) pair of a slice, as
// CoreDNS's EndpointSliceToEndpoints expands them, not-ready ones included
// (fn decides).
func forEachEndpoint(es *discoveryv1.EndpointSlice, fn func(address, hostname string, port discoveryPort, ready bool)) {
	ports := make([]discoveryPort, 0, len(es.Ports))
	for _, p := range es.Ports {
		dp := discoveryPort{port: -1}
		if p.Port != nil {
			dp.port = *p.Port
		}
		if p.Name != nil {
			dp.name = *p.Name
		}
		if p.Protocol != nil {
			dp.protocol = string(*p.Protocol)
		}
		ports = append(ports, dp)
	}
	if len(ports) == 0 {
		ports = []discoveryPort{{port: -1}}
	}
	for _, ep := range es.Endpoints {
		ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
		for _, address := range ep.Addresses {
			hostname := endpointHostname(ep.Hostname, address)
			for _, p := range ports {
				fn(address, hostname, p, ready)
			}
		}
	}
}

// endpointHostname is CoreDNS's label for an endpoint address: the
// hostname, else the IP with '.' or ':' turned into '-' (an IPv6 address
// ending in "::" gets a final "0" so the label does not end with '-').
func endpointHostname(hostname *string, address string) string {
	if hostname != nil && *hostname != "" {
		return *hostname
	}
	if strings.Contains(address, ".") {
		return strings.ReplaceAll(address, ".", "-")
	}
	if strings.Contains(address, ":") {
		h := strings.ReplaceAll(address, ":", "-")
		if strings.HasSuffix(h, "-") {
			return h + "0"
		}
		return h
	}
	return ""
}

// match is CoreDNS's: equal, ignoring case. An empty request field matches
// only an empty value, which is why a cluster-less endpoint name never
// matches in a multicluster zone.
func match(a, b string) bool { return strings.EqualFold(a, b) }

// matchPortAndProtocol is CoreDNS's: an empty request port or protocol
// matches anything.
func matchPortAndProtocol(port, portName, protocol, portProtocol string) bool {
	return (port == "" || match(port, portName)) && (protocol == "" || match(protocol, portProtocol))
}

func fqdn(labels ...string) string { return strings.Join(labels, ".") + "." }
