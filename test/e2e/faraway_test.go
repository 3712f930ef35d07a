package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// The far-away tests run the plugin through a Toxiproxy proxy in front of
// each API server (localcluster Options.FarAway): latency, and the faults
// a WAN brings (a reset in the middle of a watch, a stall longer than
// --request-timeout, an API server crash, latency spikes). The test reads
// the clusters directly, past the proxies.

// farSources export farServices services of farEndpoints endpoints each.
var farSources = []string{"cluster1", "cluster3"}

const (
	farNamespace = "far-ns"
	farServices  = 3
	farEndpoints = 4
)

func TestFarAway(t *testing.T) {
	needClusters(t)
	if err := localcluster.CheckFarAwayTools(localcluster.ToolsDir()); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 3, FarAway: true})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	ns := farNamespace
	createNamespaceEverywhere(ctx, t, set, ns)
	for i, name := range farSources {
		if _, err := set.Cluster(name).Create(ctx, ns, []byte(manyServices(farServices, farEndpoints, i))); err != nil {
			t.Fatal(err)
		}
		kubectlMCS(t, set.DirectKubeconfig, "export", "--all", "-n", ns, "--context", name).mustSucceed(t)
	}
	binary := pluginrun.Binary(t)

	t.Run("ImportThroughLatency", func(t *testing.T) { farImportThroughLatency(ctx, t, set, ns) })
	t.Run("StallPastRequestTimeout", func(t *testing.T) { farStall(ctx, t, set, binary, ns) })
	t.Run("WatchThroughFaults", func(t *testing.T) { farWatch(ctx, t, set, binary, ns) })
}

// farImportThroughLatency: an import through 50 ms of round trip prints
// what the same import prints on loopback, and converges the same.
func farImportThroughLatency(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	consumer := set.Cluster("cluster2")
	args := []string{"import", "-n", ns, "--from", strings.Join(farSources, ","), "--context", "cluster2"}
	// The first import ever also writes the exports' conditions; the two
	// compared below find them written.
	kubectlMCS(t, set.DirectKubeconfig, args...).mustSucceed(t)
	clearManaged(ctx, t, consumer, ns)
	near := kubectlMCS(t, set.DirectKubeconfig, args...).mustSucceed(t)
	nearState := consumerState(ctx, t, consumer, ns)
	clearManaged(ctx, t, consumer, ns)
	setRTT(t, set, 50*time.Millisecond, 0)
	defer setRTT(t, set, 0, 0)
	far := kubectlMCS(t, set.Kubeconfig, args...).mustSucceed(t)
	if far.stdout != near.stdout {
		t.Errorf("import through 50ms prints\n%s\nand on loopback\n%s", far.stdout, near.stdout)
	}
	if got := consumerState(ctx, t, consumer, ns); !reflect.DeepEqual(got, nearState) {
		t.Errorf("import through 50ms left %d objects, differing from the %d on loopback", len(got), len(nearState))
	}
	if again := kubectlMCS(t, set.Kubeconfig, args...).mustSucceed(t); again.totalWrites() != 0 {
		t.Errorf("a re-run through 50ms wrote %d times, want 0", again.totalWrites())
	}
}

