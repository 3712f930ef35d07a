package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// The "far away" benchmark: the six clusters behind Toxiproxy proxies
// (localcluster StartProxies), at several round trips. Each command is
// timed at each round trip, and (time far - time near) / RTT says how many
// round trips it waits for one after another.

const (
	farServices  = 20
	farEndpoints = 10
	farDoc       = "docs/performance-far-away.md"
	farStart     = "<!-- far-away:start -->"
	farEnd       = "<!-- far-away:end -->"
	// farRepeats: the repeatable commands are timed this many times (after
	// one warm-up run) and the median kept.
	farRepeats = 3
	// farChanges is how many endpoint changes the watch propagation times.
	farChanges = 30
	// farFirstSyncs: the first sync is timed on this many fresh
	// namespaces, and the median kept (one run is too noisy on a shared
	// machine).
	farFirstSyncs = 3
)

// farRTTs are the round trips measured: MCS_BENCH_RTTS (e.g. "0,50ms"),
// else 0, 25, 50 and 100 ms. The first must be 0, the baseline.
func farRTTs(t *testing.T) []time.Duration {
	spec := os.Getenv("MCS_BENCH_RTTS")
	if spec == "" {
		spec = "0,25ms,50ms,100ms"
	}
	var out []time.Duration
	for _, f := range strings.Split(spec, ",") {
		if f == "0" {
			out = append(out, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			t.Fatalf("MCS_BENCH_RTTS: %v", err)
		}
		out = append(out, d)
	}
	if len(out) == 0 || out[0] != 0 {
		t.Fatalf("MCS_BENCH_RTTS %q must start with 0 (the baseline)", spec)
	}
	return out
}

// farTimes is what one round trip measured.
type farTimes struct {
	firstSync, rerun, status1, status6, resolve, kubectlGet time.Duration
	watchP50, watchP99                                      time.Duration
}

func benchFarAway(t *testing.T, set *localcluster.Set) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	kubeconfig, err := set.StartProxies(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	rtts := farRTTs(t)
	results := make([]farTimes, len(rtts))
	for i, rtt := range rtts {
		for _, c := range set.Clusters {
			if err := c.Proxy.SetRTT(rtt, 0); err != nil {
				t.Fatal(err)
			}
		}
		results[i] = measureFar(ctx, t, set, kubeconfig, fmt.Sprintf("bench-far-%d", rtt.Milliseconds()))
		t.Logf("RTT %s: %+v", rtt, results[i])
	}
	for _, c := range set.Clusters {
		_ = c.Proxy.SetRTT(0, 0)
	}
	table := farTable(set, kubectlBinary(t), rtts, results)
	fmt.Println(table)
	if err := writeBetweenMarkers(filepath.Join(repoRoot(t), farDoc), farStart, farEnd, table); err != nil {
		t.Fatal(err)
	}
}

// measureFar times every command of the table once the proxies are set,
// on a fresh namespace where each cluster holds farServices services.
func measureFar(ctx context.Context, t *testing.T, set *localcluster.Set, kubeconfig, prefix string) farTimes {
	var names []string
	for _, c := range set.Clusters {
		names = append(names, c.Name)
	}
	all := strings.Join(names, ",")
	bin := pluginBinary(t)
	var m farTimes
	var firsts []time.Duration
	var ns string
	for n := range farFirstSyncs {
		ns = fmt.Sprintf("%s-%d", prefix, n)
		var wg sync.WaitGroup
		for i, c := range set.Clusters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				farWorkload(ctx, t, c, ns, i)
			}()
		}
		wg.Wait()
		for _, name := range names {
			mcs(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", name) // direct: not timed
		}
		firsts = append(firsts, runProc(t, kubeconfig, nil, bin, "sync", "-n", ns, "--clusters", all).wall)
	}
	m.firstSync = median(firsts)
	// The rest on the last namespace.
	m.rerun = medianRun(t, kubeconfig, bin, "sync", "-n", ns, "--clusters", all)
	m.status1 = medianRun(t, kubeconfig, bin, "status", "-n", ns, "--clusters", names[0])
	m.status6 = medianRun(t, kubeconfig, bin, "status", "-n", ns, "--clusters", all)
	m.resolve = medianRun(t, kubeconfig, bin, "resolve", "db-0", "-n", ns, "--clusters", all, "--context", names[1])
	m.kubectlGet = medianRun(t, kubeconfig, kubectlBinary(t), "get", "serviceexports", "-n", ns, "--context", names[0])
	delays := farPropagation(ctx, t, set, kubeconfig, bin, ns)
	m.watchP50, m.watchP99 = percentile(delays, 50), percentile(delays, 99)
	return m
}

