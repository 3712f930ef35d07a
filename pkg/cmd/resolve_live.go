// The live side of resolve: asking a real DNS server the names the
// clusterset says should answer, and marking where they disagree.

package cmd

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
)

// compareLive asks a real DNS server every name and marks each row.
func compareLive(ctx context.Context, server string, names []ResolvedName) {
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
	// What each name should answer: the served records, when this DNS
	// serves the form.
	want := map[string][]string{}
	order := []string{}
	for _, n := range names {
		key := n.Name + " " + n.Type
		if _, ok := want[key]; !ok {
			want[key] = nil
			order = append(order, key)
		}
		if n.Served && n.Here != "no" && n.Answer != "" {
			want[key] = appendOnce(want[key], n.Answer)
		}
	}
	verdict := map[string]string{}
	for _, key := range order {
		name, typ, _ := strings.Cut(key, " ")
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := lookup(qctx, resolver, name, typ)
		cancel()
		slices.Sort(got)
		expected := slices.Clone(want[key])
		slices.Sort(expected)
		switch {
		case err != nil && !isNotFound(err):
			verdict[key] = "differs: " + err.Error()
		case slices.Equal(got, expected):
			verdict[key] = "agrees"
		case len(got) == 0:
			verdict[key] = "differs: no answer, want " + strings.Join(expected, ",")
		default:
			verdict[key] = "differs: got " + strings.Join(got, ",")
		}
	}
	for i := range names {
		names[i].Live = verdict[names[i].Name+" "+names[i].Type]
	}
}

func lookup(ctx context.Context, r *net.Resolver, name, typ string) ([]string, error) {
	switch typ {
	case string(dns.RecordSRV):
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		var out []string
		for _, s := range srvs {
			out = append(out, s.Target+":"+strconv.Itoa(int(s.Port)))
		}
		return out, err
	case string(dns.RecordTXT):
		txts, err := r.LookupTXT(ctx, name)
		var out []string
		for _, t := range txts {
			out = append(out, strconv.Quote(t))
		}
		return out, err
	}
	network := "ip4"
	if typ == string(dns.RecordAAAA) {
		network = "ip6"
	}
	ips, err := r.LookupIP(ctx, network, name)
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out, err
}

func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