// farStall: with cluster3 stalled (the proxy passes nothing either way),
// each one-shot verb returns within about --request-timeout, fails, and
// names cluster3; once the stall is gone, a re-run converges.
func farStall(ctx context.Context, t *testing.T, set *localcluster.Set, binary, ns string) {
	const timeout = 3 * time.Second
	stalled := set.Cluster("cluster3")
	clusters := "cluster1,cluster2,cluster3"
	verbs := [][]string{
		{"import", "-n", ns, "--from", strings.Join(farSources, ","), "--context", "cluster2"},
		{"sync", "-n", ns, "--clusters", clusters},
		{"status", "-n", ns, "--clusters", clusters},
	}
	if err := stalled.Proxy.Stall(); err != nil {
		t.Fatal(err)
	}
	unstalled := false
	defer func() {
		if !unstalled {
			_ = stalled.Proxy.Unstall()
		}
	}()
	for _, args := range verbs {
		args = append(args, "--request-timeout", timeout.String())
		run, elapsed := runBinary(ctx, t, binary, set.Kubeconfig, 3*timeout, args...)
		t.Logf("%s with cluster3 stalled: exit %d after %s:\n%s", args[0], run.code, elapsed.Round(10*time.Millisecond), run.stderr)
		if run.code == 0 {
			t.Errorf("kubectl mcs %s with cluster3 stalled: exit 0, want a failure\n%s%s", strings.Join(args, " "), run.stdout, run.stderr)
		}
		if !strings.Contains(run.stderr, "cluster3") {
			t.Errorf("kubectl mcs %s with cluster3 stalled: the error does not name cluster3:\n%s", strings.Join(args, " "), run.stderr)
		}
	}
	if err := stalled.Proxy.Unstall(); err != nil {
		t.Fatal(err)
	}
	unstalled = true
	for _, args := range verbs {
		args = append(args, "--request-timeout", timeout.String())
		run, _ := runBinary(ctx, t, binary, set.Kubeconfig, 3*timeout, args...)
		if run.code != 0 {
			t.Errorf("kubectl mcs %s after the stall: exit %d\n%s%s", strings.Join(args, " "), run.code, run.stdout, run.stderr)
		}
	}
	assertMirrorsSources(ctx, t, set, ns, "after the stall")
}

// farWatch runs `kubectl mcs sync --watch` (the binary) over the three
// clusters and puts it through a reset in the middle of its watches, an
// API server crash and restart, and latency spikes. After each, every
// endpoint of the sources is in every consumer, no object was written
// more than once, and the fault was logged once, naming the cluster.
func farWatch(ctx context.Context, t *testing.T, set *localcluster.Set, binary, ns string) {
	clearManagedEverywhere(ctx, t, set, ns)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var stderr pluginrun.LockedBuffer
	cmd := exec.CommandContext(watchCtx, binary, "--kubeconfig", set.Kubeconfig, "sync", "-n", ns,
		"--clusters", "cluster1,cluster2,cluster3", "--watch", "--stale-ttl", "2m", "--request-timeout", "5s")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopWatch()
		err := cmd.Wait()
		t.Logf("the watch's log:\n%s", headTail(stderr.String(), 40))
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the watch exited with %v", err)
		}
	}()
	eventually(ctx, t, 60*time.Second, "the watch imports every export everywhere", mirrorsSources(ctx, set, ns))

	// A reset in the middle of the watch: cluster3's proxy resets every
	// connection on the next data the API server sends, and the change
	// below is that data; reconnections are reset too for a second.
	proxy3 := set.Cluster("cluster3").Proxy
	accepted, err := proxy3.Accepted()
	if err != nil {
		t.Fatal(err)
	}
	fault(ctx, t, set, ns, &stderr, "reset", "", "cluster3", func() {
		if err := proxy3.ResetPeer(); err != nil {
			t.Fatal(err)
		}
		addEndpoint(ctx, t, set.Cluster("cluster3"), ns, 1, "198.18.250.1")
		time.Sleep(time.Second)
		if err := proxy3.StopResetting(); err != nil {
			t.Fatal(err)
		}
	})
	// The reset happened: the watch connected to cluster3 again.
	if after, err := proxy3.Accepted(); err != nil || after <= accepted {
		t.Errorf("connections to cluster3's proxy: %d before the reset, %d after (%v): the watch never reconnected", accepted, after, err)
	}

	// A crash: cluster1's API server is killed and started again on the
	// same etcd; a change made after the restart must arrive too.
	fault(ctx, t, set, ns, &stderr, "crash", "cluster1", "", func() {
		c := set.Cluster("cluster1")
		c.KillAPIServer()
		time.Sleep(4 * time.Second) // past two probes: the watch sees it down
		if err := c.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		addEndpoint(ctx, t, c, ns, 2, "198.18.250.2")
	})

	// Latency spikes: 300 ms ± 200 ms to every cluster while sources change.
	fault(ctx, t, set, ns, &stderr, "latency", "", "", func() {
		setRTT(t, set, 300*time.Millisecond, 200*time.Millisecond)
		addEndpoint(ctx, t, set.Cluster("cluster1"), ns, 0, "198.18.250.3")
		addEndpoint(ctx, t, set.Cluster("cluster3"), ns, 0, "198.18.250.4")
		time.Sleep(3 * time.Second)
		setRTT(t, set, 0, 0)
	})
}

