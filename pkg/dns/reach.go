package dns

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Reach is one DNS name that reaches one endpoint: what `kubectl mcs
// resolve mysql-0` prints a line for.
type Reach struct {
	Name     Name
	ServedBy ServedBy
	// Namespace and Service name the ServiceImport the endpoint belongs to.
	Namespace string
	Service   string
	// Cluster is the endpoint's source cluster.
	Cluster  string
	Hostname string
	// Addresses are the endpoint's addresses (both families when the
	// source is dual-stack).
	Addresses []string
	Ready     bool
	// Served says whether the name's answer, with the setup in ServedBy,
	// holds the endpoint's addresses. Reason says why not.
	Served bool
	Reason string
	// SharedWith lists the other clusters whose endpoints the same name
	// also answers with: names without a cluster id cannot choose.
	SharedWith []string
}

// NamesForHost lists every name that reaches an endpoint whose DNS label
// is host (a pod hostname, or a dashed IP), in the imports of namespace (all
// namespaces when empty). Each endpoint gets its three per-pod names:
// through the derived Service, the specification's form with the cluster
// id, and the vendor's form without it. The same hostname exported by two
// clusters yields entries for both. Sorted by namespace, service, cluster,
// readiness (ready first), then form in that order.
func NamesForHost(state State, namespace, host string) []Reach {
	ix := newIndex(state)
	host = strings.ToLower(host)
	var out []Reach
	for _, key := range ix.importKeys {
		if namespace != "" && key.namespace != namespace {
			continue
		}
		for _, ep := range ix.endpointsWithHostname(key, host) {
			for _, n := range perPodNames(key, reconcile.DerivedServiceOf(ix.imports[key]), ep) {
				out = append(out, ix.reach(n, key, ep))
			}
		}
	}
	return out
}

// hostEndpoint is one endpoint of one cluster, its addresses gathered from
// every slice (a dual-stack source has one slice per address family).
type hostEndpoint struct {
	cluster   string
	hostname  string
	ready     bool
	addresses []string
}

func (ix *index) endpointsWithHostname(key objectKey, host string) []hostEndpoint {
	var eps []hostEndpoint
	for _, es := range ix.mcSlices[key] {
		cluster := es.Labels[mcsv1beta1.LabelSourceCluster]
		forEachEndpoint(es, func(address, hostname string, _ discoveryPort, ready bool) {
			if !match(host, hostname) {
				return
			}
			i := slices.IndexFunc(eps, func(e hostEndpoint) bool { return e.cluster == cluster && e.ready == ready })
			if i < 0 {
				i = len(eps)
				eps = append(eps, hostEndpoint{cluster: cluster, hostname: hostname, ready: ready})
			}
			if !slices.Contains(eps[i].addresses, address) {
				eps[i].addresses = append(eps[i].addresses, address)
			}
		})
	}
	for i := range eps {
		slices.SortFunc(eps[i].addresses, compareAddresses)
	}
	slices.SortFunc(eps, func(a, b hostEndpoint) int {
		return cmp.Or(strings.Compare(a.cluster, b.cluster), compareBool(b.ready, a.ready))
	})
	return eps
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// perPodNames are the names of one endpoint, in the order they are shown:
// the one any cluster DNS serves first. A slice without a source-cluster
// label has no cluster-id name.
func perPodNames(key objectKey, derived string, ep hostEndpoint) []Name {
	names := []Name{{Form: FormDerivedPod, Host: ep.hostname, Service: derived, Namespace: key.namespace}}
	if ep.cluster != "" {
		names = append(names, Name{Form: FormClusterSetPod, Host: ep.hostname, ClusterID: ep.cluster, Service: key.name, Namespace: key.namespace})
	}
	return append(names, Name{Form: FormVendorPod, Host: ep.hostname, Service: key.name, Namespace: key.namespace})
}

func (ix *index) reach(n Name, key objectKey, ep hostEndpoint) Reach {
	a := ix.resolve(n)
	r := Reach{
		Name:      n,
		ServedBy:  a.ServedBy,
		Namespace: key.namespace,
		Service:   key.name,
		Cluster:   ep.cluster,
		Hostname:  ep.hostname,
		Addresses: ep.addresses,
		Ready:     ep.ready,
	}
	answered := map[string]bool{}
	for _, rec := range a.Records {
		answered[rec.Address] = true
		if rec.Cluster != ep.cluster && rec.Cluster != "" && !slices.Contains(r.SharedWith, rec.Cluster) {
			r.SharedWith = append(r.SharedWith, rec.Cluster)
		}
	}
	slices.Sort(r.SharedWith)
	r.Served = !slices.ContainsFunc(ep.addresses, func(address string) bool { return !answered[address] })
	switch {
	case r.Served:
	case !ep.ready:
		r.Reason = ReasonNotReady
	case len(a.Notes) > 0:
		r.Reason = fmt.Sprintf("%s: %s", a.Status, a.Notes[0])
	default:
		r.Reason = string(a.Status)
	}
	return r
}

// NamesForService lists the service-level names of the imports called
// service in namespace (all namespaces when empty), with their answers: the
// clusterset name, an SRV name per named port, the derived Service's name
// and its SRV names. Sorted by namespace, then in that order, SRV names by
// port name and protocol.
func NamesForService(state State, namespace, service string) []Answer {
	ix := newIndex(state)
	service = strings.ToLower(service)
	var out []Answer
	for _, key := range ix.importKeys {
		if key.name != service || (namespace != "" && key.namespace != namespace) {
			continue
		}
		derived := reconcile.DerivedServiceOf(ix.imports[key])
		ports := srvPorts(ix.imports[key].Spec.Ports)
		names := []Name{{Form: FormClusterSetService, Service: key.name, Namespace: key.namespace}}
		for _, p := range ports {
			names = append(names, Name{Form: FormClusterSetSRV, Port: p.name, Protocol: p.protocol, Service: key.name, Namespace: key.namespace})
		}
		names = append(names, Name{Form: FormDerivedService, Service: derived, Namespace: key.namespace})
		for _, p := range ports {
			names = append(names, Name{Form: FormDerivedSRV, Port: p.name, Protocol: p.protocol, Service: derived, Namespace: key.namespace})
		}
		for _, n := range names {
			out = append(out, ix.resolve(n))
		}
	}
	return out
}

type srvPort struct{ name, protocol string }

// srvPorts are the import's named ports as SRV labels. An unnamed port has
// no SRV name; a port without protocol is TCP, the Service default.
func srvPorts(ports []mcsv1beta1.ServicePort) []srvPort {
	var out []srvPort
	for _, p := range ports {
		if p.Name == "" {
			continue
		}
		protocol := strings.ToLower(string(p.Protocol))
		if protocol == "" {
			protocol = "tcp"
		}
		sp := srvPort{strings.ToLower(p.Name), protocol}
		if !slices.Contains(out, sp) {
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b srvPort) int {
		return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.protocol, b.protocol))
	})
	return out
}
