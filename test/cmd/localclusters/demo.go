package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// runDemo walks the seed scenario on two fresh local clusters with the
// plugin, printing each command before its output, then stops everything.
func runDemo(ctx context.Context, plugin string, n int) error {
	plugin, err := filepath.Abs(plugin)
	if err != nil {
		return err
	}
	if n < 2 {
		n = 2
	}
	step("Starting %d local clusters (etcd, kube-apiserver, kube-controller-manager, pod stand-in, MCS CRDs)", n)
	start := time.Now()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: n, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the local clusters")
		set.Stop()
		fmt.Println("done.")
	}()
	fmt.Printf("clusters ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	provider, consumer := set.Clusters[0], set.Clusters[1]

	step("Seed step 1: the MySQL StatefulSet behind a headless Service, in %s", provider.Name)
	if err := applySeed(ctx, provider, os.Stdout); err != nil {
		return err
	}
	addrs, err := waitForSeedEndpoints(ctx, provider)
	if err != nil {
		return err
	}
	for _, host := range sortedKeys(addrs) {
		fmt.Printf("%s: EndpointSlice endpoint %s -> %s (made by the real endpointslice controller)\n", provider.Name, host, addrs[host])
	}

	cacheDir, err := os.MkdirTemp("", "kubectl-mcs-demo-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	run := func(args ...string) error {
		fmt.Printf("\n$ kubectl mcs %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, plugin, args...)
		// A discovery cache of its own: the clusters' ports are ephemeral.
		cmd.Env = append(os.Environ(), "KUBECONFIG="+set.Kubeconfig, "KUBECACHEDIR="+cacheDir)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		return cmd.Run()
	}
	step("kubectl mcs, with KUBECONFIG=%s", set.Kubeconfig)
	for _, args := range [][]string{
		{"version"},
		{"crds", "check", "--clusters", provider.Name + "," + consumer.Name},
		// Seed step 1.3: the ServiceExport, without writing YAML.
		{"export", "mysql", "-n", "provider-ns", "--context", provider.Name},
		// Seed step 2: namespace, ServiceImport, derived Service and
		// EndpointSlices in the consumer, in one command.
		{"import", "mysql", "-n", "provider-ns", "--from", provider.Name, "--context", consumer.Name, "--create-namespace"},
		// Nothing changed since: nothing is written.
		{"import", "mysql", "-n", "provider-ns", "--from", provider.Name, "--context", consumer.Name},
	} {
		if err := run(args...); err != nil {
			return fmt.Errorf("kubectl mcs %s: %w", strings.Join(args, " "), err)
		}
	}

	step("Every export and import of the clusterset")
	if err := run("status", "-A", "--clusters", provider.Name+","+consumer.Name); err != nil {
		return err
	}

	step("Seed step 3: %s's CoreDNS, as the vendor guide leaves its Corefile", consumer.Name)
	if err := createVendorCorefile(ctx, consumer); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"dns", "--context", consumer.Name},
		{"dns", "--patch", "--vendor-form", "--context", consumer.Name},
	} {
		if err := run(args...); err != nil {
			return err
		}
	}
	patched, err := consumer.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return err
	}
	corefile, err := localcluster.LocalizeCorefile(patched.Data["Corefile"])
	if err != nil {
		return err
	}
	dns, err := consumer.StartCoreDNS(ctx, corefile)
	if err != nil {
		return err
	}
	fmt.Printf("(a real CoreDNS now runs that Corefile for %s on %s)\n", consumer.Name, dns.Addr)

	step("Which names reach mysql-0 from %s, checked against that CoreDNS", consumer.Name)
	if err := run("resolve", "mysql-0", "-n", "provider-ns", "--context", consumer.Name, "--clusters", provider.Name+","+consumer.Name, "--dns-server", dns.Addr); err != nil {
		return err
	}
	for _, name := range []string{
		"mysql-0.amcs-mysql.provider-ns.svc.cluster.local",
		"mysql-1.amcs-mysql.provider-ns.svc.cluster.local",
		"mysql-0." + provider.Name + ".mysql.provider-ns.svc.clusterset.local",
		"mysql-1.mysql.provider-ns.svc.clusterset.local",
		"mysql.provider-ns.svc.clusterset.local",
	} {
		if err := dig(ctx, dns, name); err != nil {
			return err
		}
	}
	return nil
}

func createVendorCorefile(ctx context.Context, c *localcluster.Cluster) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": string(fixtures.MustRead(fixtures.SeedCorefile))}}
	_, err := c.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{})
	return err
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// applySeed creates the seed's namespace, Secret, Service and StatefulSet.
func applySeed(ctx context.Context, c *localcluster.Cluster, out io.Writer) error {
	for _, file := range []string{fixtures.SeedNamespace, fixtures.SeedMySQL} {
		fmt.Fprintf(out, "$ kubectl --context %s -n provider-ns create -f test/fixtures/%s\n", c.Name, file)
		lines, err := c.Create(ctx, fixtures.SeedNamespaceName, fixtures.MustRead(file))
		for _, l := range lines {
			fmt.Fprintln(out, l)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// waitForSeedEndpoints waits for the endpointslice controller to publish
// mysql-0 and mysql-1 as ready endpoints, and returns hostname -> address.
func waitForSeedEndpoints(ctx context.Context, c *localcluster.Cluster) (map[string]string, error) {
	addrs := map[string]string{}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.DiscoveryV1().EndpointSlices(fixtures.SeedNamespaceName).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=mysql"})
		if err != nil {
			return false, err
		}
		clear(addrs)
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				if ep.Hostname != nil && ep.Conditions.Ready != nil && *ep.Conditions.Ready && len(ep.Addresses) > 0 {
					addrs[*ep.Hostname] = ep.Addresses[0]
				}
			}
		}
		return len(addrs) == 2, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: mysql-0 and mysql-1 never became ready endpoints: %w", c.Name, err)
	}
	return addrs, nil
}

// dig prints what the CoreDNS answers for name, as a short dig would.
func dig(ctx context.Context, dns *localcluster.CoreDNS, name string) error {
	fmt.Printf("\n$ dig @%s -p %s +short %s\n", hostOf(dns.Addr), portOf(dns.Addr), name)
	var addrs []string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		addrs, lastErr = dns.Resolver().LookupHost(ctx, name+".")
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s did not resolve: %v", name, lastErr)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		fmt.Println(a)
	}
	return nil
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