// fault runs inject against the running watch and checks what follows:
// the watch converges, no object was written more than once while it did,
// and the log says the cluster (when named) became unreachable and
// reachable again exactly once each; for a fault that must not make a
// cluster unreachable (cluster == ""), it says neither. A ServiceImport
// may change once more per such line: its status says, then stops saying,
// that the unreachable cluster's endpoints are kept. Likewise the log
// says exactly once each that the watches of watchCluster (when named)
// lost their connection and resumed, and for no cluster otherwise: an
// outage the probe reports is not said again by the watches.
func fault(ctx context.Context, t *testing.T, set *localcluster.Set, ns string, log *pluginrun.LockedBuffer, name, cluster, watchCluster string, inject func()) {
	t.Helper()
	logBefore := len(log.String())
	writes := recordWrites(ctx, t, set, ns)
	inject()
	eventually(ctx, t, 60*time.Second, "the watch converges after the "+name, mirrorsSources(ctx, set, ns))
	// Settle: a second write of an object would come within a sync or two.
	time.Sleep(3 * time.Second)
	counts := writes.stop()
	logged := log.String()[logBefore:]
	statusWrites := 0
	if cluster != "" {
		statusWrites = 2
	}
	for obj, n := range counts {
		allowed := 1
		if strings.Contains(obj, " serviceimports/") {
			allowed += statusWrites
		}
		if n > allowed {
			t.Errorf("%s: %s written %d times, want at most %d", name, obj, n, allowed)
		}
	}
	t.Logf("%s: the watch logged:\n%s", name, logged)
	for what, cluster := range map[string]string{"unreachable": cluster, "reachable again": cluster,
		"watch connection lost": watchCluster, "watches resumed": watchCluster} {
		var lines []string
		for _, l := range strings.Split(logged, "\n") {
			if strings.Contains(l, ": "+what) {
				lines = append(lines, l)
			}
		}
		switch {
		case cluster == "" && len(lines) > 0:
			t.Errorf("%s: logged %q, want no cluster reported %s", name, lines, what)
		case cluster != "" && (len(lines) != 1 || !strings.Contains(lines[0], cluster+": ")):
			t.Errorf("%s: %d lines say %q: %q, want one naming %s", name, len(lines), what, lines, cluster)
		}
	}
}

