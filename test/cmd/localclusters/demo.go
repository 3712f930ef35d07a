package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// Seed step 4 connects through the names; that needs the data plane,
	// which needs root.
	noDataPlane := localcluster.DataPlaneSupported("")
	parts := "etcd, kube-apiserver, kube-controller-manager, pod stand-in, MCS CRDs"
	if noDataPlane == nil {
		parts += "; a node per cluster running kube-proxy, pods answering on their ports"
	}
	step("Starting %d local clusters (%s)", n, parts)
	start := time.Now()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: n, Log: os.Stdout, DataPlane: noDataPlane == nil})
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
	fmt.Printf("# Each `$ kubectl mcs ARGS` below runs %s ARGS: what kubectl runs for `kubectl mcs` once kubectl-mcs is on PATH.\n", plugin)
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
	if err := run("dns", "--context", consumer.Name); err != nil {
		// The check may answer with its exit code too: 1 when CoreDNS does
		// not serve clusterset.local, as here before the patch.
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return err
		}
		fmt.Println("# exit code 1: CoreDNS does not serve clusterset.local yet")
	}
	clusterset := provider.Name + "," + consumer.Name
	// check answers with its exit code: 1 here, since the provider does
	// not import its own export (the demo imports into the consumer only;
	// KEP-1645 imports everywhere, and check says so with the fix).
	check := func() error {
		err := run("check", "-A", "--clusters", clusterset)
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			fmt.Println("# exit code 1: a check failed (see the × lines)")
			return nil
		}
		return err
	}
	step("The clusterset's health before the patch: %s's CoreDNS does not serve clusterset.local", consumer.Name)
	if err := check(); err != nil {
		return err
	}
	if err := run("dns", "--patch", "--vendor-form", "--context", consumer.Name); err != nil {
		return err
	}
	step("The clusterset's health after the patch: %s's CoreDNS check passes", consumer.Name)
	if err := check(); err != nil {
		return err
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
	step("Asking %s's CoreDNS directly", consumer.Name)
	q := newDNSQuerier(os.Stdout, consumer.Name+"'s CoreDNS", dns.Addr)
	m0, m1 := addrs["mysql-0"], addrs["mysql-1"]
	for _, c := range []struct {
		name string
		want []string
	}{
		{"mysql-0.amcs-mysql.provider-ns.svc.cluster.local", []string{m0}},
		{"mysql-1.amcs-mysql.provider-ns.svc.cluster.local", []string{m1}},
		{"mysql-0." + provider.Name + ".mysql.provider-ns.svc.clusterset.local", []string{m0}},
		{"mysql-1.mysql.provider-ns.svc.clusterset.local", []string{m1}},
		{"mysql.provider-ns.svc.clusterset.local", []string{m0, m1}},
	} {
		if err := q.query(ctx, c.name, c.want); err != nil {
			return err
		}
	}

	if noDataPlane != nil {
		step("Seed step 4 (connecting to mysql-0 from %s) skipped: %v", consumer.Name, noDataPlane)
		return nil
	}
	step("Seed step 4: from %s's node, connect to port 3306 by each name (resolved by that CoreDNS); each pod answers with <cluster>/<pod>", consumer.Name)
	return connectByNames(ctx, os.Stdout, consumer, dns, []nameAnswers{
		{"mysql-0.amcs-mysql.provider-ns.svc.cluster.local", []string{provider.Name + "/mysql-0"}},
		{"mysql-0." + provider.Name + ".mysql.provider-ns.svc.clusterset.local", []string{provider.Name + "/mysql-0"}},
		{"mysql-0.mysql.provider-ns.svc.clusterset.local", []string{provider.Name + "/mysql-0"}},
		{"mysql.provider-ns.svc.clusterset.local", []string{provider.Name + "/mysql-0", provider.Name + "/mysql-1"}},
	})
}

// nameAnswers is a name and the pods that must answer through it.
type nameAnswers struct {
	name string
	want []string
}

