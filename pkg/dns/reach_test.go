package dns

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func renderReaches(reaches []Reach) string {
	var b strings.Builder
	for _, r := range reaches {
		state := "ready"
		if !r.Ready {
			state = "not-ready"
		}
		served := "served"
		if !r.Served {
			served = "NOT served (" + r.Reason + ")"
		}
		fmt.Fprintf(&b, "%s/%s %s %s %v %s: %s %s [%s]", r.Namespace, r.Service, r.Cluster, r.Hostname, r.Addresses, state, r.Name, served, r.ServedBy)
		if len(r.SharedWith) > 0 {
			fmt.Fprintf(&b, " shared with %v", r.SharedWith)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestNamesForHost(t *testing.T) {
	state := seedState(t)
	tests := []struct {
		namespace, host string
		want            string
	}{
		{"provider-ns", "mysql-0", `provider-ns/mysql cluster1 mysql-0 [198.18.0.11] ready: mysql-0.amcs-mysql.provider-ns.svc.cluster.local. served [cluster DNS (any)] shared with [cluster3]
provider-ns/mysql cluster1 mysql-0 [198.18.0.11] ready: mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local. served [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
provider-ns/mysql cluster1 mysql-0 [198.18.0.11] ready: mysql-0.mysql.provider-ns.svc.clusterset.local. served [CoreDNS with kubectl-mcs's rewrite rule for the vendor form] shared with [cluster3]
provider-ns/mysql cluster3 mysql-0 [198.18.32.11] ready: mysql-0.amcs-mysql.provider-ns.svc.cluster.local. served [cluster DNS (any)] shared with [cluster1]
provider-ns/mysql cluster3 mysql-0 [198.18.32.11] ready: mysql-0.cluster3.mysql.provider-ns.svc.clusterset.local. served [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
provider-ns/mysql cluster3 mysql-0 [198.18.32.11] ready: mysql-0.mysql.provider-ns.svc.clusterset.local. served [CoreDNS with kubectl-mcs's rewrite rule for the vendor form] shared with [cluster1]
`},
		{"", "MYSQL-1", `provider-ns/mysql cluster1 mysql-1 [198.18.0.12] ready: mysql-1.amcs-mysql.provider-ns.svc.cluster.local. served [cluster DNS (any)]
provider-ns/mysql cluster1 mysql-1 [198.18.0.12] ready: mysql-1.cluster1.mysql.provider-ns.svc.clusterset.local. served [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
provider-ns/mysql cluster1 mysql-1 [198.18.0.12] ready: mysql-1.mysql.provider-ns.svc.clusterset.local. served [CoreDNS with kubectl-mcs's rewrite rule for the vendor form]
`},
		{"provider-ns", "mysql-2", `provider-ns/mysql cluster1 mysql-2 [198.18.0.13] not-ready: mysql-2.amcs-mysql.provider-ns.svc.cluster.local. NOT served (not ready) [cluster DNS (any)]
provider-ns/mysql cluster1 mysql-2 [198.18.0.13] not-ready: mysql-2.cluster1.mysql.provider-ns.svc.clusterset.local. NOT served (not ready) [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
provider-ns/mysql cluster1 mysql-2 [198.18.0.13] not-ready: mysql-2.mysql.provider-ns.svc.clusterset.local. NOT served (not ready) [CoreDNS with kubectl-mcs's rewrite rule for the vendor form]
`},
		// An endpoint without hostname is reached by its dashed IP.
		{"shop", "198-18-0-21", `shop/web cluster1 198-18-0-21 [198.18.0.21] ready: 198-18-0-21.amcs-web.shop.svc.cluster.local. served [cluster DNS (any)]
shop/web cluster1 198-18-0-21 [198.18.0.21] ready: 198-18-0-21.cluster1.web.shop.svc.clusterset.local. served [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
shop/web cluster1 198-18-0-21 [198.18.0.21] ready: 198-18-0-21.web.shop.svc.clusterset.local. served [CoreDNS with kubectl-mcs's rewrite rule for the vendor form]
`},
		{"shop", "mysql-0", ""},
		{"", "nobody", ""},
	}
	for _, tt := range tests {
		t.Run(tt.namespace+"/"+tt.host, func(t *testing.T) {
			if got := renderReaches(NamesForHost(state, tt.namespace, tt.host)); got != tt.want {
				t.Errorf("NamesForHost(%q, %q):\n%s\nwant:\n%s", tt.namespace, tt.host, got, tt.want)
			}
		})
	}
}

func TestNamesForService(t *testing.T) {
	state := seedState(t)
	var b strings.Builder
	for _, a := range NamesForService(state, "", "web") {
		fmt.Fprintf(&b, "%s [%s]\n%s", a.Name, a.ServedBy, renderAnswer(a))
	}
	want := "web.shop.svc.clusterset.local. [CoreDNS >= 1.12.2 with `multicluster clusterset.local`]" + `
NOERROR import=shop/web
web.shop.svc.clusterset.local. A 198.19.0.20
_http._tcp.web.shop.svc.clusterset.local. [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
NOERROR import=shop/web
_http._tcp.web.shop.svc.clusterset.local. SRV 0 100 80 web.shop.svc.clusterset.local. [198.19.0.20]
_syslog._udp.web.shop.svc.clusterset.local. [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
NOERROR import=shop/web
_syslog._udp.web.shop.svc.clusterset.local. SRV 0 100 514 web.shop.svc.clusterset.local. [198.19.0.20]
amcs-web.shop.svc.cluster.local. [cluster DNS (any)]
NOERROR import=shop/web
amcs-web.shop.svc.cluster.local. A 198.19.0.20
_http._tcp.amcs-web.shop.svc.cluster.local. [cluster DNS (any)]
NOERROR import=shop/web
_http._tcp.amcs-web.shop.svc.cluster.local. SRV 0 100 80 amcs-web.shop.svc.cluster.local. [198.19.0.20]
_syslog._udp.amcs-web.shop.svc.cluster.local. [cluster DNS (any)]
NOERROR import=shop/web
_syslog._udp.amcs-web.shop.svc.cluster.local. SRV 0 100 514 amcs-web.shop.svc.cluster.local. [198.19.0.20]
`
	if got := b.String(); got != want {
		t.Errorf("NamesForService(web):\n%s\nwant:\n%s", got, want)
	}
	if got := NamesForService(state, "shop", "mysql"); got != nil {
		t.Errorf("NamesForService(shop, mysql) = %v, want nothing: mysql is imported in provider-ns", got)
	}
	var forms []Form
	for _, a := range NamesForService(state, "provider-ns", "mysql") {
		forms = append(forms, a.Name.Form)
	}
	if want := []Form{FormClusterSetService, FormClusterSetSRV, FormDerivedService, FormDerivedSRV}; fmt.Sprint(forms) != fmt.Sprint(want) {
		t.Errorf("mysql forms = %v, want %v", forms, want)
	}
}

// The names of the seed's mysql-0 resolve from exactly what the reconcile
// golden says the consumer holds after `kubectl mcs import`: the contract
// between the two packages (labels, derived name, hostnames).
func TestNamesForHostFromReconcileSeedGolden(t *testing.T) {
	state := loadState(t, filepath.Join("..", "reconcile", "testdata", "seed", "want.yaml"))
	got := renderReaches(NamesForHost(state, "provider-ns", "mysql-0"))
	want := `provider-ns/mysql cluster1 mysql-0 [198.18.0.11] ready: mysql-0.amcs-mysql.provider-ns.svc.cluster.local. served [cluster DNS (any)]
provider-ns/mysql cluster1 mysql-0 [198.18.0.11] ready: mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local. served [CoreDNS >= 1.12.2 with ` + "`multicluster clusterset.local`" + `]
provider-ns/mysql cluster1 mysql-0 [198.18.0.11] ready: mysql-0.mysql.provider-ns.svc.clusterset.local. served [CoreDNS with kubectl-mcs's rewrite rule for the vendor form]
`
	if got != want {
		t.Errorf("NamesForHost on the reconcile seed golden:\n%s\nwant:\n%s", got, want)
	}
}
