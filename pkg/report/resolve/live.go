// The live side of resolve: asking a real DNS server the names the
// clusterset says should answer, and marking where they disagree.

package resolve

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
)

// CompareLive asks a real DNS server every name and marks each row.
func CompareLive(ctx context.Context, server string, names []Name) {
	resolver := dns.ResolverFor(server)
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
		got, err := dns.Lookup(qctx, resolver, name, dns.RecordType(typ))
		cancel()
		slices.Sort(got)
		expected := slices.Clone(want[key])
		slices.Sort(expected)
		switch {
		case err != nil && !dns.IsNXDOMAIN(err):
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