// connectByNames resolves each name through dns, connects from the
// cluster's node to port 3306 of every address it resolves to (one
// connection each: the service name's two addresses are two connections),
// shows who answered, and fails unless exactly the wanted pods did. Where
// dig, nsenter and bash are installed, each name is one shell line a user
// could type, and it runs: dig asks the CoreDNS, and bash's /dev/tcp
// connects from inside the node's network namespace. Elsewhere this program
// connects itself and prints comments, not `$` lines.
func connectByNames(ctx context.Context, out io.Writer, c *localcluster.Cluster, dns *localcluster.CoreDNS, names []nameAnswers) error {
	shell := haveCommands("dig", "nsenter", "bash")
	if !shell {
		fmt.Fprintln(out, "# dig, nsenter or bash is missing here, so this program connects from the node itself:")
	}
	for _, n := range names {
		// Wait until CoreDNS answers (its informers follow the API).
		addrs, err := lookupWithin(ctx, dns, n.name, 20*time.Second)
		if err != nil {
			return err
		}
		var got []string
		if shell {
			host, port, _ := net.SplitHostPort(dns.Addr)
			line := fmt.Sprintf(`for ip in $(dig +short @%s -p %s %s); do nsenter --net=%s bash -c "cat < /dev/tcp/$ip/3306"; done`, host, port, n.name, c.NodeNetNS())
			fmt.Fprintf(out, "\n$ %s\n", line)
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, "bash", "-c", line)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			out.Write(stdout.Bytes())
			out.Write(stderr.Bytes())
			if runErr != nil {
				return fmt.Errorf("%s: %w", line, runErr)
			}
			got = strings.Fields(stdout.String())
		} else {
			for _, addr := range addrs {
				target := net.JoinHostPort(addr, "3306")
				answer, err := c.Connect(ctx, target)
				if err != nil {
					return fmt.Errorf("%s's node: connecting to %s (%s): %w", c.Name, n.name, target, err)
				}
				fmt.Fprintf(out, "# %s's node: connect %s:3306 (%s) -> answered by %s\n", c.Name, n.name, addr, answer)
				got = append(got, answer)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, n.want) {
			return fmt.Errorf("%s:3306 from %s's node was answered by %v, want %v", n.name, c.Name, got, n.want)
		}
	}
	return nil
}

// lookupWithin resolves name through dns, retrying until it answers or
// timeout passes.
func lookupWithin(ctx context.Context, dns *localcluster.CoreDNS, name string, timeout time.Duration) ([]string, error) {
	var addrs []string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		addrs, lastErr = dns.Resolver().LookupHost(ctx, name+".")
		return lastErr == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s did not resolve through %s: %v", name, dns.Addr, lastErr)
	}
	return addrs, nil
}

// haveCommands tells whether every command is on PATH.
func haveCommands(names ...string) bool {
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			return false
		}
	}
	return true
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
		// Not a `$` line: no kubectl runs, the objects are created from here.
		fmt.Fprintf(out, "# %s: creating test/fixtures/%s in namespace %s (from this program, as `kubectl create -f` would)\n", c.Name, file, fixtures.SeedNamespaceName)
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

// dnsQuerier shows DNS queries in the transcript, and checks their answers.
// A `$ dig` line is printed only when dig really runs: where dig is on PATH
// it runs `dig @HOST -p PORT +short NAME` and prints dig's own output;
// elsewhere this program sends the query itself and prints it as a comment,
// saying once that dig is not installed.
type dnsQuerier struct {
	out    io.Writer
	server string // what is queried, e.g. "cluster2's CoreDNS"
	addr   string // its host:port
	dig    string // dig's path; "" when dig is not on PATH
	// timeout bounds the wait for the expected answer (CoreDNS learns of
	// new objects through its informers, a moment after they are written).
	timeout time.Duration
	noted   bool
}

func newDNSQuerier(out io.Writer, server, addr string) *dnsQuerier {
	dig, _ := exec.LookPath("dig")
	return &dnsQuerier{out: out, server: server, addr: addr, dig: dig, timeout: 20 * time.Second}
}

// query waits until the server answers name with exactly the addresses want,
// then shows the query: dig's run where dig is installed, with its answer
// checked too, else this program's query and its answer.
func (q *dnsQuerier) query(ctx context.Context, name string, want []string) error {
	want = slices.Sorted(slices.Values(want))
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, q.addr)
		},
	}
	var got []string
	deadline := time.Now().Add(q.timeout)
	for {
		// Each query gets its own time, so the last answer is a whole one.
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err := resolver.LookupHost(qctx, name+".")
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		slices.Sort(addrs)
		got = addrs
		if err == nil && slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s at %s: %s did not resolve: %v", q.server, q.addr, name, err)
			}
			return fmt.Errorf("%s at %s: %s resolved to %v, want %v", q.server, q.addr, name, got, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if q.dig == "" {
		if !q.noted {
			fmt.Fprintln(q.out, "# dig is not installed here (Debian and Ubuntu have it in the package dnsutils),")
			fmt.Fprintln(q.out, "# so this program sends each query itself: no dig runs below.")
			q.noted = true
		}
		fmt.Fprintf(q.out, "# DNS query to %s at %s: %s -> %s\n", q.server, q.addr, name, strings.Join(got, ", "))
		return nil
	}
	args := []string{"@" + hostOf(q.addr), "-p", portOf(q.addr), "+short", name}
	fmt.Fprintf(q.out, "\n$ dig %s\n", strings.Join(args, " "))
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, q.dig, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	q.out.Write(stdout.Bytes())
	q.out.Write(stderr.Bytes())
	if runErr != nil {
		return fmt.Errorf("dig %s: %w", strings.Join(args, " "), runErr)
	}
	answers := strings.Fields(stdout.String())
	slices.Sort(answers)
	if !slices.Equal(answers, want) {
		return fmt.Errorf("dig %s answered %v, want %v", strings.Join(args, " "), answers, want)
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
