package reconcile

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// maxEndpointsPerSlice matches the EndpointSlice controller's default, so
// mirrored slices look like the ones consumers already handle.
const maxEndpointsPerSlice = 100

var endpointSliceTypeMeta = metav1.TypeMeta{APIVersion: discoveryv1.SchemeGroupVersion.String(), Kind: "EndpointSlice"}

// endpointGroup gathers the source slices of one cluster that share an
// address type and a port set: endpoints of one group can share mirrored
// slices, endpoints of different groups cannot.
type endpointGroup struct {
	addressType discoveryv1.AddressType
	portsKey    string
	ports       []discoveryv1.EndpointPort
	sources     []*discoveryv1.EndpointSlice
	endpoints   int
}

// candidate is a source endpoint on its way into a mirrored slice.
type candidate struct {
	ep   *discoveryv1.Endpoint
	key  string     // addresses, joined: the identity used to drop duplicates
	addr netip.Addr // first address, parsed once for sorting (invalid for FQDN)
}

// mirrorSlices renders the slices mirrored from one cluster's export of a
// service: one source cluster per slice, at most maxEndpointsPerSlice
// endpoints each, grouped by address type and port set, endpoints
// deduplicated (an endpoint can sit in two source slices while the
// controller moves it) and sorted by address.
//
// An endpoint keeps its addresses, hostname (what makes mysql-0 resolvable),
// zone and ready/serving/terminating conditions exactly as the source
// reports them; not-ready endpoints are kept with ready=false and left for
// the DNS layer to filter. nodeName (a node of another cluster), targetRef
// (an object of another cluster) and hints (zones of another cluster's
// topology) are dropped.
func mirrorSlices(key serviceKey, derived, cluster string, sources []*discoveryv1.EndpointSlice) []discoveryv1.EndpointSlice {
	groups := groupSourceSlices(sources)
	var out []discoveryv1.EndpointSlice
	indexByType := map[discoveryv1.AddressType]int{}
	for _, g := range groups {
		endpoints := mirrorEndpoints(g)
		for start := 0; start < len(endpoints); start += maxEndpointsPerSlice {
			end := min(start+maxEndpointsPerSlice, len(endpoints))
			index := indexByType[g.addressType]
			indexByType[g.addressType]++
			out = append(out, discoveryv1.EndpointSlice{
				TypeMeta: endpointSliceTypeMeta,
				ObjectMeta: metav1.ObjectMeta{
					Name:      EndpointSliceName(derived, cluster, g.addressType, index),
					Namespace: key.Namespace,
					Labels: map[string]string{
						discoveryv1.LabelManagedBy:    FieldManager,
						discoveryv1.LabelServiceName:  derived,
						mcsv1beta1.LabelServiceName:   key.Name,
						mcsv1beta1.LabelSourceCluster: cluster,
					},
				},
				AddressType: g.addressType,
				Endpoints:   endpoints[start:end:end],
				Ports:       copyEndpointPorts(g.ports),
			})
		}
	}
	return out
}

// groupSourceSlices groups slices by (address type, port set), in a fixed
// order so that slice indexes are stable.
func groupSourceSlices(sources []*discoveryv1.EndpointSlice) []*endpointGroup {
	var groups []*endpointGroup
	for _, s := range sources {
		ports := normalizeEndpointPorts(s.Ports)
		pk := endpointPortsKey(ports)
		i := slices.IndexFunc(groups, func(g *endpointGroup) bool {
			return g.addressType == s.AddressType && g.portsKey == pk
		})
		if i < 0 {
			groups = append(groups, &endpointGroup{addressType: s.AddressType, portsKey: pk, ports: ports})
			i = len(groups) - 1
		}
		groups[i].sources = append(groups[i].sources, s)
		groups[i].endpoints += len(s.Endpoints)
	}
	slices.SortFunc(groups, func(a, b *endpointGroup) int {
		if c := strings.Compare(string(a.addressType), string(b.addressType)); c != 0 {
			return c
		}
		return strings.Compare(a.portsKey, b.portsKey)
	})
	return groups
}