// sourceEndpoints is every endpoint the sources export, as
// "service/source/address".
func sourceEndpoints(ctx context.Context, set *localcluster.Set, ns string) ([]string, error) {
	var out []string
	for _, name := range farSources {
		list, err := set.Cluster(name).Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelManagedBy + "=e2e-test"})
		if err != nil {
			return nil, err
		}
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				out = append(out, s.Labels[discoveryv1.LabelServiceName]+"/"+name+"/"+ep.Addresses[0])
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// mirrorsSources holds when every cluster has exactly the sources'
// endpoints, ready, in its derived slices.
func mirrorsSources(ctx context.Context, set *localcluster.Set, ns string) func() (bool, string) {
	return func() (bool, string) {
		want, err := sourceEndpoints(ctx, set, ns)
		if err != nil {
			return false, err.Error()
		}
		var states []string
		ok := true
		for _, c := range set.Clusters {
			var got []string
			for i := range farServices {
				svc := fmt.Sprintf("db-%d", i)
				eps, err := mcsEndpoints(ctx, c, ns, svc, "")
				if err != nil {
					return false, c.Name + ": " + err.Error()
				}
				for _, ep := range eps {
					if ep.address != "" && ep.ready {
						got = append(got, svc+"/"+ep.source+"/"+ep.address)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				ok = false
				states = append(states, fmt.Sprintf("%s: %d of %d endpoints, missing %v", c.Name, len(got), len(want), missing(want, got)))
			}
		}
		return ok, strings.Join(states, "; ")
	}
}

func assertMirrorsSources(ctx context.Context, t *testing.T, set *localcluster.Set, ns, when string) {
	t.Helper()
	if ok, state := mirrorsSources(ctx, set, ns)(); !ok {
		t.Errorf("%s: the consumers differ from the sources: %s", when, state)
	}
}

func missing(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	return out
}

// addEndpoint adds one ready endpoint to service db-I's hand-made slice
// in c (directly, not through the proxy).
func addEndpoint(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string, service int, address string) {
	t.Helper()
	api := c.Client.DiscoveryV1().EndpointSlices(ns)
	s, err := api.Get(ctx, fmt.Sprintf("db-%d-hand", service), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := true
	s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{address}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	if _, err := api.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setRTT(t *testing.T, set *localcluster.Set, rtt, jitter time.Duration) {
	t.Helper()
	for _, c := range set.Clusters {
		if err := c.Proxy.SetRTT(rtt, jitter); err != nil {
			t.Fatal(err)
		}
	}
}

func clearManagedEverywhere(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) {
	t.Helper()
	for _, c := range set.Clusters {
		clearManaged(ctx, t, c, ns)
	}
}

// runBinary runs the plugin binary, killed after limit (a hang guard, far
// above what the run should take), and says how long it ran.
func runBinary(ctx context.Context, t *testing.T, binary, kubeconfig string, limit time.Duration, args ...string) (pluginRun, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, binary, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Errorf("kubectl mcs %s did not return within %s (killed)", strings.Join(args, " "), limit)
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return pluginRun{args: args, stdout: stdout.String(), stderr: stderr.String(), code: code}, elapsed
}

// writeRecorder counts, per object kubectl mcs manages in a namespace of
// every cluster, the writes the API servers report (watch events, read
// directly): a write that changes nothing makes no event, so this counts
// the writes that changed something.
type writeRecorder struct {
	mu     sync.Mutex
	counts map[string]int
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func recordWrites(ctx context.Context, t *testing.T, set *localcluster.Set, ns string) *writeRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	r := &writeRecorder{counts: map[string]int{}, cancel: cancel}
	for _, c := range set.Clusters {
		for _, gvr := range managedKinds {
			selector := reconcile.ManagedByLabel + "=" + reconcile.FieldManager
			if gvr.Resource == "endpointslices" {
				selector = discoveryv1.LabelManagedBy + "=" + reconcile.FieldManager
			}
			res := c.Dynamic().Resource(gvr).Namespace(ns)
			list, err := res.List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				t.Fatal(err)
			}
			rv := list.GetResourceVersion()
			r.done.Add(1)
			go func() {
				defer r.done.Done()
				// The watch is resumed from the last version seen when it
				// breaks (an API server restarting on the same etcd).
				for ctx.Err() == nil {
					w, err := res.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: rv, AllowWatchBookmarks: true})
					if err != nil {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					for ev := range w.ResultChan() {
						obj, ok := ev.Object.(interface {
							GetName() string
							GetResourceVersion() string
						})
						if !ok {
							continue
						}
						rv = obj.GetResourceVersion()
						if ev.Type == watch.Bookmark {
							continue
						}
						r.mu.Lock()
						r.counts[c.Name+" "+gvr.Resource+"/"+obj.GetName()]++
						r.mu.Unlock()
					}
					w.Stop()
				}
			}()
		}
	}
	return r
}

// stop ends the recording and returns the writes per object.
func (r *writeRecorder) stop() map[string]int {
	r.cancel()
	r.done.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}
