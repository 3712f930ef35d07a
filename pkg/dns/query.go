package dns

import (
	"context"
	"errors"
	"net"
	"strconv"
)

// ResolverFor returns a resolver that sends every query to server
// (HOST:PORT), the way a pod's resolver asks its cluster DNS.
func ResolverFor(server string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// Lookup asks r for name's records of type typ and returns them the way
// Record.Answer writes them: addresses, "target:port" for SRV, quoted TXT.
func Lookup(ctx context.Context, r *net.Resolver, name string, typ RecordType) ([]string, error) {
	switch typ {
	case RecordSRV:
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		var out []string
		for _, s := range srvs {
			out = append(out, s.Target+":"+strconv.Itoa(int(s.Port)))
		}
		return out, err
	case RecordTXT:
		txts, err := r.LookupTXT(ctx, name)
		var out []string
		for _, t := range txts {
			out = append(out, strconv.Quote(t))
		}
		return out, err
	}
	network := "ip4"
	if typ == RecordAAAA {
		network = "ip6"
	}
	ips, err := r.LookupIP(ctx, network, name)
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out, err
}

// IsNXDOMAIN reports whether a Lookup error means the name does not exist.
func IsNXDOMAIN(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
