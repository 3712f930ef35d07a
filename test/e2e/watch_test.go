package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(ctx context.Context, t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, within, true, func(context.Context) (bool, error) {
		ok, state := cond()
		last = state
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last seen: %s)", what, within, last)
	}
}

// TestWatchWholeClusterset runs `kubectl mcs sync --watch` over three
// clusters and changes the world under it: every step is reflected in the
// consumers (and in a real CoreDNS) within a deadline.
func TestWatchWholeClusterset(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	ns := "watch-ns"
	provider := set.Cluster("cluster1")
	for _, c := range set.Clusters {
		if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := provider.Create(ctx, ns, fixtures.MustRead(fixtures.SeedMySQL)); err != nil {
		t.Fatal(err)
	}
	pods := waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0", "mysql-1")

	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan pluginRun, 1)
	go func() {
		done <- kubectlMCSContext(watchCtx, t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3", "--watch", "--stale-ttl", "15s")
	}()
	defer func() {
		stopWatch()
		select {
		case run := <-done:
			if run.code != 0 {
				t.Errorf("the watch exited %d:\n%s", run.code, run.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the watch did not stop within 30s of its cancellation")
		}
	}()

	consumers := []*localcluster.Cluster{set.Cluster("cluster2"), set.Cluster("cluster3")}
	mirrored := func(want map[string]string) func() (bool, string) {
		return func() (bool, string) {
			var states []string
			ok := true
			for _, c := range consumers {
				got := mirroredHostnamesQuiet(ctx, c, ns, "mysql")
				states = append(states, c.Name+":"+mapString(got))
				ok = ok && mapsEqual(got, want)
			}
			return ok, strings.Join(states, " ")
		}
	}

	// Export: imported into cluster2 and cluster3.
	kubectlMCS(t, set.Kubeconfig, "export", "mysql", "-n", ns, "--context", "cluster1").mustSucceed(t)
	eventually(ctx, t, 30*time.Second, "export appears as an import in cluster2 and cluster3", mirrored(pods))
	dns, err := set.Cluster("cluster3").StartCoreDNS(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupEventually(ctx, t, dns, "mysql-0.cluster1.mysql."+ns+".svc.clusterset.local."); !slices.Equal(got, []string{pods["mysql-0"]}) {
		t.Errorf("CoreDNS of cluster3: mysql-0 -> %v, want [%s]", got, pods["mysql-0"])
	}

	// Scale up and down.
	scale(ctx, t, provider, ns, "mysql", 3)
	pods = waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0", "mysql-1", "mysql-2")
	eventually(ctx, t, 30*time.Second, "scale-up reflected", mirrored(pods))
	scale(ctx, t, provider, ns, "mysql", 1)
	pods = waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0")
	eventually(ctx, t, 30*time.Second, "scale-down reflected", mirrored(pods))
	waitNXDOMAIN(ctx, t, dns, "mysql-2.cluster1.mysql."+ns+".svc.clusterset.local.")

	// A mirrored slice deleted by hand is repaired.
	consumer := set.Cluster("cluster2")
	slice := "amcs-mysql.cluster1-ipv4-0"
	if err := consumer.Client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, slice, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 30*time.Second, "a deleted mirrored slice is repaired", func() (bool, string) {
		_, err := consumer.Client.DiscoveryV1().EndpointSlices(ns).Get(ctx, slice, metav1.GetOptions{})
		return err == nil, errString(err)
	})

	// Unexport: the import is removed everywhere.
	kubectlMCS(t, set.Kubeconfig, "unexport", "mysql", "-n", ns, "--context", "cluster1").mustSucceed(t)
	importGone := func() (bool, string) {
		for _, c := range consumers {
			if _, err := getServiceImportErr(ctx, c, ns, "mysql"); !apierrors.IsNotFound(err) {
				return false, c.Name + " still has the ServiceImport"
			}
		}
		return true, ""
	}
	eventually(ctx, t, 30*time.Second, "unexport removes the import everywhere", importGone)

	// cluster1 goes down: its endpoints are kept (stale) until the TTL,
	// then removed.
	kubectlMCS(t, set.Kubeconfig, "export", "mysql", "-n", ns, "--context", "cluster1").mustSucceed(t)
	eventually(ctx, t, 30*time.Second, "re-export imported again", mirrored(pods))
	// It stops answering at SIGTERM; StopAPIServer returns once it exited.
	down := time.Now()
	provider.StopAPIServer()
	time.Sleep(time.Until(down.Add(9 * time.Second))) // past the probe, before the 15s TTL
	if ok, state := mirrored(pods)(); !ok {
		t.Errorf("endpoints of the unreachable cluster1 were not kept within the TTL (%s after it went down): %s", time.Since(down).Round(time.Second), state)
	}
	eventually(ctx, t, 40*time.Second, "the unreachable cluster's endpoints are removed after the TTL", importGone)
	if since := time.Since(down); since < 15*time.Second {
		t.Errorf("endpoints removed %s after cluster1 went down, before the 15s TTL", since.Round(time.Second))
	}
}

// TestWatchLeaderElection: two watch processes against the same consumer
// with leader election; only one writes.
func TestWatchLeaderElection(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "lease-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	exportWeb(ctx, t, set, provider, ns)
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	runs := make(chan pluginRun, 2)
	for _, id := range []string{"replica-a", "replica-b"} {
		go func() {
			runs <- kubectlMCSContext(watchCtx, t, set.Kubeconfig, "import", "web", "-n", ns, "--from", "cluster1", "--context", "cluster2",
				"--watch", "--leader-elect", "--leader-elect-context", "cluster2", "--leader-elect-namespace", ns, "--leader-elect-identity", id)
		}()
	}
	eventually(ctx, t, 60*time.Second, "the leader imports web", func() (bool, string) {
		return len(mirroredHostnamesQuiet(ctx, consumer, ns, "web")) == 1, ""
	})
	if _, err := provider.Client.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 60*time.Second, "the leader follows a change", func() (bool, string) {
		return len(mirroredHostnamesQuiet(ctx, consumer, ns, "web")) == 2, ""
	})
	stopWatch()
	var writers []string
	for range 2 {
		run := <-runs
		if run.totalWrites() > 0 {
			writers = append(writers, strings.Join(run.args[len(run.args)-1:], ""))
		}
	}
	if len(writers) != 1 {
		t.Errorf("replicas that wrote: %v, want exactly one", writers)
	}
}

// mirroredHostnamesQuiet is mirroredHostnames without failing the test on
// a read error (the cluster may be down), keyed by hostname or address.
func mirroredHostnamesQuiet(ctx context.Context, c *localcluster.Cluster, ns, service string) map[string]string {
	list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: "multicluster.kubernetes.io/service-name=" + service + ",endpointslice.kubernetes.io/managed-by=" + reconcile.FieldManager,
	})
	out := map[string]string{}
	if err != nil {
		return out
	}
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				continue
			}
			name := ep.Addresses[0]
			if ep.Hostname != nil {
				name = *ep.Hostname
			}
			out[name] = ep.Addresses[0]
		}
	}
	return out
}

