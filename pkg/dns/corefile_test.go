package dns

import (
	"reflect"
	"strings"
	"testing"
)

// seedCorefile is the Corefile of the seed's step 3 (ConfigMap
// kube-system/coredns of the vendor's cluster), its "..." filled with the
// usual plugins: a top-level `multicluster` line with a trailing comment,
// and a blank line opening the kubernetes block.
const seedCorefile = `.:53 {
    errors
    health {
       lameduck 15s
    }
    ready
    multicluster clusterset.local    #增加配置项,支持多集群服务域名解析。
    kubernetes cluster.local in-addr.arpa ip6.arpa {

      pods verified
      ttl 30
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`

// kubeadmCorefile is the Corefile kubeadm installs.
const kubeadmCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`

const vendorRule = `rewrite stop {
%s  name regex ^([^._][^.]*)\.([^._][^.]*)\.([^._][^.]*)\.svc\.clusterset\.local\.$ {1}.amcs-{2}.{3}.svc.cluster.local.
%s  answer name ^([^.]+)\.amcs-([^.]+)\.([^.]+)\.svc\.cluster\.local\.$ {1}.{2}.{3}.svc.clusterset.local.
%s}`

func TestPatchCorefile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		opts    PatchOptions
		want    string
		changes []string
	}{
		{
			name: "seed",
			in:   seedCorefile,
			want: `.:53 {
    errors
    health {
       lameduck 15s
    }
    ready
    kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {

      pods verified
      ttl 30
      fallthrough in-addr.arpa ip6.arpa
      multicluster clusterset.local
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`,
			changes: []string{
				"line 7: removed \"multicluster clusterset.local    #增加配置项,支持多集群服务域名解析。\", the vendor's own plugin, which upstream CoreDNS refuses to start with; its upstream equivalent is `multicluster clusterset.local` inside the kubernetes block",
				"line 8: added clusterset.local to the kubernetes plugin's zones",
				"line 8: added `multicluster clusterset.local` to the kubernetes block",
			},
		},
		{
			name: "seed with the vendor form",
			in:   seedCorefile,
			opts: PatchOptions{VendorForm: true},
			want: `.:53 {
    errors
    health {
       lameduck 15s
    }
    ready
    # kubectl-mcs: serve <host>.<svc>.<ns>.svc.clusterset.local (the vendor form) through the derived Service amcs-<svc>
    ` + indentRule("    ", "  ") + `
    kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {

      pods verified
      ttl 30
      fallthrough in-addr.arpa ip6.arpa
      multicluster clusterset.local
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`,
			changes: []string{
				"line 7: removed \"multicluster clusterset.local    #增加配置项,支持多集群服务域名解析。\", the vendor's own plugin, which upstream CoreDNS refuses to start with; its upstream equivalent is `multicluster clusterset.local` inside the kubernetes block",
				"line 8: added kubectl-mcs's rewrite rule for the vendor form <host>.<svc>.<ns>.svc.clusterset.local before the kubernetes plugin",
				"line 8: added clusterset.local to the kubernetes plugin's zones",
				"line 8: added `multicluster clusterset.local` to the kubernetes block",
			},
		},
		{
			name: "kubeadm",
			in:   kubeadmCorefile,
			want: strings.Replace(strings.Replace(kubeadmCorefile,
				"kubernetes cluster.local in-addr.arpa", "kubernetes cluster.local clusterset.local in-addr.arpa", 1),
				"       ttl 30\n", "       ttl 30\n       multicluster clusterset.local\n", 1),
			changes: []string{
				"line 7: added clusterset.local to the kubernetes plugin's zones",
				"line 7: added `multicluster clusterset.local` to the kubernetes block",
			},
		},
		{
			name: "kubeadm with the vendor form",
			in:   kubeadmCorefile,
			opts: PatchOptions{VendorForm: true},
			want: `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    # kubectl-mcs: serve <host>.<svc>.<ns>.svc.clusterset.local (the vendor form) through the derived Service amcs-<svc>
    ` + indentRule("    ", "   ") + `
    kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
       multicluster clusterset.local
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`,
			changes: []string{
				"line 7: added kubectl-mcs's rewrite rule for the vendor form <host>.<svc>.<ns>.svc.clusterset.local before the kubernetes plugin",
				"line 7: added clusterset.local to the kubernetes plugin's zones",
				"line 7: added `multicluster clusterset.local` to the kubernetes block",
			},
		},
		{
			name: "kubernetes without a block, tab-indented",
			in:   ".:53 {\n\terrors\n\tkubernetes cluster.local in-addr.arpa ip6.arpa\n\tforward . /etc/resolv.conf\n}\n",
			want: ".:53 {\n\terrors\n\tkubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {\n\t\tmulticluster clusterset.local\n\t}\n\tforward . /etc/resolv.conf\n}\n",
			changes: []string{
				"line 3: added clusterset.local to the kubernetes plugin's zones",
				"line 3: added a block with `multicluster clusterset.local` to the kubernetes plugin",
			},
		},
		{
			// Without zones the plugin serves the server block's; they are
			// written out so that adding clusterset.local keeps them.
			name: "kubernetes without zones",
			in:   ".:53 {\n  kubernetes {\n    pods insecure\n  }\n}\n",
			want: ".:53 {\n  kubernetes . clusterset.local {\n    pods insecure\n    multicluster clusterset.local\n  }\n}\n",
			changes: []string{
				"line 2: added clusterset.local to the kubernetes plugin's zones",
				"line 2: added `multicluster clusterset.local` to the kubernetes block",
			},
		},
		{
			// A bare `multicluster` declares no zone at all.
			name: "bare multicluster option",
			in:   ".:53 {\n    kubernetes cluster.local clusterset.local {\n        multicluster\n        pods insecure\n    }\n}\n",
			want: ".:53 {\n    kubernetes cluster.local clusterset.local {\n        multicluster clusterset.local\n        pods insecure\n    }\n}\n",
			changes: []string{
				"line 3: added clusterset.local to the kubernetes block's multicluster option",
			},
		},
		{
			name: "the kubernetes plugin of the second server block",
			in:   "example.org:53 {\n    forward . 192.0.2.53\n}\n\n.:53 {\n    kubernetes cluster.local # the cluster zone\n    forward . /etc/resolv.conf\n}\n",
			want: "example.org:53 {\n    forward . 192.0.2.53\n}\n\n.:53 {\n    kubernetes cluster.local clusterset.local {\n        multicluster clusterset.local\n    } # the cluster zone\n    forward . /etc/resolv.conf\n}\n",
			changes: []string{
				"line 6: added clusterset.local to the kubernetes plugin's zones",
				"line 6: added a block with `multicluster clusterset.local` to the kubernetes plugin",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanCorefilePatch(tt.in, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Corefile != tt.want {
				t.Errorf("patched Corefile:\n%s\nwant:\n%s", p.Corefile, tt.want)
			}
			if !reflect.DeepEqual(p.Changes, tt.changes) {
				t.Errorf("changes:\n%q\nwant:\n%q", p.Changes, tt.changes)
			}
			// Idempotent: the patched Corefile needs nothing more.
			again, changed, err := PatchCorefile(p.Corefile, tt.opts)
			if err != nil || changed || again != p.Corefile {
				t.Errorf("patching twice: changed=%v err=%v\n%s", changed, err, again)
			}
			if r := CheckCorefile(p.Corefile); !r.ServesClusterSet() || r.VendorRewrite != tt.opts.VendorForm {
				t.Errorf("the patched Corefile does not check clean: %+v", r)
			}
		})
	}
}

func indentRule(indent, unit string) string {
	r := strings.ReplaceAll(vendorRule, "%s  ", indent+unit)
	return strings.ReplaceAll(r, "%s}", indent+"}")
}

func TestPatchCorefileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no kubernetes plugin", ".:53 {\n    forward . /etc/resolv.conf\n}\n", "no server block has a kubernetes plugin"},
		{"server block not receiving clusterset.local", "cluster.local:53 {\n    kubernetes cluster.local\n}\n",
			"the server blocks with a kubernetes plugin (cluster.local:53) do not receive clusterset.local queries"},
		{"unclosed block", ".:53 {\n    kubernetes cluster.local {\n        pods insecure\n}\n", "line 1: '{' is never closed"},
		{"unclosed quote", ".:53 {\n    hosts \"x\n}\n", "a quoted string is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := PatchCorefile(tt.in, PatchOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PatchCorefile error = %v, want it to contain %q", err, tt.want)
			}
			if changed || out != tt.in {
				t.Errorf("a failed patch must return the Corefile unchanged")
			}
			if r := CheckCorefile(tt.in); r.ServesClusterSet() || !strings.Contains(strings.Join(r.Problems, "\n"), tt.want) {
				t.Errorf("CheckCorefile problems = %q, want one containing %q", r.Problems, tt.want)
			}
		})
	}
}

func TestCheckCorefile(t *testing.T) {
	seed := CheckCorefile(seedCorefile)
	want := Report{
		ServerBlock:          ".:53",
		KubernetesLine:       8,
		KubernetesZones:      []string{"cluster.local", "in-addr.arpa", "ip6.arpa"},
		VendorDirectiveLines: []int{7},
		Problems: []string{
			"line 7: top-level \"multicluster clusterset.local    #增加配置项,支持多集群服务域名解析。\" is the vendor's own plugin; upstream CoreDNS has none and refuses to start (Unknown directive 'multicluster'); remove it and put `multicluster clusterset.local` inside the kubernetes block",
			"line 8: the kubernetes plugin's zones (cluster.local in-addr.arpa ip6.arpa) do not include clusterset.local; CoreDNS serves a multicluster zone only from its own zones: add it, e.g. `kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa`",
			"line 8: the kubernetes block has no `multicluster clusterset.local`; without it every clusterset.local name is NXDOMAIN: add that line inside the block",
		},
	}
	if !reflect.DeepEqual(seed, want) {
		t.Errorf("CheckCorefile(seed) =\n%#v\nwant\n%#v", seed, want)
	}

	patched, _, err := PatchCorefile(kubeadmCorefile, PatchOptions{VendorForm: true})
	if err != nil {
		t.Fatal(err)
	}
	want = Report{
		ServerBlock:        ".:53",
		KubernetesLine:     12,
		KubernetesZones:    []string{"cluster.local", "clusterset.local", "in-addr.arpa", "ip6.arpa"},
		ZoneListed:         true,
		MulticlusterOption: true,
		VendorRewrite:      true,
	}
	if got := CheckCorefile(patched); !reflect.DeepEqual(got, want) {
		t.Errorf("CheckCorefile(patched kubeadm) =\n%#v\nwant\n%#v", got, want)
	}

	// A blanket rewrite of clusterset.local onto cluster.local (what some
	// guides suggest) swallows the multicluster answers.
	blanket := strings.Replace(patched, "    kubernetes cluster.local",
		"    rewrite name suffix .svc.clusterset.local .svc.cluster.local answer auto\n    kubernetes cluster.local", 1)
	if got := CheckCorefile(blanket); len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "line 12: this rewrite rule also matches clusterset.local names") {
		t.Errorf("warnings = %q", got.Warnings)
	}
}

// The tokenizer follows CoreDNS's Caddy lexer: '#' starts a comment even
// inside a word, a quoted token may hold spaces, braces and newlines, and
// \" is its only escape.
func TestLexCorefile(t *testing.T) {
	src := "a b#c d\n\"x { y\" \"q\\\"uote\" \"back\\slash\"\n\"two\nlines\" z # tail\n"
	toks, err := lexCorefile(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range toks {
		got = append(got, tok.text)
	}
	want := []string{"a", "b", "x { y", `q"uote`, `back\slash`, "two\nlines", "z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tokens = %q, want %q", got, want)
	}
	if z := toks[len(toks)-1]; z.line != 4 || src[z.start:z.end] != "z" {
		t.Errorf("last token at line %d, span %q", z.line, src[z.start:z.end])
	}
}
