package dns

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// renderAnswer prints an answer one fact a line, for golden comparisons.
func renderAnswer(a Answer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", a.Status)
	if a.Service != "" {
		fmt.Fprintf(&b, " import=%s/%s", a.Namespace, a.Service)
	}
	if a.NeedsRewrite {
		b.WriteString(" needs-rewrite")
	}
	if a.Forbidden {
		b.WriteString(" forbidden")
	}
	b.WriteString("\n")
	for _, r := range a.Records {
		fmt.Fprintf(&b, "%s\n", renderRecord(r))
	}
	for _, u := range a.Unserved {
		fmt.Fprintf(&b, "unserved %s (%s)\n", renderRecord(u.Record), u.Reason)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

func renderRecord(r Record) string {
	var value string
	switch r.Type {
	case RecordA, RecordAAAA:
		value = r.Address
	case RecordSRV:
		value = fmt.Sprintf("%d %d %d %s %v", r.Priority, r.Weight, r.Port, r.Target, r.TargetAddresses)
	case RecordTXT:
		value = r.Text
	}
	s := fmt.Sprintf("%s %s %s", r.Name, r.Type, value)
	if r.Cluster != "" || r.Hostname != "" {
		s += fmt.Sprintf(" from=%s/%s", r.Cluster, r.Hostname)
	}
	return s
}

// The records of these names were checked against CoreDNS 1.15.0 serving
// the same objects from a kube-apiserver (kubernetes plugin with
// `multicluster clusterset.local`, plus the vendor rewrite rule).
func TestResolveSeedState(t *testing.T) {
	state := seedState(t)
	tests := []struct {
		name string
		want string
	}{
		{
			name: "mysql.provider-ns.svc.clusterset.local",
			want: `NOERROR import=provider-ns/mysql
mysql.provider-ns.svc.clusterset.local. A 198.18.0.11 from=cluster1/mysql-0
mysql.provider-ns.svc.clusterset.local. A 198.18.0.12 from=cluster1/mysql-1
mysql.provider-ns.svc.clusterset.local. A 198.18.32.11 from=cluster3/mysql-0
unserved mysql.provider-ns.svc.clusterset.local. A 198.18.0.13 from=cluster1/mysql-2 (not ready)
`,
		},
		{
			name: "mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local",
			want: `NOERROR import=provider-ns/mysql
mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local. A 198.18.0.11 from=cluster1/mysql-0
`,
		},
		{
			name: "mysql-2.cluster1.mysql.provider-ns.svc.clusterset.local",
			want: `NXDOMAIN import=provider-ns/mysql
unserved mysql-2.cluster1.mysql.provider-ns.svc.clusterset.local. A 198.18.0.13 from=cluster1/mysql-2 (not ready)
note: every endpoint this name would reach is not ready; CoreDNS answers NXDOMAIN until one is
`,
		},
		{
			name: "mysql-0.cluster2.mysql.provider-ns.svc.clusterset.local",
			want: `NXDOMAIN import=provider-ns/mysql
note: "mysql-0" is exported by cluster1 and cluster3, not by "cluster2"
`,
		},
		{
			name: "mysql-0.mysql.provider-ns.svc.clusterset.local",
			want: `NOERROR import=provider-ns/mysql needs-rewrite
mysql-0.mysql.provider-ns.svc.clusterset.local. A 198.18.0.11 from=cluster1/mysql-0
mysql-0.mysql.provider-ns.svc.clusterset.local. A 198.18.32.11 from=cluster3/mysql-0
note: upstream CoreDNS answers NXDOMAIN for this form; with kubectl-mcs's rewrite rule it answers as mysql-0.amcs-mysql.provider-ns.svc.cluster.local.
note: "mysql-0" is exported by cluster1 and cluster3: this name answers with all of them; pick one with <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local
`,
		},
		{
			name: "cluster1.mysql.provider-ns.svc.clusterset.local",
			want: `NXDOMAIN import=provider-ns/mysql needs-rewrite forbidden
note: "cluster1" is a cluster id, not a pod hostname: the MCS DNS specification forbids <clusterid>.<svc>.<ns>.svc.clusterset.local; use <svc>.<ns>.svc.clusterset.local or <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local
`,
		},
		{
			name: "_tcp._tcp.mysql.provider-ns.svc.clusterset.local",
			want: `NOERROR import=provider-ns/mysql
_tcp._tcp.mysql.provider-ns.svc.clusterset.local. SRV 0 33 3306 mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local. [198.18.0.11] from=cluster1/mysql-0
_tcp._tcp.mysql.provider-ns.svc.clusterset.local. SRV 0 33 3306 mysql-1.cluster1.mysql.provider-ns.svc.clusterset.local. [198.18.0.12] from=cluster1/mysql-1
_tcp._tcp.mysql.provider-ns.svc.clusterset.local. SRV 0 33 3306 mysql-0.cluster3.mysql.provider-ns.svc.clusterset.local. [198.18.32.11] from=cluster3/mysql-0
unserved _tcp._tcp.mysql.provider-ns.svc.clusterset.local. SRV 0 0 3306 mysql-2.cluster1.mysql.provider-ns.svc.clusterset.local. [198.18.0.13] from=cluster1/mysql-2 (not ready)
`,
		},
		{
			name: "mysql-0.amcs-mysql.provider-ns.svc.cluster.local",
			want: `NOERROR import=provider-ns/mysql
mysql-0.amcs-mysql.provider-ns.svc.cluster.local. A 198.18.0.11 from=cluster1/mysql-0
mysql-0.amcs-mysql.provider-ns.svc.cluster.local. A 198.18.32.11 from=cluster3/mysql-0
note: "mysql-0" is exported by cluster1 and cluster3: this name answers with all of them; pick one with <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local
`,
		},
		{
			name: "amcs-mysql.provider-ns.svc.cluster.local",
			want: `NOERROR import=provider-ns/mysql
amcs-mysql.provider-ns.svc.cluster.local. A 198.18.0.11 from=cluster1/mysql-0
amcs-mysql.provider-ns.svc.cluster.local. A 198.18.0.12 from=cluster1/mysql-1
amcs-mysql.provider-ns.svc.cluster.local. A 198.18.32.11 from=cluster3/mysql-0
unserved amcs-mysql.provider-ns.svc.cluster.local. A 198.18.0.13 from=cluster1/mysql-2 (not ready)
`,
		},
		{
			name: "redis.provider-ns.svc.clusterset.local",
			want: `NXDOMAIN import=provider-ns/redis
unserved redis.provider-ns.svc.clusterset.local. A 198.18.0.31 from=cluster1/redis-0 (not ready)
note: every endpoint this name would reach is not ready; CoreDNS answers NXDOMAIN until one is
`,
		},
		{
			name: "web.shop.svc.clusterset.local",
			want: `NOERROR import=shop/web
web.shop.svc.clusterset.local. A 198.19.0.20
`,
		},
		{
			name: "_http._tcp.web.shop.svc.clusterset.local",
			want: `NOERROR import=shop/web
_http._tcp.web.shop.svc.clusterset.local. SRV 0 100 80 web.shop.svc.clusterset.local. [198.19.0.20]
`,
		},
		{
			name: "_http._udp.web.shop.svc.clusterset.local",
			want: `NXDOMAIN import=shop/web
note: the ServiceImport has no port matching "_http._udp.web.shop.svc.clusterset.local.", so CoreDNS answers NXDOMAIN
`,
		},
		{
			name: "198-18-0-21.cluster1.web.shop.svc.clusterset.local",
			want: `NOERROR import=shop/web
198-18-0-21.cluster1.web.shop.svc.clusterset.local. A 198.18.0.21 from=cluster1/198-18-0-21
note: the MCS DNS specification defines per-pod names for Headless imports only; CoreDNS answers them for ClusterSetIP imports too
`,
		},
		{
			name: "amcs-web.shop.svc.cluster.local",
			want: `NOERROR import=shop/web
amcs-web.shop.svc.cluster.local. A 198.19.0.20
`,
		},
		{
			name: "_http._tcp.amcs-web.shop.svc.cluster.local",
			want: `NOERROR import=shop/web
_http._tcp.amcs-web.shop.svc.cluster.local. SRV 0 100 80 amcs-web.shop.svc.cluster.local. [198.19.0.20]
`,
		},
		{
			name: "dns-version.clusterset.local",
			want: `NOERROR
dns-version.clusterset.local. TXT 1.1.0
note: CoreDNS answers its Kubernetes DNS schema version "1.1.0" here; the MCS DNS specification says "1.0.0"
`,
		},
		{
			name: "nosuch.provider-ns.svc.clusterset.local",
			want: `NXDOMAIN
note: no ServiceImport provider-ns/nosuch in this cluster: kubectl mcs import creates it
`,
		},
		{
			name: "amcs-nosuch.provider-ns.svc.cluster.local",
			want: `NXDOMAIN
note: no Service provider-ns/amcs-nosuch in this cluster: it is created by kubectl mcs import
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := renderAnswer(Resolve(state, n)); got != tt.want {
				t.Errorf("Resolve(%s):\n%s\nwant:\n%s", tt.name, got, tt.want)
			}
		})
	}
}

func TestResolveClusterSetIPBeforeItsIPIsKnown(t *testing.T) {
	state := seedState(t)
	for i := range state.Imports {
		state.Imports[i].Spec.IPs = nil
	}
	a := Resolve(state, mustParse(t, "web.shop.svc.clusterset.local"))
	want := `NODATA import=shop/web
note: the ServiceImport has no spec.ips yet: run kubectl mcs import again once the derived Service has its cluster IP
`
	if got := renderAnswer(a); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A service name longer than 58 characters has a shortened derived Service,
// which the rewrite rule cannot name: the rewritten label is over 63
// characters and CoreDNS answers SERVFAIL.
func TestResolveVendorFormOfALongService(t *testing.T) {
	svc := "s" + strings.Repeat("x", 58)
	a := Resolve(State{}, mustParse(t, "mysql-0."+svc+".provider-ns.svc.clusterset.local"))
	if a.Status != StatusServFail || !a.NeedsRewrite || len(a.Records) != 0 {
		t.Fatalf("got %s", renderAnswer(a))
	}
	if !strings.Contains(a.Notes[0], "is 64 characters") {
		t.Errorf("note does not say why: %q", a.Notes[0])
	}
}

// A pod hostname that equals a cluster id is still a hostname: the vendor
// form answers, with a warning.
func TestResolveHostnameThatIsAClusterID(t *testing.T) {
	state := seedState(t)
	state.EndpointSlices[0].Endpoints[0].Hostname = ptr("cluster3")
	a := Resolve(state, mustParse(t, "cluster3.mysql.provider-ns.svc.clusterset.local"))
	want := `NOERROR import=provider-ns/mysql needs-rewrite
cluster3.mysql.provider-ns.svc.clusterset.local. A 198.18.0.11 from=cluster1/cluster3
note: upstream CoreDNS answers NXDOMAIN for this form; with kubectl-mcs's rewrite rule it answers as cluster3.amcs-mysql.provider-ns.svc.cluster.local.
note: "cluster3" is both a pod hostname and a cluster id; the MCS DNS specification forbids <clusterid>.<svc>.<ns>.svc.clusterset.local, so prefer <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local
`
	if got := renderAnswer(a); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A dual-stack headless import: one slice per address family, endpoints
// without hostnames named by their dashed IPs, AAAA records for IPv6.
func TestResolveDualStack(t *testing.T) {
	state := State{
		Imports: []mcsv1beta1.ServiceImport{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
			Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.Headless, Ports: []mcsv1beta1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}},
		}},
		EndpointSlices: []discoveryv1.EndpointSlice{
			mirroredSlice("shop", "db", "cluster1", discoveryv1.AddressTypeIPv6, "pg", 5432,
				discoveryv1.Endpoint{Addresses: []string{"fd00::1"}},
				discoveryv1.Endpoint{Addresses: []string{"fd00::"}}),
			mirroredSlice("shop", "db", "cluster1", discoveryv1.AddressTypeIPv4, "pg", 5432,
				discoveryv1.Endpoint{Addresses: []string{"198.18.0.41"}}),
		},
	}
	tests := []struct{ name, want string }{
		{"db.shop.svc.clusterset.local", `NOERROR import=shop/db
db.shop.svc.clusterset.local. A 198.18.0.41 from=cluster1/198-18-0-41
db.shop.svc.clusterset.local. AAAA fd00:: from=cluster1/fd00--0
db.shop.svc.clusterset.local. AAAA fd00::1 from=cluster1/fd00--1
`},
		{"fd00--1.cluster1.db.shop.svc.clusterset.local", `NOERROR import=shop/db
fd00--1.cluster1.db.shop.svc.clusterset.local. AAAA fd00::1 from=cluster1/fd00--1
`},
		{"_pg._tcp.db.shop.svc.clusterset.local", `NOERROR import=shop/db
_pg._tcp.db.shop.svc.clusterset.local. SRV 0 33 5432 198-18-0-41.cluster1.db.shop.svc.clusterset.local. [198.18.0.41] from=cluster1/198-18-0-41
_pg._tcp.db.shop.svc.clusterset.local. SRV 0 33 5432 fd00--0.cluster1.db.shop.svc.clusterset.local. [fd00::] from=cluster1/fd00--0
_pg._tcp.db.shop.svc.clusterset.local. SRV 0 33 5432 fd00--1.cluster1.db.shop.svc.clusterset.local. [fd00::1] from=cluster1/fd00--1
`},
	}
	for _, tt := range tests {
		if got := renderAnswer(Resolve(state, mustParse(t, tt.name))); got != tt.want {
			t.Errorf("Resolve(%s):\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}

func TestEndpointHostname(t *testing.T) {
	tests := []struct {
		hostname *string
		address  string
		want     string
	}{
		{ptr("mysql-0"), "198.18.0.11", "mysql-0"},
		{ptr(""), "198.18.0.11", "198-18-0-11"},
		{nil, "198.18.0.11", "198-18-0-11"},
		{nil, "fd00::1", "fd00--1"},
		{nil, "fd00::", "fd00--0"},
	}
	for _, tt := range tests {
		if got := endpointHostname(tt.hostname, tt.address); got != tt.want {
			t.Errorf("endpointHostname(%v, %q) = %q, want %q", tt.hostname, tt.address, got, tt.want)
		}
	}
}

// The caller lists objects in whatever order the API returned them; the
// answer must not depend on it.
func TestResolveIgnoresInputOrder(t *testing.T) {
	state := seedState(t)
	reversed := seedState(t)
	slices.Reverse(reversed.Imports)
	slices.Reverse(reversed.Services)
	slices.Reverse(reversed.EndpointSlices)
	for _, name := range []string{"mysql.provider-ns.svc.clusterset.local", "_tcp._tcp.mysql.provider-ns.svc.clusterset.local", "mysql-0.mysql.provider-ns.svc.clusterset.local"} {
		n := mustParse(t, name)
		if a, b := Resolve(state, n), Resolve(reversed, n); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: answers differ with the input order:\n%s\n%s", name, renderAnswer(a), renderAnswer(b))
		}
	}
	if a, b := NamesForHost(state, "", "mysql-0"), NamesForHost(reversed, "", "mysql-0"); !reflect.DeepEqual(a, b) {
		t.Errorf("NamesForHost differs with the input order")
	}
}

func mustParse(t testing.TB, name string) Name {
	t.Helper()
	n, err := Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// mirroredSlice is an EndpointSlice labeled the way kubectl mcs import
// labels its mirrors.
func mirroredSlice(namespace, service, cluster string, family discoveryv1.AddressType, portName string, port int32, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      fmt.Sprintf("amcs-%s.%s-%s-0", service, cluster, strings.ToLower(string(family))),
			Labels: map[string]string{
				discoveryv1.LabelServiceName:  "amcs-" + service,
				mcsv1beta1.LabelServiceName:   service,
				mcsv1beta1.LabelSourceCluster: cluster,
				discoveryv1.LabelManagedBy:    "kubectl-mcs",
			},
		},
		AddressType: family,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: ptr(corev1.ProtocolTCP)}},
	}
}