// mirrorEndpoints deduplicates, sorts and copies the endpoints of a group.
// The copies share a few backing arrays (addresses, strings, booleans)
// instead of allocating per field, and never alias the snapshot.
func mirrorEndpoints(g *endpointGroup) []discoveryv1.Endpoint {
	if g.endpoints == 0 {
		return nil
	}
	candidates := make([]candidate, 0, g.endpoints)
	for _, s := range g.sources {
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			if len(ep.Addresses) == 0 {
				continue
			}
			c := candidate{ep: ep, key: addressesKey(ep.Addresses)}
			if g.addressType != discoveryv1.AddressTypeFQDN {
				c.addr, _ = netip.ParseAddr(ep.Addresses[0])
			}
			candidates = append(candidates, c)
		}
	}
	// Sorting puts the copies of a duplicated endpoint next to each other,
	// best first; compacting then keeps one per address. No map needed.
	slices.SortFunc(candidates, func(a, b candidate) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return compareDuplicates(a.ep, b.ep)
	})
	candidates = slices.CompactFunc(candidates, func(a, b candidate) bool { return a.key == b.key })

	addresses := 0
	for _, c := range candidates {
		addresses += len(c.ep.Addresses)
	}
	addrs := make([]string, 0, addresses)
	strs := make([]string, 0, 2*len(candidates)) // hostname, zone
	bools := make([]bool, 0, 3*len(candidates))  // ready, serving, terminating
	out := make([]discoveryv1.Endpoint, len(candidates))
	copyString := func(p *string) *string {
		if p == nil {
			return nil
		}
		strs = append(strs, *p)
		return &strs[len(strs)-1]
	}
	copyBool := func(p *bool) *bool {
		if p == nil {
			return nil
		}
		bools = append(bools, *p)
		return &bools[len(bools)-1]
	}
	for i, c := range candidates {
		start := len(addrs)
		addrs = append(addrs, c.ep.Addresses...)
		out[i] = discoveryv1.Endpoint{
			Addresses: addrs[start:len(addrs):len(addrs)],
			Conditions: discoveryv1.EndpointConditions{
				Ready:       copyBool(c.ep.Conditions.Ready),
				Serving:     copyBool(c.ep.Conditions.Serving),
				Terminating: copyBool(c.ep.Conditions.Terminating),
			},
			Hostname: copyString(c.ep.Hostname),
			Zone:     copyString(c.ep.Zone),
		}
	}
	return out
}

func addressesKey(addresses []string) string {
	if len(addresses) == 1 {
		return addresses[0]
	}
	return strings.Join(addresses, ",")
}

// compareDuplicates decides which copy of a duplicated endpoint is kept, the
// same whatever order the snapshot lists them in: the most usable one
// (ready, then serving, then not terminating), then by rendered fields.
func compareDuplicates(a, b *discoveryv1.Endpoint) int {
	if c := cmp.Compare(usability(b), usability(a)); c != 0 {
		return c
	}
	if c := cmp.Compare(renderOptional(a.Hostname), renderOptional(b.Hostname)); c != 0 {
		return c
	}
	if c := cmp.Compare(renderOptional(a.Zone), renderOptional(b.Zone)); c != 0 {
		return c
	}
	for _, pair := range [][2]*bool{
		{a.Conditions.Ready, b.Conditions.Ready},
		{a.Conditions.Serving, b.Conditions.Serving},
		{a.Conditions.Terminating, b.Conditions.Terminating},
	} {
		if c := cmp.Compare(triState(pair[0]), triState(pair[1])); c != 0 {
			return c
		}
	}
	return 0
}

// usability follows the API's reading of unset conditions: ready and
// serving default to true, terminating to false.
func usability(ep *discoveryv1.Endpoint) int {
	u := 0
	if c := ep.Conditions.Ready; c == nil || *c {
		u += 4
	}
	if c := ep.Conditions.Serving; c == nil || *c {
		u += 2
	}
	if c := ep.Conditions.Terminating; c == nil || !*c {
		u++
	}
	return u
}

func triState(b *bool) int {
	switch {
	case b == nil:
		return 0
	case !*b:
		return 1
	default:
		return 2
	}
}

// normalizeEndpointPorts applies the API server's defaults (name "",
// protocol TCP), so that a rendered slice compares equal to what the server
// stores, and sorts the ports.
func normalizeEndpointPorts(ports []discoveryv1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, len(ports))
	for i, p := range ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out[i] = discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: copyPtr(p.Port), AppProtocol: copyPtr(p.AppProtocol)}
	}
	slices.SortFunc(out, func(a, b discoveryv1.EndpointPort) int {
		return strings.Compare(endpointPortKey(a), endpointPortKey(b))
	})
	return out
}

func endpointPortKey(p discoveryv1.EndpointPort) string {
	port := "*"
	if p.Port != nil {
		port = strconv.Itoa(int(*p.Port))
	}
	return *p.Name + "/" + string(*p.Protocol) + "/" + port + "/" + renderOptional(p.AppProtocol)
}

func endpointPortsKey(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = endpointPortKey(p)
	}
	return strings.Join(keys, ",")
}

func copyEndpointPorts(ports []discoveryv1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, len(ports))
	for i, p := range ports {
		out[i] = discoveryv1.EndpointPort{Name: copyPtr(p.Name), Protocol: copyPtr(p.Protocol), Port: copyPtr(p.Port), AppProtocol: copyPtr(p.AppProtocol)}
	}
	return out
}