// medianRun runs a command once to warm caches (discovery), then
// farRepeats times, and returns the median wall time.
func medianRun(t *testing.T, kubeconfig, bin string, args ...string) time.Duration {
	runProc(t, kubeconfig, nil, bin, args...)
	var walls []time.Duration
	for range farRepeats {
		walls = append(walls, runProc(t, kubeconfig, nil, bin, args...).wall)
	}
	return median(walls)
}

// farWorkload creates farServices services of farEndpoints endpoints in
// cluster number i, each cluster's addresses apart from the others'.
func farWorkload(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string, i int) {
	ensureNamespace(ctx, t, c, ns)
	for s := range farServices {
		name := fmt.Sprintf("db-%d", s)
		if _, err := c.Client.CoreV1().Services(ns).Create(ctx, benchService(s), metav1.CreateOptions{}); err != nil {
			t.Errorf("%s: %v", c.Name, err)
			return
		}
		// endpointIP has 4 ranges of at least 4,000 addresses: clusters 5
		// and 6 use the second half of the first two.
		first := (i/4)*2000 + s*farEndpoints
		if _, err := c.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, handSlice(name, name+"-hand", i%4, first, farEndpoints), metav1.CreateOptions{}); err != nil {
			t.Errorf("%s: %v", c.Name, err)
			return
		}
	}
}

