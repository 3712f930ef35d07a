package dns

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// State is what the consumer cluster holds after `kubectl mcs import`: the
// ServiceImports, the derived Services (amcs-<svc>) and the mirrored
// EndpointSlices. Other objects may be included; only what CoreDNS would
// look at is used.
type State struct {
	// ClusterID is the consumer's own cluster id (KEP-2149).
	ClusterID      string
	Imports        []mcsv1beta1.ServiceImport
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
}

// CoreDNSSchemaVersion is the TXT value CoreDNS serves at dns-version.<zone>
// for every zone of its kubernetes plugin, clusterset.local included
// (plugin/kubernetes DNSSchemaVersion).
const CoreDNSSchemaVersion = "1.1.0"

// MCSDNSVersion is the value the MCS DNS specification gives for
// dns-version.clusterset.local. CoreDNS does not serve it; see
// CoreDNSSchemaVersion.
const MCSDNSVersion = "1.0.0"

// RecordType is a DNS record type.
type RecordType string

const (
	RecordA    RecordType = "A"
	RecordAAAA RecordType = "AAAA"
	RecordSRV  RecordType = "SRV"
	RecordTXT  RecordType = "TXT"
)

// Record is one resource record of an answer, with where it comes from.
type Record struct {
	Type RecordType
	// Name is the owner name, fully qualified: the name asked for.
	Name string
	// Address is the A or AAAA address.
	Address string
	// Target, Port, Priority and Weight are the SRV fields;
	// TargetAddresses are the target's addresses CoreDNS puts in the
	// additional section.
	Target          string
	Port            int32
	Priority        uint16
	Weight          uint16
	TargetAddresses []string
	// Text is the TXT value.
	Text string
	// Cluster is the source cluster of the endpoint behind the record;
	// empty for a clusterset IP or a Service IP, which belong to no one
	// cluster.
	Cluster string
	// Hostname is the endpoint's DNS label (its hostname, or its dashed
	// IP); empty for a service IP.
	Hostname string
	// Ready is the endpoint's readiness; records of an Answer are always
	// ready, those in Unserved never.
	Ready bool
}

// Unserved is a record the name would have if its endpoint qualified, and
// why CoreDNS leaves it out.
type Unserved struct {
	Record
	Reason string
}

// ReasonNotReady: CoreDNS serves ready endpoints only.
const ReasonNotReady = "not ready"

// Status is the response code a client gets, with NODATA spelled out
// (NOERROR without records).
type Status string

const (
	StatusNoError  Status = "NOERROR"
	StatusNoData   Status = "NODATA"
	StatusNXDomain Status = "NXDOMAIN"
	StatusServFail Status = "SERVFAIL"
)

// Answer is what a name resolves to, once the DNS setup in ServedBy is in
// place.
type Answer struct {
	Name     Name
	ServedBy ServedBy
	Status   Status
	// Records are sorted by type, cluster, hostname, address, target and
	// port. A name of an address form gets its A and AAAA records, an SRV
	// form its SRV records, dns-version its TXT record. (CoreDNS also
	// answers SRV queries on address names; those are not listed.)
	Records  []Record
	Unserved []Unserved
	// Namespace and Service name the ServiceImport the name belongs to,
	// when there is one.
	Namespace string
	Service   string
	// NeedsRewrite: upstream CoreDNS does not answer this form by itself;
	// Records are what it answers with kubectl-mcs's rewrite rule.
	NeedsRewrite bool
	// Forbidden: the name is <clusterid>.<svc>.<ns>.svc.clusterset.local,
	// which the MCS DNS specification says must not exist.
	Forbidden bool
	// Notes explain the answer in sentences fit for a user.
	Notes []string
}

// Resolve computes the answer to n from the consumer's state, as CoreDNS
// would give it: its kubernetes plugin with `multicluster clusterset.local`
// for clusterset names, its ordinary Service lookup for cluster.local, and
// kubectl-mcs's rewrite rule for the vendor form.
func Resolve(state State, n Name) Answer {
	return newIndex(state).resolve(n)
}

