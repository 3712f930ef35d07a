package e2e

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

var benchmarkRange = netip.MustParsePrefix("198.18.0.0/15")

// TestSeedWorkloadGetsEndpoints checks the test bed itself: the seed's
// StatefulSet, run by the real statefulset and endpointslice controllers,
// yields an EndpointSlice with hostnames mysql-0/mysql-1, and a real CoreDNS
// answers the per-pod cluster.local name with that pod's address.
func TestSeedWorkloadGetsEndpoints(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	provider := set.Cluster("cluster1")
	applySeedWorkload(ctx, t, provider)

	addrs := waitForHostnames(ctx, t, provider, fixtures.SeedNamespaceName, "mysql", "mysql-0", "mysql-1")
	for host, addr := range addrs {
		if !benchmarkRange.Contains(netip.MustParseAddr(addr)) {
			t.Errorf("%s has address %s, want one in %s", host, addr, benchmarkRange)
		}
	}
	if addrs["mysql-0"] == addrs["mysql-1"] {
		t.Errorf("mysql-0 and mysql-1 share address %s", addrs["mysql-0"])
	}

	dns, err := provider.StartCoreDNS(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := lookupEventually(ctx, t, dns, "mysql-0.mysql.provider-ns.svc.cluster.local.")
	if !slices.Equal(got, []string{addrs["mysql-0"]}) {
		t.Errorf("CoreDNS answers mysql-0.mysql.provider-ns.svc.cluster.local with %v, want [%s]", got, addrs["mysql-0"])
	}
}

// applySeedWorkload runs seed step 1.1-1.2 once per cluster set.
func applySeedWorkload(ctx context.Context, t *testing.T, c *localcluster.Cluster) {
	t.Helper()
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, fixtures.SeedNamespaceName, metav1.GetOptions{}); err == nil {
		return
	}
	for _, file := range []string{fixtures.SeedNamespace, fixtures.SeedMySQL} {
		lines, err := c.Create(ctx, fixtures.SeedNamespaceName, fixtures.MustRead(file))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", c.Name, lines)
	}
}

// waitForHostnames waits until the Service's EndpointSlices (made by the
// cluster's endpointslice controller) hold exactly the given hostnames, all
// ready, and returns hostname -> address.
func waitForHostnames(ctx context.Context, t *testing.T, c *localcluster.Cluster, namespace, service string, hostnames ...string) map[string]string {
	t.Helper()
	var got map[string]string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		slices, err := c.Client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return false, err
		}
		got = map[string]string{}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Hostname != nil && len(ep.Addresses) > 0 && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					got[*ep.Hostname] = ep.Addresses[0]
				}
			}
		}
		if len(got) != len(hostnames) {
			return false, nil
		}
		for _, h := range hostnames {
			if _, ok := got[h]; !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: EndpointSlices of %s/%s: want ready hostnames %v, last saw %v: %v", c.Name, namespace, service, hostnames, got, err)
	}
	return got
}

// lookupEventually resolves name through dns until it answers (the server's
// informers may lag the API by a moment) and returns the sorted addresses.
func lookupEventually(ctx context.Context, t *testing.T, dns *localcluster.CoreDNS, name string) []string {
	t.Helper()
	var addrs []string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		addrs, lastErr = dns.Resolver().LookupHost(ctx, name)
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("CoreDNS %s: %s did not resolve: %v", dns.Addr, name, lastErr)
	}
	slices.Sort(addrs)
	return addrs
}
