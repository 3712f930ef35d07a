package health

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
)

// checkLiveDNS asks the DNS server for the clusterset name of every service
// some cluster exports validly: a name that does not exist there means
// that DNS does not serve the import (yet).
func (r *run) checkLiveDNS(ctx context.Context) {
	var services []string // namespace/name, sorted
	for _, es := range r.plan.ExportStatuses {
		v := meta.FindStatusCondition(es.Conditions, string(mcsv1beta1.ServiceExportConditionValid))
		if key := es.Namespace + "/" + es.Name; v != nil && v.Status == metav1.ConditionTrue && !slices.Contains(services, key) {
			services = append(services, key)
		}
	}
	slices.Sort(services)
	resolver := dns.ResolverFor(r.opts.DNSServer)
	for _, key := range services {
		ns, name, _ := strings.Cut(key, "/")
		fqdn := fmt.Sprintf("%s.%s.svc.clusterset.local.", name, ns)
		c := Check{Name: fqdn, Cluster: r.opts.DNSServer}
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := dns.Lookup(qctx, resolver, fqdn, dns.RecordA)
		cancel()
		fix := fmt.Sprintf("kubectl mcs resolve %s -n %s --dns-server %s", name, ns, r.opts.DNSServer)
		switch {
		case err == nil && len(got) > 0:
			c.Result, c.Message = Pass, "answers "+joinComma(got)
		case err != nil && dns.IsNXDOMAIN(err):
			c.Result, c.Message, c.Fix = Fail, "NXDOMAIN: this DNS does not serve the import", []string{fix}
		case err != nil:
			c.Result, c.Message, c.Fix = Fail, err.Error(), []string{fix}
		default:
			c.Result, c.Message, c.Fix = Warn, "exists but answers no address (no ready endpoints?)", []string{fix}
		}
		r.add(CategoryLiveDNS, c)
	}
}