func (ix *index) resolve(n Name) Answer {
	switch n.Form {
	case FormDNSVersion:
		return Answer{
			Name: n, ServedBy: n.Form.ServedBy(), Status: StatusNoError,
			Records: []Record{{Type: RecordTXT, Name: n.String(), Text: CoreDNSSchemaVersion, Ready: true}},
			Notes: []string{fmt.Sprintf("CoreDNS answers its Kubernetes DNS schema version %q here; the MCS DNS specification says %q",
				CoreDNSSchemaVersion, MCSDNSVersion)},
		}
	case FormVendorPod:
		return ix.resolveVendor(n)
	}

	a := Answer{Name: n, ServedBy: n.Form.ServedBy()}
	var l lookup
	if n.zone() == ClusterSetZone {
		l = ix.findMultiClusterServices(requestFor(n))
		a.Namespace, a.Service = ix.importOf(n.Namespace, n.Service)
		a.Notes = ix.clusterSetNotes(n, l)
	} else {
		l = ix.findServices(requestFor(n))
		a.Namespace, a.Service = ix.importOf(n.Namespace, ix.importOfDerived(n.Namespace, n.Service))
		a.Notes = ix.derivedNotes(n)
	}
	if n.Form.IsSRV() {
		a.Records, a.Unserved = srvRecords(n.String(), l)
	} else {
		a.Records, a.Unserved = addressRecords(n.String(), l)
	}
	a.Status = status(l, a.Records)
	if a.Status == StatusNXDomain && len(a.Unserved) > 0 {
		a.Notes = append(a.Notes, "every endpoint this name would reach is not ready; CoreDNS answers NXDOMAIN until one is")
	}
	if n.Form.IsPerPod() {
		a.Notes = append(a.Notes, sharedHostnameNote(n, a.Records)...)
	}
	return a
}

// resolveVendor answers <host>.<svc>.<ns>.svc.clusterset.local the way the
// rewrite rule makes CoreDNS answer it: as the derived per-pod name, with
// owner names mapped back.
func (ix *index) resolveVendor(n Name) Answer {
	a := Answer{Name: n, ServedBy: n.Form.ServedBy(), NeedsRewrite: true}
	a.Namespace, a.Service = ix.importOf(n.Namespace, n.Service)
	if ix.clusters[n.Host] && !ix.hasHostname(n.Namespace, n.Service, n.Host) {
		a.Forbidden = true
		a.Status = StatusNXDomain
		a.Notes = []string{fmt.Sprintf("%q is a cluster id, not a pod hostname: the MCS DNS specification forbids %s; use %s or %s",
			n.Host, "<clusterid>.<svc>.<ns>.svc.clusterset.local", FormClusterSetService.Pattern(), FormClusterSetPod.Pattern())}
		return a
	}
	rewritten, _ := rewriteVendorQuestion(n.String())
	derived, err := Parse(rewritten)
	if err != nil {
		// The rewrite plugin checks the new name with dns.IsDomainName and
		// answers SERVFAIL when it is not one; a service name longer than
		// 58 characters gets there, its derived Service being shortened.
		a.Status = StatusServFail
		a.Notes = []string{fmt.Sprintf("the rewrite rule turns this name into an invalid one (%v), so CoreDNS answers SERVFAIL; use %s",
			err, FormClusterSetPod.Pattern())}
		return a
	}
	d := ix.resolve(derived)
	a.Status = d.Status
	a.Records = d.Records
	for i := range a.Records {
		a.Records[i].Name = rewriteVendorAnswer(a.Records[i].Name)
	}
	a.Unserved = d.Unserved
	for i := range a.Unserved {
		a.Unserved[i].Name = rewriteVendorAnswer(a.Unserved[i].Name)
	}
	a.Notes = append([]string{fmt.Sprintf("upstream CoreDNS answers NXDOMAIN for this form; with kubectl-mcs's rewrite rule it answers as %s", derived)}, d.Notes...)
	if ix.clusters[n.Host] {
		a.Notes = append(a.Notes, fmt.Sprintf("%q is both a pod hostname and a cluster id; the MCS DNS specification forbids <clusterid>.<svc>.<ns>.svc.clusterset.local, so prefer %s",
			n.Host, FormClusterSetPod.Pattern()))
	}
	return a
}