func mapString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestWatchStreamsOutliveRequestTimeout: --request-timeout bounds the
// watch mode's requests, not its watch streams. The API server's own count
// of ended WATCH requests of the MCS API stays put for four timeouts while
// the watch runs (each stream was cut and made again every timeout before),
// and a change after that quiet time still arrives through those streams.
func TestWatchStreamsOutliveRequestTimeout(t *testing.T) {
	needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	ns := "watch-timeout"
	for _, c := range set.Clusters {
		if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
			t.Fatal(err)
		}
	}
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	if _, err := provider.Create(ctx, ns, fixtures.MustRead(fixtures.SeedMySQL)); err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	w := startWatch(ctx, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2", "--watch", "--request-timeout", timeout.String())
	defer func() {
		if code := w.stop(); code != 0 {
			t.Errorf("the watch exited %d:\n%s", code, w.log.String())
		}
	}()
	eventually(ctx, t, 60*time.Second, "the watch's caches synced", func() (bool, string) {
		return strings.Contains(w.log.String(), "caches synced"), w.log.String()
	})

	before := endedMCSWatches(ctx, t, provider)
	time.Sleep(4 * timeout)
	after := endedMCSWatches(ctx, t, provider)
	// kube-controller-manager's garbage collector watches these resources
	// too; its streams last minutes, so at most one of them may end here.
	if after-before > 1 {
		t.Errorf("%d WATCH requests of the MCS API ended in cluster1 within %s (%d before, %d after): the watch's streams are cut at --request-timeout %s",
			after-before, 4*timeout, before, after, timeout)
	}

	// The streams still carry events: an export made now is imported.
	kubectlMCS(t, set.Kubeconfig, "export", "mysql", "-n", ns, "--context", "cluster1").mustSucceed(t)
	eventually(ctx, t, 30*time.Second, "an export after the quiet time is imported in cluster2", func() (bool, string) {
		_, err := getServiceImportErr(ctx, consumer, ns, "mysql")
		return err == nil, errString(err)
	})
}

// endedMCSWatches is the API server's count of WATCH requests of the
// multicluster.x-k8s.io group that have ended (apiserver_request_total
// counts a watch when its stream closes).
func endedMCSWatches(ctx context.Context, t *testing.T, c *localcluster.Cluster) int {
	t.Helper()
	raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("%s: reading /metrics: %v", c.Name, err)
	}
	total := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `verb="WATCH"`) || !strings.Contains(line, `group="multicluster.x-k8s.io"`) {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("%s: /metrics line %q: %v", c.Name, line, err)
		}
		total += int(n)
	}
	return total
}
