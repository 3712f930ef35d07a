package dns

import (
	"strings"
	"testing"
)

func TestParseForms(t *testing.T) {
	tests := []struct {
		in   string
		want Name
		fqdn string
	}{
		{
			in:   "mysql-0.amcs-mysql.provider-ns.svc.cluster.local",
			want: Name{Form: FormDerivedPod, Host: "mysql-0", Service: "amcs-mysql", Namespace: "provider-ns"},
			fqdn: "mysql-0.amcs-mysql.provider-ns.svc.cluster.local.",
		},
		{
			in:   "amcs-mysql.provider-ns.svc.cluster.local.",
			want: Name{Form: FormDerivedService, Service: "amcs-mysql", Namespace: "provider-ns"},
			fqdn: "amcs-mysql.provider-ns.svc.cluster.local.",
		},
		{
			in:   "_tcp._tcp.amcs-mysql.provider-ns.svc.cluster.local",
			want: Name{Form: FormDerivedSRV, Port: "tcp", Protocol: "tcp", Service: "amcs-mysql", Namespace: "provider-ns"},
			fqdn: "_tcp._tcp.amcs-mysql.provider-ns.svc.cluster.local.",
		},
		{
			in:   "mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local",
			want: Name{Form: FormClusterSetPod, Host: "mysql-0", ClusterID: "cluster1", Service: "mysql", Namespace: "provider-ns"},
			fqdn: "mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local.",
		},
		{
			// The seed's own form; also the shape of the forbidden
			// <clusterid>.<svc>.<ns> name, which only Resolve can tell.
			in:   "mysql-0.mysql.provider-ns.svc.clusterset.local",
			want: Name{Form: FormVendorPod, Host: "mysql-0", Service: "mysql", Namespace: "provider-ns"},
			fqdn: "mysql-0.mysql.provider-ns.svc.clusterset.local.",
		},
		{
			in:   "cluster1.mysql.provider-ns.svc.clusterset.local",
			want: Name{Form: FormVendorPod, Host: "cluster1", Service: "mysql", Namespace: "provider-ns"},
			fqdn: "cluster1.mysql.provider-ns.svc.clusterset.local.",
		},
		{
			in:   "MySQL.Provider-NS.SVC.ClusterSet.Local.",
			want: Name{Form: FormClusterSetService, Service: "mysql", Namespace: "provider-ns"},
			fqdn: "mysql.provider-ns.svc.clusterset.local.",
		},
		{
			in:   "_http._tcp.web.shop.svc.clusterset.local",
			want: Name{Form: FormClusterSetSRV, Port: "http", Protocol: "tcp", Service: "web", Namespace: "shop"},
			fqdn: "_http._tcp.web.shop.svc.clusterset.local.",
		},
		{
			in:   "_syslog._udp.web.shop.svc.clusterset.local",
			want: Name{Form: FormClusterSetSRV, Port: "syslog", Protocol: "udp", Service: "web", Namespace: "shop"},
			fqdn: "_syslog._udp.web.shop.svc.clusterset.local.",
		},
		{
			in:   "198-18-0-21.cluster1.web.shop.svc.clusterset.local",
			want: Name{Form: FormClusterSetPod, Host: "198-18-0-21", ClusterID: "cluster1", Service: "web", Namespace: "shop"},
			fqdn: "198-18-0-21.cluster1.web.shop.svc.clusterset.local.",
		},
		{
			in:   "dns-version.clusterset.local",
			want: Name{Form: FormDNSVersion},
			fqdn: "dns-version.clusterset.local.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.fqdn {
				t.Errorf("String = %q, want %q", got.String(), tt.fqdn)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "the name is empty"},
		{"only a dot", ".", "the name is empty"},
		{"label too long", long + ".provider-ns.svc.clusterset.local", `label "` + long + `" is 64 characters; a DNS label holds at most 63`},
		{"name too long", strings.Repeat("abcdefghi.", 25) + "svc.clusterset.local", "the name is 270 characters; a DNS name holds at most 253"},
		{"empty label", "mysql..provider-ns.svc.clusterset.local", "label 2 is empty"},
		{"leading dot", ".mysql.provider-ns.svc.clusterset.local", "label 1 is empty"},
		{"underscore inside a label", "my_sql.provider-ns.svc.clusterset.local", `label "my_sql" has "_"`},
		{"punctuation", "mysql!.provider-ns.svc.clusterset.local", `label "mysql!" has "!"`},
		{"space", "mysql 0.mysql.provider-ns.svc.clusterset.local", `has " "`},
		{"non-ascii", "mysql-0.mysql.provider-ns.svc.clusterset.lоcal", "non-ASCII"},
		{"kelvin sign lower-cases to k", "\u212Aube.ns.svc.clusterset.local", "non-ASCII"},
		{"bare underscore", "_._tcp.web.shop.svc.clusterset.local", "no name after its underscore"},
		{"unknown zone", "mysql.provider-ns.svc.example.com", "unknown zone"},
		{"pod subtree", "10-0-0-1.provider-ns.pod.clusterset.local", "clusterset.local holds only"},
		{"no service", "provider-ns.svc.clusterset.local", "the service is missing"},
		{"too many labels", "a.b.c.d.e.svc.clusterset.local", "too many labels"},
		{"ordinary service in cluster.local", "mysql.provider-ns.svc.cluster.local", `"mysql" is not a derived Service`},
		{"cluster id in cluster.local", "mysql-0.cluster1.amcs-mysql.provider-ns.svc.cluster.local", "cluster.local has no cluster-id form"},
		{"half an SRV name", "_tcp.cluster1.mysql.provider-ns.svc.clusterset.local", "an SRV name starts with two underscored labels"},
		{"unknown protocol", "_http._quic.web.shop.svc.clusterset.local", `protocol "quic"`},
		{"port name with no letter", "_80._tcp.web.shop.svc.clusterset.local", `port name "80"`},
		{"service starting with a digit", "0web.shop.svc.clusterset.local", `service "0web"`},
		{"hostname ending with a dash", "mysql-.mysql.provider-ns.svc.clusterset.local", `host "mysql-"`},
		{"underscored host", "_x.mysql.provider-ns.svc.clusterset.local", `host "_x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, n)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

// Every form's documented pattern, filled in, parses back to that form: the
// help text cannot drift from the parser.
func TestFormPatternsParse(t *testing.T) {
	fill := strings.NewReplacer("<host>", "mysql-0", "<clusterid>", "cluster1", "<svc>", "mysql", "<ns>", "provider-ns",
		"<port>", "tcp", "<proto>", "tcp")
	forms := []Form{FormDerivedPod, FormDerivedService, FormDerivedSRV, FormClusterSetPod, FormVendorPod,
		FormClusterSetService, FormClusterSetSRV, FormDNSVersion}
	for _, f := range forms {
		n, err := Parse(fill.Replace(f.Pattern()))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if n.Form != f {
			t.Errorf("%s pattern parses as %s", f, n.Form)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in       string
		wantWord string
		wantName string
		wantErr  string
	}{
		{in: "mysql-0", wantWord: "mysql-0"},
		{in: " MySQL ", wantWord: "mysql"},
		{in: "198-18-0-21", wantWord: "198-18-0-21"},
		{in: "mysql-0.amcs-mysql.provider-ns.svc.cluster.local", wantName: "mysql-0.amcs-mysql.provider-ns.svc.cluster.local."},
		{in: "mysql.provider-ns.svc.clusterset.local.", wantName: "mysql.provider-ns.svc.clusterset.local."},
		{in: "mysql.provider-ns", wantErr: "a partial name depends on the resolver's search path"},
		{in: "mysql-0.mysql.provider-ns.svc", wantErr: "unknown zone"},
		{in: "my_sql", wantErr: `"my_sql" is neither a pod hostname nor a service name`},
		{in: "", wantErr: "the name is empty"},
		{in: "mysql-0..x", wantErr: "label 2 is empty"},
		{in: "mysql-0.x.y.z.svc.elsewhere", wantErr: "give a pod hostname such as mysql-0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTarget(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				// Exactly one hint, never two in a row.
				if hints := strings.Count(err.Error(), "give a pod hostname"); tt.in != "" && hints != 1 {
					t.Errorf("ParseTarget(%q): %d hints in %q, want 1", tt.in, hints, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Word != tt.wantWord || got.IsName() != (tt.wantName != "") {
				t.Errorf("ParseTarget(%q) = %+v, want word %q", tt.in, got, tt.wantWord)
			}
			if tt.wantName != "" && got.Name.String() != tt.wantName {
				t.Errorf("ParseTarget(%q).Name = %q, want %q", tt.in, got.Name, tt.wantName)
			}
		})
	}
}

// TestServiceNames checks the names status lists against the parser: each
// is a name of the form it stands for once the placeholders are filled.
func TestServiceNames(t *testing.T) {
	for _, tc := range []struct {
		headless bool
		want     []string
	}{
		{false, []string{"web.shop.svc.clusterset.local", "amcs-web.shop.svc.cluster.local"}},
		{true, []string{"web.shop.svc.clusterset.local", "<pod>.amcs-web.shop.svc.cluster.local", "<pod>.<clusterid>.web.shop.svc.clusterset.local"}},
	} {
		got := ServiceNames("web", "shop", "amcs-web", tc.headless)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("headless=%t: %q, want %q", tc.headless, got, tc.want)
		}
		for _, name := range got {
			filled := strings.NewReplacer("<pod>", "web-0", "<clusterid>", "cluster1").Replace(name)
			if _, err := Parse(filled); err != nil {
				t.Errorf("%s is not a name resolve understands: %v", filled, err)
			}
		}
	}
}
