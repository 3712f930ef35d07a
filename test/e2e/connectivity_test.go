package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// connectWithin bounds how long a connectivity check waits for kube-proxy
// (its rules follow the API within about a second) and CoreDNS to follow a
// change the watch made.
const connectWithin = 30 * time.Second

// TestConnectivity connects through the names and addresses the MCS objects
// make, over the data plane (a real kube-proxy per cluster, pods answering
// "<cluster>/<pod>" on their ports), while `kubectl mcs sync --watch` runs
// over cluster1..3 in net-ns. Each name is resolved by a real CoreDNS of the
// connecting cluster, as a pod there would resolve it.
func TestConnectivity(t *testing.T) {
	set := needClusters(t)
	pluginrun.NeedDataPlane(t, set)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ns := "net-ns"
	c1, c2, c3 := set.Cluster("cluster1"), set.Cluster("cluster2"), set.Cluster("cluster3")
	createNamespaceEverywhere(ctx, t, set, ns)
	dns := map[string]*localcluster.CoreDNS{}
	for _, c := range []*localcluster.Cluster{c1, c2} {
		d, err := c.StartCoreDNS(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		dns[c.Name] = d
	}
	// web: ClusterSetIP, two pods in cluster1. both: ClusterSetIP, one pod
	// in cluster1 and one in cluster3. hidden: in cluster1, never exported.
	createWorkload(ctx, t, c1, ns, confService("web", false), 2)
	createWorkload(ctx, t, c1, ns, confService("both", false))
	createWorkload(ctx, t, c3, ns, confService("both", false))
	createWorkload(ctx, t, c1, ns, confService("hidden", false))
	// client: a pod in cluster2 to connect from, as an application would.
	createWorkload(ctx, t, c2, ns, confService("client", false))
	kubectlMCS(t, set.Kubeconfig, "export", "web", "both", "-n", ns, "--context", c1.Name).mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "export", "both", "-n", ns, "--context", c3.Name).mustSucceed(t)
	stop := startSyncWatch(ctx, t, set, ns)
	defer stop()
	webPods := podNames(ctx, t, c1, ns, "web")
	client := podNames(ctx, t, c2, ns, "client")[0]

	t.Run("ClusterSetIPThroughKubeProxyInEveryCluster", func(t *testing.T) {
		for _, c := range []*localcluster.Cluster{c2, c1} { // the consumer, then the exporter
			ip := clustersetIP(ctx, t, c, dns[c.Name], ns, "web")
			got := answersFrom(ctx, t, c, net.JoinHostPort(ip, "80"), 20, func(seen map[string]int) bool { return len(seen) == len(webPods) })
			t.Logf("%s: web.%s.svc.clusterset.local -> %s:80 answered by %v", c.Name, ns, ip, got)
			if want := prefixed(c1.Name, webPods); !slices.Equal(keys(got), want) {
				t.Errorf("%s: web.%s.svc.clusterset.local (%s:80) answered by %v, want every pod of web: %v", c.Name, ns, ip, got, want)
			}
		}
		// From a pod, kube-proxy's rules for forwarded traffic apply.
		ip := clustersetIP(ctx, t, c2, dns[c2.Name], ns, "web")
		var answer string
		ok, state := within(ctx, connectWithin, func() (bool, string) {
			var err error
			answer, err = c2.ConnectFromPod(ctx, ns, client, net.JoinHostPort(ip, "80"))
			return err == nil, fmt.Sprint(err)
		})
		t.Logf("%s: pod %s -> web.%s.svc.clusterset.local (%s:80) answered by %s", c2.Name, client, ns, ip, answer)
		if !ok || !slices.Contains(prefixed(c1.Name, webPods), answer) {
			t.Errorf("%s: pod %s -> %s:80: answer %q (%s), want a pod of web", c2.Name, client, ip, answer, state)
		}
	})

	t.Run("ServiceOfTwoExportersAnswersFromBoth", func(t *testing.T) {
		ip := clustersetIP(ctx, t, c2, dns[c2.Name], ns, "both")
		got := answersFrom(ctx, t, c2, net.JoinHostPort(ip, "80"), 60, func(seen map[string]int) bool { return len(seen) == 2 })
		t.Logf("%s: both.%s.svc.clusterset.local -> %s:80 answered by %v", c2.Name, ns, ip, got)
		clusters := map[string]bool{}
		for answer := range got {
			clusters[strings.SplitN(answer, "/", 2)[0]] = true
		}
		if !clusters[c1.Name] || !clusters[c3.Name] || len(clusters) != 2 {
			t.Errorf("both.%s.svc.clusterset.local (%s:80) from %s answered by %v, want pods of %s and %s", ns, ip, c2.Name, got, c1.Name, c3.Name)
		}
	})

	t.Run("UnexportedServiceUnreachable", func(t *testing.T) {
		waitNXDOMAIN(ctx, t, dns[c2.Name], "hidden."+ns+".svc.clusterset.local.")
		waitNXDOMAIN(ctx, t, dns[c1.Name], "hidden."+ns+".svc.clusterset.local.")
		hidden, err := c1.Client.CoreV1().Services(ns).Get(ctx, "hidden", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// cluster1's own ClusterIP means nothing in cluster2.
		if got, err := c2.Connect(ctx, net.JoinHostPort(hidden.Spec.ClusterIP, "80")); err == nil {
			t.Errorf("%s reached %s's unexported hidden (%s:80): %q", c2.Name, c1.Name, hidden.Spec.ClusterIP, got)
		}
		if _, err := c2.Client.CoreV1().Services(ns).Get(ctx, reconcile.DerivedServiceName("hidden"), metav1.GetOptions{}); err == nil {
			t.Errorf("%s has a derived Service for the unexported hidden", c2.Name)
		}
	})

	t.Run("NotReadyEndpointGetsNoNewConnections", func(t *testing.T) {
		ip := clustersetIP(ctx, t, c2, dns[c2.Name], ns, "web")
		sick := webPods[0]
		setNotReady(ctx, t, c1, ns, sick, true)
		defer setNotReady(ctx, t, c1, ns, sick, false)
		// Wait until cluster2's MCS slices say so, then kube-proxy has a
		// second to follow them.
		if ok, state := within(ctx, connectWithin, readyInSlices(ctx, c2, ns, "web", c1.Name, 1)); !ok {
			t.Fatalf("%s's MCS slices of web did not drop %s's readiness within %s: %s", c2.Name, sick, connectWithin, state)
		}
		var got map[string]int
		ok, _ := within(ctx, connectWithin, func() (bool, string) {
			got = answersFrom(ctx, t, c2, net.JoinHostPort(ip, "80"), 20, nil)
			return got[c1.Name+"/"+sick] == 0, fmt.Sprint(got)
		})
		t.Logf("%s: web's clusterset IP %s:80 with %s not ready: answered by %v", c2.Name, ip, sick, got)
		if !ok {
			t.Errorf("%s still answers through web's clusterset IP after turning not-ready: %v", sick, got)
		}
		if got[c1.Name+"/"+webPods[1]] == 0 {
			t.Errorf("the ready pod %s did not answer: %v", webPods[1], got)
		}
	})

	t.Run("UnexportStopsNamesAndConnections", func(t *testing.T) {
		ip1 := clustersetIP(ctx, t, c1, dns[c1.Name], ns, "web")
		ip2 := clustersetIP(ctx, t, c2, dns[c2.Name], ns, "web")
		kubectlMCS(t, set.Kubeconfig, "unexport", "web", "-n", ns, "--context", c1.Name).mustSucceed(t)
		for _, tc := range []struct {
			c  *localcluster.Cluster
			ip string
		}{{c2, ip2}, {c1, ip1}} {
			waitNXDOMAIN(ctx, t, dns[tc.c.Name], "web."+ns+".svc.clusterset.local.")
			var last string
			ok, _ := within(ctx, connectWithin, func() (bool, string) {
				answer, err := tc.c.Connect(ctx, net.JoinHostPort(tc.ip, "80"))
				last = fmt.Sprintf("answer %q, error %v", answer, err)
				return err != nil, last
			})
			if !ok {
				t.Errorf("%s: web's former clusterset IP %s still answers after unexport: %s", tc.c.Name, tc.ip, last)
			} else {
				t.Logf("%s: %s:80 after unexport: %s", tc.c.Name, tc.ip, last)
			}
		}
	})
}

// clustersetIP resolves NAME.NS.svc.clusterset.local through the cluster's
// CoreDNS and checks the answer is the cluster's ServiceImport IP.
func clustersetIP(ctx context.Context, t *testing.T, c *localcluster.Cluster, dns *localcluster.CoreDNS, ns, name string) string {
	t.Helper()
	si := waitServiceImport(ctx, t, c, ns, name, "a clusterset IP", func(si *mcsv1beta1.ServiceImport) bool { return len(si.Spec.IPs) > 0 })
	got := lookupEventually(ctx, t, dns, name+"."+ns+".svc.clusterset.local.")
	if !slices.Equal(got, si.Spec.IPs) {
		t.Fatalf("%s: %s.%s.svc.clusterset.local -> %v, want the ServiceImport's ips %v", c.Name, name, ns, got, si.Spec.IPs)
	}
	return got[0]
}

// connectByName resolves name through the cluster's CoreDNS and connects
// from its node once to each address, and returns the sorted answers.
func connectByName(ctx context.Context, t *testing.T, c *localcluster.Cluster, dns *localcluster.CoreDNS, name, port string) []string {
	t.Helper()
	var answers []string
	for _, addr := range lookupEventually(ctx, t, dns, name) {
		answer, err := c.Connect(ctx, net.JoinHostPort(addr, port))
		if err != nil {
			t.Errorf("%s: %s -> %s: %v", c.Name, name, addr, err)
			continue
		}
		t.Logf("%s: %s -> %s:%s answered by %s", c.Name, name, addr, port, answer)
		answers = append(answers, answer)
	}
	sort.Strings(answers)
	return answers
}

// answersFrom connects from the cluster's node to address up to n times
// (stopping early once enough says so), waiting up to connectWithin for
// the first answer, and counts who answered.
func answersFrom(ctx context.Context, t *testing.T, c *localcluster.Cluster, address string, n int, enough func(map[string]int) bool) map[string]int {
	t.Helper()
	var first string
	ok, state := within(ctx, connectWithin, func() (bool, string) {
		answer, err := c.Connect(ctx, address)
		if err != nil {
			return false, err.Error()
		}
		first = answer
		return true, ""
	})
	if !ok {
		t.Fatalf("%s: nothing answers on %s within %s: %s", c.Name, address, connectWithin, state)
	}
	seen := map[string]int{first: 1}
	for i := 1; i < n && (enough == nil || !enough(seen)); i++ {
		answer, err := c.Connect(ctx, address)
		if err != nil {
			t.Fatalf("%s: connection %d to %s: %v", c.Name, i+1, address, err)
		}
		seen[answer]++
	}
	return seen
}

// podNames returns the sorted names of the pods behind a Service.
func podNames(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, app string) []string {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

// setNotReady sets or clears the stand-in's not-ready annotation on a pod.
func setNotReady(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, pod string, notReady bool) {
	t.Helper()
	value := "null"
	if notReady {
		value = `"true"`
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}}}`, localcluster.NotReadyAnnotation, value)
	if _, err := c.Client.CoreV1().Pods(ns).Patch(ctx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// readyInSlices checks that the MCS slices of svc from source, in c, have
// exactly want ready endpoints.
func readyInSlices(ctx context.Context, c *localcluster.Cluster, ns, svc, source string, want int) func() (bool, string) {
	return func() (bool, string) {
		eps, err := mcsEndpoints(ctx, c, ns, svc, source)
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, ep := range eps {
			if ep.address != "" && ep.ready {
				ready++
			}
		}
		return ready == want, fmt.Sprintf("%d of %d endpoints ready", ready, len(eps))
	}
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + "/" + n
	}
	return out
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