func (ix *index) clusterSetNotes(n Name, l lookup) []string {
	imp := ix.imports[objectKey{n.Namespace, n.Service}]
	if imp == nil {
		return []string{fmt.Sprintf("no ServiceImport %s/%s in this cluster: kubectl mcs import creates it", n.Namespace, n.Service)}
	}
	var notes []string
	if n.Form == FormClusterSetPod && imp.Spec.Type != mcsv1beta1.Headless {
		notes = append(notes, "the MCS DNS specification defines per-pod names for Headless imports only; CoreDNS answers them for ClusterSetIP imports too")
	}
	if imp.Spec.Type == mcsv1beta1.ClusterSetIP && n.Host == "" {
		switch {
		case !l.found:
			notes = append(notes, fmt.Sprintf("the ServiceImport has no port matching %q, so CoreDNS answers NXDOMAIN", n.String()))
		case len(imp.Spec.IPs) == 0:
			notes = append(notes, "the ServiceImport has no spec.ips yet: run kubectl mcs import again once the derived Service has its cluster IP")
		}
	}
	if n.Form == FormClusterSetPod && !l.found && len(l.skipped) == 0 {
		if others := ix.clustersWithHostname(n.Namespace, n.Service, n.Host); len(others) > 0 {
			notes = append(notes, fmt.Sprintf("%q is exported by %s, not by %q", n.Host, joinAnd(others), n.ClusterID))
		}
	}
	return notes
}

func (ix *index) derivedNotes(n Name) []string {
	if ix.services[objectKey{n.Namespace, n.Service}] == nil {
		return []string{fmt.Sprintf("no Service %s/%s in this cluster: it is created by kubectl mcs import", n.Namespace, n.Service)}
	}
	return nil
}

// sharedHostnameNote warns when a per-pod name answers with endpoints of
// several clusters: names without a cluster id cannot tell them apart.
func sharedHostnameNote(n Name, records []Record) []string {
	var clusters []string
	for _, r := range records {
		if r.Cluster != "" && !slices.Contains(clusters, r.Cluster) {
			clusters = append(clusters, r.Cluster)
		}
	}
	if len(clusters) < 2 {
		return nil
	}
	slices.Sort(clusters)
	return []string{fmt.Sprintf("%q is exported by %s: this name answers with all of them; pick one with %s",
		n.Host, joinAnd(clusters), FormClusterSetPod.Pattern())}
}

// joinAnd joins words as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// importOf returns namespace and service when that ServiceImport exists,
// empty strings otherwise.
func (ix *index) importOf(namespace, service string) (string, string) {
	if ix.imports[objectKey{namespace, service}] == nil {
		return "", ""
	}
	return namespace, service
}

// importOfDerived names the ServiceImport a derived Service belongs to: the
// Service's multicluster.kubernetes.io/service-name label, else the import
// that names it (multicluster.kubernetes.io/derived-service) or whose
// derived name it is.
func (ix *index) importOfDerived(namespace, derived string) string {
	if svc := ix.services[objectKey{namespace, derived}]; svc != nil {
		if name := svc.Labels[mcsv1beta1.LabelServiceName]; name != "" {
			return name
		}
	}
	for _, key := range ix.importKeys {
		if key.namespace == namespace && reconcile.DerivedServiceOf(ix.imports[key]) == derived {
			return key.name
		}
	}
	return ""
}

// hasHostname says whether any endpoint of the import, ready or not, has
// the DNS label host.
func (ix *index) hasHostname(namespace, service, host string) bool {
	return len(ix.endpointsWithHostname(objectKey{namespace, service}, host)) > 0
}

// clustersWithHostname lists, sorted, the clusters exporting an endpoint of
// the import whose DNS label is host.
func (ix *index) clustersWithHostname(namespace, service, host string) []string {
	var clusters []string
	for _, ep := range ix.endpointsWithHostname(objectKey{namespace, service}, host) {
		if !slices.Contains(clusters, ep.cluster) {
			clusters = append(clusters, ep.cluster)
		}
	}
	return clusters
}

func status(l lookup, records []Record) Status {
	switch {
	case !l.found:
		return StatusNXDomain
	case len(records) == 0:
		return StatusNoData
	}
	return StatusNoError
}