// farPropagation runs `import db-0 --watch` into the second cluster from
// the first, through the proxies, and times farChanges endpoint changes
// made in the source (directly) until the consumer (read directly) has
// each.
func farPropagation(ctx context.Context, t *testing.T, set *localcluster.Set, kubeconfig, bin, ns string) []time.Duration {
	provider, consumer := set.Clusters[0], set.Clusters[1]
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	w := exec.CommandContext(wctx, bin, "import", "db-0", "-n", ns, "--from", provider.Name, "--context", consumer.Name, "--watch")
	w.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	w.Cancel = func() error { return w.Process.Signal(os.Interrupt) }
	w.WaitDelay = 5 * time.Second
	var wlog strings.Builder
	var logMu sync.Mutex
	w.Stdout = lockedWriter{&logMu, &wlog}
	w.Stderr = w.Stdout
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { wcancel(); _ = w.Wait() }()
	selector := "multicluster.kubernetes.io/service-name=db-0,multicluster.kubernetes.io/source-cluster=" + provider.Name
	// The watch is up once its log says its caches synced.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		logMu.Lock()
		up := strings.Contains(wlog.String(), "caches synced")
		logMu.Unlock()
		if up {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the watch did not sync within a minute:\n%s", wlog.String())
		}
	}
	time.Sleep(time.Second)
	api := provider.Client.DiscoveryV1().EndpointSlices(ns)
	var delays []time.Duration
	for i := range farChanges {
		s, err := api.Get(ctx, "db-0-hand", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := endpointIP(3, 3000+i)
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
		if _, err := api.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, ok := waitMirrored(ctx, consumer, ns, selector, ip, 30*time.Second, 5*time.Millisecond)
		if !ok {
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("change %d not mirrored within 30s:\n%s", i, wlog.String())
		}
		delays = append(delays, d)
		time.Sleep(100 * time.Millisecond)
	}
	return delays
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// percentile is the nearest-rank percentile p of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

// farTable is the docs section: times per round trip, and round trips in
// sequence, (far - near) / RTT.
func farTable(set *localcluster.Set, kubectl string, rtts []time.Duration, res []farTimes) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	nproc := 0
	if out, err := exec.Command("nproc").Output(); err == nil {
		fmt.Sscan(string(out), &nproc)
	}
	p("Measured by `make bench` (`test/bench`, `MCS_BENCH_ONLY=faraway` runs only this part) on %s, `nproc` = %d:", time.Now().UTC().Format("2006-01-02"), nproc)
	p("%d local clusters, each exporting %d services of %d endpoints, reached through one Toxiproxy per test bed", len(set.Clusters), farServices, farEndpoints)
	p("that adds the round trip (half each way). Wall times of the binary; the repeatable rows are the median of %d runs after a warm-up,", farRepeats)
	p("the first sync the median of %d, each on a fresh namespace; watch propagation is over %d endpoint changes (p99 of %d is their maximum).", farFirstSyncs, farChanges, farChanges)
	if out, err := exec.Command(kubectl, "version", "--client").Output(); err == nil {
		p("kubectl: %s.", strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
	}
	p("")
	head := "| measure |"
	sep := "|---|"
	for _, rtt := range rtts {
		head += fmt.Sprintf(" RTT %s |", ms(rtt))
		sep += "---|"
	}
	for _, rtt := range rtts[1:] {
		head += fmt.Sprintf(" round trips at %s |", ms(rtt))
		sep += "---|"
	}
	p("%s", head)
	p("%s", sep)
	row := func(name string, get func(farTimes) time.Duration, trips bool) {
		line := "| " + name + " |"
		for _, r := range res {
			line += " " + ms(get(r)) + " |"
		}
		for i, rtt := range rtts[1:] {
			if trips {
				line += fmt.Sprintf(" %.1f |", float64(get(res[i+1])-get(res[0]))/float64(rtt))
			} else {
				line += " – |"
			}
		}
		p("%s", line)
	}
	row(fmt.Sprintf("first `sync` over %d clusters × %d services", len(set.Clusters), farServices), func(f farTimes) time.Duration { return f.firstSync }, true)
	row("the same `sync` again (writes nothing)", func(f farTimes) time.Duration { return f.rerun }, true)
	row("`status`, 1 cluster", func(f farTimes) time.Duration { return f.status1 }, true)
	row(fmt.Sprintf("`status`, %d clusters", len(set.Clusters)), func(f farTimes) time.Duration { return f.status6 }, true)
	row(fmt.Sprintf("`resolve db-0`, %d clusters", len(set.Clusters)), func(f farTimes) time.Duration { return f.resolve }, true)
	row("`kubectl get serviceexports`, 1 cluster (baseline for status)", func(f farTimes) time.Duration { return f.kubectlGet }, true)
	row("`import --watch` propagation p50 (source change → consumer's slice)", func(f farTimes) time.Duration { return f.watchP50 }, true)
	row("`import --watch` propagation p99", func(f farTimes) time.Duration { return f.watchP99 }, true)
	p("")
	var ratios []string
	for i, rtt := range rtts {
		if res[i].status1 > 0 {
			ratios = append(ratios, fmt.Sprintf("%.2fx at %s", float64(res[i].status6)/float64(res[i].status1), ms(rtt)))
		}
	}
	p("`status` over %d clusters takes %s the time of one.", len(set.Clusters), strings.Join(ratios, ", "))
	return b.String()
}

// writeBetweenMarkers replaces what lies between start and end in path.
func writeBetweenMarkers(path, start, end, body string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the markers %s and %s", path, start, end)
	}
	s = s[:i+len(start)] + "\n" + body + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
