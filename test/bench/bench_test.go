package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// report collects the section of docs/performance.md, in sections numbered as
// benchmarks (run in another order: fan-out first, on equal clusters).
type report struct {
	head     strings.Builder
	sections map[int]*strings.Builder
	cur      *strings.Builder
}

func (r *report) section(n int) {
	if r.sections == nil {
		r.sections = map[int]*strings.Builder{}
	}
	r.cur = &strings.Builder{}
	r.sections[n] = r.cur
}

func (r *report) p(format string, args ...any) {
	w := r.cur
	if w == nil {
		w = &r.head
	}
	fmt.Fprintf(w, format+"\n", args...)
}

func (r *report) String() string {
	out := r.head.String()
	for n := 1; n <= 7; n++ {
		if s := r.sections[n]; s != nil {
			out += s.String()
		}
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// TestBench runs every benchmark (MCS_BENCH=1, `make bench`),
// prints the table and rewrites the section of docs/performance.md between the markers.
func TestBench(t *testing.T) {
	if !benchMode() {
		t.Skip("set MCS_BENCH=1 (make bench) to run the benchmarks")
	}
	set := needClusters(t)
	r := &report{}
	nproc := runtime.NumCPU()
	if out, err := exec.Command("nproc").Output(); err == nil {
		fmt.Sscan(string(out), &nproc)
	}
	r.p("Measured by `make bench` (`test/bench`) on %s, `nproc` = %d, on local clusters (etcd, kube-apiserver,", time.Now().UTC().Format("2006-01-02"), nproc)
	r.p("kube-controller-manager, CoreDNS on loopback, all sharing the same cores as the plugin).")
	r.p("")
	only := os.Getenv("MCS_BENCH_ONLY") // e.g. "fanout,scale": a partial run, docs/performance.md untouched
	for _, b := range []struct {
		name string
		run  func()
	}{
		{"fanout", func() { benchFanOut(t, set, r) }}, // first: every cluster holds the same small workload
		{"roundtrips", func() { benchRoundTrips(t, set, r) }},
		{"scale", func() { benchScale(t, set, r) }},
		{"writes", func() { benchWrites(t, set, r) }},
		{"startup", func() { benchStartup(t, r) }},
		{"library", func() { benchLibrary(t, r) }},
		{"propagation", func() { benchPropagation(t, set, r) }},
		{"watchscale", func() { benchWatchScale(t, set, r) }},
		{"faraway", func() { benchFarAway(t, set) }}, // its own page: docs/performance-far-away.md
	} {
		if only == "" || strings.Contains(","+only+",", ","+b.name+",") {
			b.run()
		}
	}
	fmt.Println(r.String())
	if only != "" {
		return
	}
	if err := writePerformancePage(r.String()); err != nil {
		t.Fatal(err)
	}
}

func benchRoundTrips(t *testing.T, set *localcluster.Set, r *report) {
	r.section(1)
	const services, endpoints = 20, 10
	m := measureRoundTrips(t, "bench-rt", services, endpoints)
	src, cons := m.importFirst, m.importAgain
	// Floors: per source exports, services, slices; per consumer
	// imports, derived services, mirrored slices; one write per object that
	// changes (consumer: namespace + per service ServiceImport, derived
	// Service, one slice per source; sources: one export status each).
	objects := int64(1 + services*(1+1+2) + 2*services)
	r.p("### 1. Round trips (requests per cluster, counting RoundTripper)")
	r.p("")
	r.p("%d services (every other one headless, the rest ClusterIP) × %d endpoints exported by cluster1 and cluster2, imported into a fresh namespace of cluster3 (`--create-namespace`).", services, endpoints)
	r.p("")
	r.p("| run | reads source (each) | reads consumer | writes | floor reads src / cons | floor writes | target | |")
	r.p("|---|---|---|---|---|---|---|---|")
	r.p("| import, first | %d | %d | %d | 3 / 3 | %d | floor | %s |", src.reads["cluster1"], src.reads["cluster3"], src.totalWrites(), objects, verdict(src.totalWrites() == objects))
	r.p("| import, re-run, no change | %d | %d | %d | 3 / 3 | 0 | 0 writes | %s |", cons.reads["cluster1"], cons.reads["cluster3"], cons.totalWrites(), verdict(cons.totalWrites() == 0))
	r.p("| export --all, first | %d | – | %d | 2 | %d | floor | %s |", m.exportFirst.reads["cluster1"], m.exportFirst.totalWrites(), services, verdict(m.exportFirst.totalWrites() == services))
	r.p("| export --all, re-run | %d | – | %d | 2 | 0 | 0 writes | %s |", m.exportAgain.reads["cluster1"], m.exportAgain.totalWrites(), verdict(m.exportAgain.totalWrites() == 0))
	r.p("| status, 3 clusters | %d, %d | %d | %d | 4 per cluster | 0 | 0 writes | %s |", m.status.reads["cluster1"], m.status.reads["cluster2"], m.status.reads["cluster3"], m.status.totalWrites(), verdict(m.status.totalWrites() == 0))
	r.p("")
	// The measured cause of every request (-v=6 of the binary), on a second
	// namespace: first import, re-run, status, export re-run.
	ns := "bench-rt-log"
	ctx := context.Background()
	for i, name := range []string{"cluster1", "cluster2"} {
		workload(ctx, t, set.Cluster(name), ns, 2, 3, i)
		mcs(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", name)
	}
	first := requestLog(t, set, "import", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster3", "--create-namespace")
	again := requestLog(t, set, "import", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster3")
	status := requestLog(t, set, "status", "-n", ns, "--clusters", "cluster1,cluster2,cluster3")
	r.p("Every request (from `-v=6`, 2 services, discovery cached):")
	r.p("")
	r.p("- import, first, source: %s", summarize(first["cluster1"]))
	r.p("- import, first, consumer: %s", summarize(first["cluster3"]))
	r.p("- import, re-run, source: %s", summarize(again["cluster1"]))
	r.p("- import, re-run, consumer: %s", summarize(again["cluster3"]))
	r.p("- status, per cluster: %s", summarize(status["cluster1"]))
	r.p("")
	r.p("Gap to the floor, by cause: a `ClusterProperty` GET per cluster (cluster id), a namespace GET in the consumer,")
	r.p("one `SelfSubjectRulesReview` per cluster and namespace before writing, and two writes per changed ServiceImport")
	r.p("(spec, then status subresource). A ClusterSetIP import costs nothing more: the derived Service is applied first and")
	r.p("its cluster IP, taken from the apply response, goes into the ServiceImport's one write.")
	r.p("")
}

func benchScale(t *testing.T, set *localcluster.Set, r *report) {
	r.section(2)
	const services, endpoints = 200, 50
	ctx := context.Background()
	ns := "bench-scale"
	start := time.Now()
	for i, name := range []string{"cluster1", "cluster2"} {
		workload(ctx, t, set.Cluster(name), ns, services, endpoints, i)
		mcs(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", name)
	}
	for _, name := range []string{"cluster3", "cluster4"} {
		ensureNamespace(ctx, t, set.Cluster(name), ns)
	}
	t.Logf("scale workload ready in %s", time.Since(start))
	bin := pluginBinary(t)
	args := []string{"import", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster3"}
	srv0 := serverCPU(set)
	first := runProc(t, set.Kubeconfig, nil, bin, args...)
	srv1 := serverCPU(set)
	again := runProc(t, set.Kubeconfig, nil, bin, args...)
	// kubectl: apply the plugin's own objects (--dry-run=client -o yaml) into
	// the same namespace of a fresh consumer, cluster4.
	gen := runProc(t, set.Kubeconfig, nil, bin, "import", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster4", "--dry-run=client", "-o", "yaml")
	srv2 := serverCPU(set)
	kc := runProc(t, set.Kubeconfig, gen.stdout, kubectlBinary(t), "apply", "--server-side", "--context", "cluster4", "-f", "-")
	srv3 := serverCPU(set)
	slices, err := set.Cluster("cluster3").Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelManagedBy + "=kubectl-mcs"})
	if err != nil {
		t.Fatal(err)
	}
	var eps int
	for _, s := range slices.Items {
		eps += len(s.Endpoints)
	}
	if eps != 2*services*endpoints {
		t.Errorf("cluster3 has %d mirrored endpoints, want %d", eps, 2*services*endpoints)
	}
	ratio := float64(first.wall) / float64(kc.wall)
	rerun := float64(again.wall) / float64(first.wall)
	rssMB := float64(first.maxRSS) / 1024
	r.p("### 2. Scale: %d services × 2 sources × %d endpoints (%d endpoints) into a fresh cluster", services, endpoints, eps)
	r.p("")
	r.p("| measure | value | target | |")
	r.p("|---|---|---|---|")
	r.p("| `kubectl-mcs import` (first, child process) | %s (CPU: plugin %s, servers %s) | – | |", ms(first.wall), ms(first.cpu), ms(srv1-srv0))
	r.p("| `kubectl apply --server-side` of the same objects (cluster4) | %s (CPU: kubectl %s, servers %s; + %s to generate them with `--dry-run=client -o yaml`) | – | |", ms(kc.wall), ms(kc.cpu), ms(srv3-srv2), ms(gen.wall))
	r.p("| import / kubectl | %.2fx | ≤ 0.5x | %s |", ratio, verdict(ratio <= 0.5))
	r.p("| peak RSS of the plugin (first import) | %.0f MB (re-run %.0f MB, kubectl %.0f MB) | ≤ 200 MB | %s |", rssMB, float64(again.maxRSS)/1024, float64(kc.maxRSS)/1024, verdict(rssMB <= 200))
	r.p("| re-run, no change | %s = %.2fx the first | ≤ 0.2x | %s |", ms(again.wall), rerun, verdict(rerun <= 0.2))
	r.p("")
	ncpu := float64(runtime.NumCPU())
	cpuFloor := time.Duration(float64(first.cpu+srv1-srv0) / ncpu)
	r.p("%d mirrored EndpointSlices (100 endpoints at most each). The import writes %d objects (consumer: namespace aside, per service the ServiceImport twice, spec then status, the derived Service and one slice per source; sources: one export status per export); kubectl's apply writes %d (no ServiceImport status, no export conditions).", len(slices.Items), 5*services+2*services, 4*services)
	r.p("The local servers run on the same %d cores: (plugin + servers' CPU) / cores = %s is the floor of the import's wall time here, %.2fx kubectl's; kubectl applies one object at a time and uses about one core.", int(ncpu), ms(cpuFloor), float64(cpuFloor)/float64(kc.wall))
	r.p("")
}

// benchWrites counts the write requests of a first import of the scale
// workload (200 services, every other one ClusterIP, × 2 sources × 50
// endpoints) into a fresh namespace, and of a whole-clusterset sync of it,
// against their floors: each object once.
func benchWrites(t *testing.T, set *localcluster.Set, r *report) {
	const services, endpoints = 200, 50
	ctx := context.Background()
	ns := "bench-writes"
	for i, name := range []string{"cluster1", "cluster2"} {
		workload(ctx, t, set.Cluster(name), ns, services, endpoints, i)
		mcs(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", name)
	}
	_, first := mcs(t, set.Kubeconfig, "import", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster3", "--create-namespace")
	// Per service: ServiceImport, its status, derived Service, one slice
	// per source; one status per export; the namespace.
	importFloor := int64(1 + services*(1+1+1+2) + 2*services)
	_, sync := mcs(t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3")
	// The exporters now import too (their exports' statuses are already
	// right): per service and exporter, the import, its status, the derived
	// Service and two slices.
	syncFloor := int64(2 * services * (1 + 1 + 1 + 2))
	_, again := mcs(t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3")
	r.p("### Writes: %d services (every other one ClusterIP) × 2 sources × %d endpoints", services, endpoints)
	r.p("")
	r.p("| run | write requests | floor (each object once) | |")
	r.p("|---|---|---|---|")
	r.p("| `import --from cluster1,cluster2 --context cluster3 --create-namespace`, first | %d | %d | %s |", first.totalWrites(), importFloor, verdict(first.totalWrites() == importFloor))
	r.p("| `sync --clusters cluster1,cluster2,cluster3` after it (the exporters import too) | %d | %d | %s |", sync.totalWrites(), syncFloor, verdict(sync.totalWrites() == syncFloor))
	r.p("| the same sync again | %d | 0 | %s |", again.totalWrites(), verdict(again.totalWrites() == 0))
	r.p("")
}

func benchFanOut(t *testing.T, set *localcluster.Set, r *report) {
	r.section(3)
	ctx := context.Background()
	ns := "bench-fan"
	var names []string
	for i, c := range set.Clusters {
		workload(ctx, t, c, ns, 10, 10, i%4)
		mcs(t, set.Kubeconfig, "export", "--all", "-n", ns, "--context", c.Name)
		names = append(names, c.Name)
	}
	bin := pluginBinary(t)
	timeStatus := func(clusters string) (time.Duration, time.Duration, time.Duration) {
		var ds, cpu []time.Duration
		runProc(t, set.Kubeconfig, nil, bin, "status", "-A", "--clusters", clusters) // warm
		srv0 := serverCPU(set)
		for range 7 {
			p := runProc(t, set.Kubeconfig, nil, bin, "status", "-A", "--clusters", clusters)
			ds, cpu = append(ds, p.wall), append(cpu, p.cpu)
		}
		return median(ds), median(cpu), (serverCPU(set) - srv0) / 7
	}
	one, oneCPU, oneSrv := timeStatus("cluster1")
	all, allCPU, allSrv := timeStatus(strings.Join(names, ","))
	ratio := float64(all) / float64(one)
	r.p("### 3. Fan-out: `status -A`, median of 7 (each cluster: 10 services × 10 endpoints)")
	r.p("")
	r.p("| clusters | wall | plugin CPU (user+sys) | servers' CPU per run (all clusters, idle load included) | ratio | target | |")
	r.p("|---|---|---|---|---|---|---|")
	r.p("| 1 | %s | %s | %s | 1.00x | | |", ms(one), ms(oneCPU), ms(oneSrv))
	r.p("| %d | %s | %s | %s | %.2fx | ≤ 1.5x | %s |", len(names), ms(all), ms(allCPU), ms(allSrv), ratio, verdict(ratio <= 1.5))
	r.p("")
	r.p("All six API servers run on the same %d cores as the plugin, so their CPU adds to the wall time: (plugin + servers) / cores = %s for %d clusters against %s for one. On the plugin's side each extra cluster costs about %s of CPU (TLS handshake, JSON decoding of the MCS lists; connecting six contexts, kubeconfig loading included, takes about 3 ms in all).",
		runtime.NumCPU(), ms((allCPU+allSrv)/time.Duration(runtime.NumCPU())), len(names), ms((oneCPU+oneSrv)/time.Duration(runtime.NumCPU())), ms((allCPU-oneCPU)/time.Duration(len(names)-1)))
	r.p("")
}

func benchStartup(t *testing.T, r *report) {
	r.section(4)
	out, err := exec.Command("bash", filepath.Join(repoRoot(t), "hack", "startup-time.sh"), pluginBinary(t), kubectlBinary(t), "20").CombinedOutput()
	if err != nil {
		t.Fatalf("startup-time.sh: %v\n%s", err, out)
	}
	vals := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []string{"kubectl-mcs version", "kubectl mcs version", "kubectl version --client"} {
			if strings.HasPrefix(line, k) {
				var v float64
				fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, k)), &v)
				vals[k] = v
			}
		}
	}
	r.p("### 4. Start-up, median of 20 (`hack/startup-time.sh`)")
	r.p("")
	r.p("| command | ms | vs kubectl |")
	r.p("|---|---|---|")
	for _, k := range []string{"kubectl-mcs version", "kubectl mcs version", "kubectl version --client"} {
		r.p("| `%s` | %.1f | %.2fx |", k, vals[k], vals[k]/vals["kubectl version --client"])
	}
	r.p("")
}

func benchLibrary(t *testing.T, r *report) {
	r.section(5)
	c := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "./pkg/reconcile")
	c.Dir = repoRoot(t)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -bench: %v\n%s", err, out)
	}
	r.p("### 5. Library: `go test -bench . -benchmem ./pkg/reconcile`")
	r.p("")
	r.p("| benchmark | ns/op | B/op | allocs/op |")
	r.p("|---|---|---|---|")
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && strings.HasPrefix(f[0], "Benchmark") {
			r.p("| %s | %s | %s | %s |", f[0], f[2], f[4], f[6])
		}
	}
	r.p("")
}

func benchPropagation(t *testing.T, set *localcluster.Set, r *report) {
	r.section(6)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := "bench-prop"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster5")
	ensureNamespace(ctx, t, consumer, ns)
	const runs = 10
	workload(ctx, t, provider, ns, runs, 3, 3)
	dns, err := consumer.StartCoreDNS(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Stop()
	resolver := dns.Resolver()
	bin := pluginBinary(t)
	var oneShot []time.Duration
	for i := range runs {
		svc := fmt.Sprintf("db-%d", i)
		name := fmt.Sprintf("%s-0.cluster1.%s.%s.svc.clusterset.local.", svc, svc, ns)
		start := time.Now()
		runProc(t, set.Kubeconfig, nil, bin, "export", svc, "-n", ns, "--context", "cluster1")
		runProc(t, set.Kubeconfig, nil, bin, "import", svc, "-n", ns, "--from", "cluster1", "--context", "cluster5")
		for {
			qctx, qcancel := context.WithTimeout(ctx, time.Second)
			addrs, err := resolver.LookupHost(qctx, name)
			qcancel()
			if err == nil && len(addrs) == 1 && addrs[0] == endpointIP(3, i*3) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never resolved", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		oneShot = append(oneShot, time.Since(start))
	}

	// Watch mode, without then with --metrics-addr: what serving metrics
	// (and timing every propagation) costs.
	plain := watchPropagation(ctx, t, set, bin, 0)
	metered := watchPropagation(ctx, t, set, bin, 1000)
	r.p("### 6. Propagation")
	r.p("")
	r.p("| path | median | max | runs |")
	r.p("|---|---|---|---|")
	r.p("| `export` → `import` → the consumer's CoreDNS answers `<host>.cluster1.<svc>.<ns>.svc.clusterset.local` | %s | %s | %d |", ms(median(oneShot)), ms(maxOf(oneShot)), runs)
	r.p("| `import --watch`: endpoint change in the source → consumer's EndpointSlice updated | %s | %s | %d |", ms(median(plain)), ms(maxOf(plain)), len(plain))
	r.p("| the same with `--metrics-addr` (metrics served and scraped once a second) | %s | %s | %d |", ms(median(metered)), ms(maxOf(metered)), len(metered))
	r.p("")
}

// watchPropagation runs one `import db-0 --watch` in the background and
// times 20 endpoint changes in the source until the consumer's mirrored
// slice has each. With firstIP > 0 the watch also serves /metrics, which
// is scraped every second while the changes run; firstIP keeps the runs'
// endpoint addresses apart.
func watchPropagation(ctx context.Context, t *testing.T, set *localcluster.Set, bin string, firstIP int) []time.Duration {
	ns := "bench-prop"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster5")
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	args := []string{"import", "db-0", "-n", ns, "--from", "cluster1", "--context", "cluster5", "--watch"}
	metricsAddr := ""
	if firstIP > 0 {
		metricsAddr = freeAddr(t)
		args = append(args, "--metrics-addr", metricsAddr)
	}
	w := exec.CommandContext(wctx, bin, args...)
	w.Env = append(os.Environ(), "KUBECONFIG="+set.Kubeconfig)
	w.Cancel = func() error { return w.Process.Signal(os.Interrupt) }
	w.WaitDelay = 5 * time.Second
	var wlog bytes.Buffer
	w.Stdout, w.Stderr = &wlog, &wlog
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { wcancel(); _ = w.Wait() }()
	if metricsAddr != "" {
		go func() {
			for wctx.Err() == nil {
				if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(time.Second)
			}
		}()
	}
	const selector = "multicluster.kubernetes.io/service-name=db-0"
	if _, ok := waitMirrored(ctx, consumer, ns, selector, endpointIP(3, 0), 30*time.Second, 10*time.Millisecond); !ok {
		t.Fatalf("watch never synced db-0:\n%s", wlog.String())
	}
	time.Sleep(time.Second) // informers settled
	const changes = 20
	var delays []time.Duration
	slices := provider.Client.DiscoveryV1().EndpointSlices(ns)
	for i := range changes {
		s, err := slices.Get(ctx, "db-0-hand", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := endpointIP(3, 1000+firstIP+i)
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Hostname: ptr(fmt.Sprintf("db-0-w%d", firstIP+i)), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
		if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, ok := waitMirrored(ctx, consumer, ns, selector, ip, 30*time.Second, 10*time.Millisecond)
		if !ok {
			t.Fatalf("change %d not mirrored within 30s:\n%s", i, wlog.String())
		}
		delays = append(delays, d)
		time.Sleep(200 * time.Millisecond)
	}
	return delays
}

// freeAddr is a loopback address with a port free at the time of asking.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd)) // test/bench -> repo
}

const (
	startMarker = "<!-- bench:start -->"
	endMarker   = "<!-- bench:end -->"
)

// writePerformancePage replaces what lies between the bench markers of
// docs/performance.md (appending them if they are missing).
func writePerformancePage(body string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	path := filepath.Join(filepath.Dir(filepath.Dir(wd)), "docs", "performance.md")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, startMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		s = strings.TrimRight(s, "\n") + "\n\n" + startMarker + "\n" + endMarker + "\n"
		i, j = strings.Index(s, startMarker), strings.Index(s, endMarker)
	}
	s = s[:i+len(startMarker)] + "\n" + body + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// waitMirrored polls consumer every poll until an endpoint with address ip
// is in an EndpointSlice of ns matching selector, and says how long that
// took; false if it is not there within.
func waitMirrored(ctx context.Context, consumer *localcluster.Cluster, ns, selector, ip string, within, poll time.Duration) (time.Duration, bool) {
	mirrored := func() bool {
		list, err := consumer.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false
		}
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				if ep.Addresses[0] == ip {
					return true
				}
			}
		}
		return false
	}
	start := time.Now()
	for time.Since(start) < within {
		if mirrored() {
			return time.Since(start), true
		}
		time.Sleep(poll)
	}
	return 0, false
}