// addressRecords builds the A and AAAA answers: one record per distinct
// address, as CoreDNS's plugin.A deduplicates by address. An address that
// does not parse as an IP (an FQDN slice) would be a CNAME in CoreDNS and is
// left out.
func addressRecords(owner string, l lookup) ([]Record, []Unserved) {
	var records []Record
	seen := map[string]bool{}
	for _, e := range l.entries {
		if rt := addressType(e.address); rt != "" && !seen[e.address] {
			seen[e.address] = true
			records = append(records, Record{Type: rt, Name: owner, Address: e.address, Cluster: e.cluster, Hostname: e.hostname, Ready: true})
		}
	}
	var unserved []Unserved
	for _, e := range l.skipped {
		if rt := addressType(e.address); rt != "" && !seen[e.address] {
			seen[e.address] = true
			unserved = append(unserved, Unserved{
				Record: Record{Type: rt, Name: owner, Address: e.address, Cluster: e.cluster, Hostname: e.hostname},
				Reason: ReasonNotReady,
			})
		}
	}
	sortRecords(records)
	slices.SortFunc(unserved, func(a, b Unserved) int { return compareRecords(a.Record, b.Record) })
	return records, unserved
}

// srvRecords builds the SRV answer as CoreDNS's plugin.SRV does: entries
// with the sentinel port -1 are dropped, records are deduplicated by
// (target, port), every record has priority 0 and the weight
// floor(100 / number of entries), at least 1.
func srvRecords(owner string, l lookup) ([]Record, []Unserved) {
	weight := uint16(1)
	if n := len(l.entries); n > 0 {
		weight = uint16(max(1, math.Floor(100/float64(n))))
	}
	type srvKey struct {
		target string
		port   int32
	}
	var records []Record
	at := map[srvKey]int{}
	for _, e := range l.entries {
		if e.port == -1 {
			continue
		}
		key := srvKey{e.target, e.port}
		i, ok := at[key]
		if !ok {
			i = len(records)
			at[key] = i
			records = append(records, Record{Type: RecordSRV, Name: owner, Target: e.target, Port: e.port, Weight: weight,
				Cluster: e.cluster, Hostname: e.hostname, Ready: true})
		}
		if !slices.Contains(records[i].TargetAddresses, e.address) {
			records[i].TargetAddresses = append(records[i].TargetAddresses, e.address)
		}
	}
	var unserved []Unserved
	for _, e := range l.skipped {
		if e.port == -1 {
			continue
		}
		unserved = append(unserved, Unserved{
			Record: Record{Type: RecordSRV, Name: owner, Target: e.target, Port: e.port, TargetAddresses: []string{e.address},
				Cluster: e.cluster, Hostname: e.hostname},
			Reason: ReasonNotReady,
		})
	}
	for i := range records {
		slices.Sort(records[i].TargetAddresses)
	}
	sortRecords(records)
	slices.SortFunc(unserved, func(a, b Unserved) int { return compareRecords(a.Record, b.Record) })
	return records, unserved
}

// addressType is CoreDNS's msg.Service.HostType for an IP: A when it has an
// IPv4 form, AAAA otherwise; "" when it is not an IP.
func addressType(address string) RecordType {
	ip := net.ParseIP(address)
	switch {
	case ip == nil:
		return ""
	case ip.To4() != nil:
		return RecordA
	}
	return RecordAAAA
}

// compareAddresses orders IPs numerically (198.18.0.9 before 198.18.0.10),
// anything else as text.
func compareAddresses(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}

var recordTypeOrder = map[RecordType]int{RecordA: 0, RecordAAAA: 1, RecordSRV: 2, RecordTXT: 3}

func sortRecords(records []Record) { slices.SortFunc(records, compareRecords) }

func compareRecords(a, b Record) int {
	return cmp.Or(
		cmp.Compare(recordTypeOrder[a.Type], recordTypeOrder[b.Type]),
		strings.Compare(a.Cluster, b.Cluster),
		strings.Compare(a.Hostname, b.Hostname),
		compareAddresses(a.Address, b.Address),
		strings.Compare(a.Target, b.Target),
		cmp.Compare(a.Port, b.Port),
	)
}
