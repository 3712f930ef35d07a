package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// counts are the requests of one run, per kubeconfig context.
type counts struct {
	reads, writes map[string]int64
}

func (c counts) totalWrites() int64 { return pluginrun.Result{Writes: c.writes}.TotalWrites() }

// mcs runs `kubectl mcs ARGS` in-process through the real command tree and
// counts its requests per cluster; a failure ends the test.
func mcs(t testing.TB, kubeconfig string, args ...string) (string, counts) {
	t.Helper()
	r := pluginrun.Run(context.Background(), kubeconfig, args...)
	if r.Code != 0 {
		t.Fatalf("kubectl mcs %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	// Each object at most once per sync.
	for ctx, rep := range r.RepeatedWrites {
		t.Errorf("kubectl mcs %s: wrote objects of %s more than once: %v", strings.Join(args, " "), ctx, rep)
	}
	return r.Stdout, counts{reads: r.Reads, writes: r.Writes}
}

// procRun is one run of a binary as a child process.
type procRun struct {
	wall   time.Duration
	maxRSS int64         // KiB, from the child's rusage
	cpu    time.Duration // user + system time of the child
	stdout []byte
}

// runProc runs a binary with the kubeconfig in its environment and returns
// its wall time and peak RSS (getrusage of the child).
func runProc(t testing.TB, kubeconfig string, stdin []byte, bin string, args ...string) procRun {
	t.Helper()
	c := exec.Command(bin, args...)
	c.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	err := c.Run()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, errOut.String())
	}
	var rss int64
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return procRun{wall: wall, maxRSS: rss, cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime(), stdout: out.Bytes()}
}

// pluginBinary is bin/kubectl-mcs ($MCS_PLUGIN_BINARY, set by the Makefile),
// else built into a temporary folder.
func pluginBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MCS_PLUGIN_BINARY"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "kubectl-mcs")
	if b, err := exec.Command("go", "build", "-o", out, "github.com/kubectl-mcs/kubectl-mcs/cmd/kubectl-mcs").CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-mcs: %v\n%s", err, b)
	}
	return out
}

func kubectlBinary(t testing.TB) string {
	return filepath.Join(localcluster.NeedTools(t, "kubectl"), "kubectl")
}

// endpointIP is endpoint n (0-based) of source cluster index `cluster`
// (0..3), inside 198.18.128.0/17 (clear of the pod stand-in's ranges),
// never .0 or .255: 12,000 addresses for clusters 0 and 1, 4,000 for 2 and 3.
func endpointIP(cluster, n int) string {
	base := [...]int{128, 176, 224, 240}[cluster]
	return fmt.Sprintf("198.18.%d.%d", base+n/250, n%250+1)
}

// workload creates, in namespace ns of c, n selector-less Services
// db-0..db-(n-1) (every other one headless, the rest ClusterIP), each with
// one hand-made EndpointSlice of `endpoints`
// ready endpoints with hostnames (as faults_test.go's manyServices, with
// typed clients in parallel so 10,000 endpoints take seconds).
// benchService is the selector-less Service db-<i> of the workloads: every
// other one headless, the rest ClusterIP (their imports carry the derived
// Service's cluster IP, which must not cost a second write).
func benchService(i int) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("db-%d", i)},
		Spec:       corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP}}},
	}
	if i%2 == 1 {
		svc.Spec.ClusterIP = ""
	}
	return svc
}

func workload(ctx context.Context, t testing.TB, c *localcluster.Cluster, ns string, n, endpoints, cluster int) {
	t.Helper()
	ensureNamespace(ctx, t, c, ns)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("db-%d", i)
			if _, err := c.Client.CoreV1().Services(ns).Create(ctx, benchService(i), metav1.CreateOptions{}); err != nil {
				errs <- err
				return
			}
			if _, err := c.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, handSlice(name, name+"-hand", cluster, i*endpoints, endpoints), metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s: %v", c.Name, err)
	}
}

func handSlice(service, name string, cluster, first, endpoints int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("sql"), Port: ptr(int32(5432)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for j := range endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{endpointIP(cluster, first+j)},
			Hostname:   ptr(fmt.Sprintf("%s-%d", service, j)),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
		})
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func ensureNamespace(ctx context.Context, t testing.TB, c *localcluster.Cluster, ns string) {
	t.Helper()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("%s: namespace %s: %v", c.Name, ns, err)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

var _ = runtime.NumCPU

// serverCPU is the CPU time (user + system) used so far by the local
// clusters' processes (etcd, kube-apiservers, controller managers,
// CoreDNS): every process whose command line names the set's directory.
func serverCPU(set *localcluster.Set) time.Duration {
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(set.WorkDir)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name in parentheses: utime is the 14th
		// field of the line, stime the 15th.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		var u, s int64
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &s)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
