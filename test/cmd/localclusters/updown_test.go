package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestUpDownUpDown runs `up`, `down`, `up`, `down` and `clean` on one
// directory through the real command (built, since `up` re-executes itself
// as `serve`): each up starts clusters whose kubeconfig works, with the seed
// workload, from a clean state; each down leaves no process behind and says
// what stays on disk; clean removes it.
func TestUpDownUpDown(t *testing.T) {
	needServers(t)
	bin := buildCommand(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		// Whatever failed above, stop every cluster this test started.
		if out, err := runCommand(t, 3*time.Minute, bin, "clean", "--dir", dir); err != nil {
			t.Errorf("clean: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	for round := 1; round <= 2; round++ {
		out, err := runCommand(t, 3*time.Minute, bin, "up", "--dir", dir)
		if err != nil {
			t.Fatalf("round %d: up: %v\n%s", round, err, out)
		}
		t.Logf("round %d: up:\n%s", round, out)
		st, err := readState(dir)
		if err != nil {
			t.Fatalf("round %d: after up: %v", round, err)
		}
		if !processRunning(st.PID) {
			t.Fatalf("round %d: up printed pid %d, which does not run", round, st.PID)
		}
		if !strings.Contains(out, "export KUBECONFIG="+st.Kubeconfig) {
			t.Errorf("round %d: up does not print the export KUBECONFIG line:\n%s", round, out)
		}
		if len(st.DNS) != 2 {
			t.Errorf("round %d: CoreDNS addresses %v, want one per cluster", round, st.DNS)
		}

		c1, c2 := client(t, st.Kubeconfig, "cluster1"), client(t, st.Kubeconfig, "cluster2")
		if round == 1 {
			checkNodeHint(ctx, t, out, st, c1)
		}
		names := namespaces(ctx, t, c1)
		if !names[fixtures.SeedNamespaceName] {
			t.Errorf("round %d: cluster1 lacks the seed's namespace %s (has %v)", round, fixtures.SeedNamespaceName, names)
		}
		if _, err := c1.AppsV1().StatefulSets(fixtures.SeedNamespaceName).Get(ctx, "mysql", metav1.GetOptions{}); err != nil {
			t.Errorf("round %d: cluster1: the seed's StatefulSet: %v", round, err)
		}
		if names := namespaces(ctx, t, c2); !names["default"] {
			t.Errorf("round %d: cluster2 lacks namespace default (has %v)", round, names)
		}
		// Each up starts from a clean state: what round 1 made is gone.
		const marker = "made-in-round-1"
		if round == 1 {
			if _, err := c1.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: marker}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			// A second up while they run starts nothing and prints them.
			again, err := runCommand(t, time.Minute, bin, "up", "--dir", dir)
			if err != nil || !strings.Contains(again, "(pid "+strconv.Itoa(st.PID)+")") {
				t.Errorf("up while running: %v\n%s", err, again)
			}
		} else if _, err := c1.CoreV1().Namespaces().Get(ctx, marker, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("round 2: namespace %s of round 1 is still there (err %v): up did not start from a clean state", marker, err)
		}

		out, err = runCommand(t, 3*time.Minute, bin, "down", "--dir", dir)
		if err != nil {
			t.Fatalf("round %d: down: %v\n%s", round, err, out)
		}
		t.Logf("round %d: down:\n%s", round, out)
		if processRunning(st.PID) {
			t.Errorf("round %d: pid %d of state.json still runs after down", round, st.PID)
		}
		if left := processesMentioning(dir); len(left) > 0 {
			t.Errorf("round %d: processes still running after down:\n%s", round, strings.Join(left, "\n"))
		}
		if _, err := os.Stat(statePath(dir)); !os.IsNotExist(err) {
			t.Errorf("round %d: state.json is still there after down (%v)", round, err)
		}
		if !strings.Contains(out, "Left on disk: "+dir+" (") || !strings.Contains(out, "make demo-clean DEMO_DIR="+dir) {
			t.Errorf("round %d: down does not say what it left on disk and how to remove it:\n%s", round, out)
		}
	}

	out, err := runCommand(t, time.Minute, bin, "down", "--dir", dir)
	if err != nil || !strings.Contains(out, "No local clusters are running in "+dir) {
		t.Errorf("down when stopped: %v\n%s", err, out)
	}
	out, err = runCommand(t, time.Minute, bin, "clean", "--dir", dir)
	if err != nil || !strings.Contains(out, "Removed "+dir+" (") {
		t.Errorf("clean: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after clean (%v)", dir, err)
	}
}

// checkNodeHint: where the clusters have a data plane, up names each node's
// network namespace, and the nsenter it prints really reaches a pod of
// cluster1 from cluster2's node (by address: the node has no resolver).
func checkNodeHint(ctx context.Context, t *testing.T, out string, st *state, c1 kubernetes.Interface) {
	t.Helper()
	if err := localcluster.DataPlaneSupported(""); err != nil {
		if len(st.Nodes) != 0 || strings.Contains(out, "nsenter") {
			t.Errorf("without a data plane (%v), up names nodes %v", err, st.Nodes)
		}
		return
	}
	node := st.Nodes["cluster2"]
	if len(st.Nodes) != 2 || !strings.Contains(out, "nsenter --net="+node+" ") {
		t.Fatalf("up names nodes %v and prints:\n%s\nwant both nodes, and nsenter into cluster2's", st.Nodes, out)
	}
	var ip string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pod, err := c1.CoreV1().Pods(fixtures.SeedNamespaceName).Get(ctx, "mysql-0", metav1.GetOptions{})
		if err == nil {
			ip = pod.Status.PodIP
		}
		return ip != "", nil
	})
	if err != nil {
		t.Fatalf("mysql-0 got no IP: %v", err)
	}
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+node, "bash", "-c", "cat < /dev/tcp/"+ip+"/3306")
	got, err := cmd.CombinedOutput()
	if err != nil || string(got) != "cluster1/mysql-0\n" {
		t.Errorf("nsenter --net=%s bash -c 'cat < /dev/tcp/%s/3306': %v, printed %q, want cluster1/mysql-0", node, ip, err, got)
	}
}

// needServers skips where no local cluster can start: in -short mode (as
// test/e2e does) and without the servers of `make tools`.
func needServers(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts local clusters (not in -short mode)")
	}
	localcluster.NeedTools(t)
}

func toolsDir(t *testing.T) string {
	dir, err := filepath.Abs(localcluster.ToolsDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildCommand builds this command into a temporary folder.
func buildCommand(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "localclusters")
	if b, err := exec.Command("go", "build", "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("building localclusters: %v\n%s", err, b)
	}
	return out
}

// runCommand runs the built command with the test servers of this run, and
// returns its standard output and error together.
func runCommand(t *testing.T, timeout time.Duration, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), localcluster.ToolsDirEnv+"="+toolsDir(t))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func client(t *testing.T, kubeconfig, context string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		t.Fatalf("kubeconfig %s, context %s: %v", kubeconfig, context, err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func namespaces(ctx context.Context, t *testing.T, c kubernetes.Interface) map[string]bool {
	t.Helper()
	list, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing namespaces: %v", err)
	}
	names := map[string]bool{}
	for _, ns := range list.Items {
		names[ns.Name] = true
	}
	return names
}

// processesMentioning lists the running processes whose command line
// contains s (every server the clusters run names its files in --dir).
func processesMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) || !processRunning(pid) {
			continue
		}
		found = append(found, e.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	return found
}
