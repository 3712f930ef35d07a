package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// TestModes checks the cells of docs/modes.md that no other test covers
// (the others name their test in the table).
func TestModes(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := "modes-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	exportWeb(ctx, t, set, provider, ns)
	kubeconfig := extendKubeconfig(t, set, map[string]string{"dead": "https://127.0.0.1:1"})

	t.Run("sync: unreachable cluster at start: goes on without it, exit 1", func(t *testing.T) {
		if _, err := consumer.Create(ctx, "", []byte(namespaceManifest(ns))); err != nil {
			t.Fatal(err)
		}
		run := kubectlMCS(t, kubeconfig, "sync", "web", "-n", ns, "--clusters", "cluster1,cluster2,dead", "--request-timeout", "5s")
		run.mustFail(t, "dead", "cannot reach the API server https://127.0.0.1:1")
		if !strings.Contains(run.stdout, "cluster2: serviceimport.multicluster.x-k8s.io/web created") {
			t.Errorf("sync did not go on without the unreachable cluster:\n%s", run.stdout)
		}
	})

	t.Run("sync --watch: unreachable cluster at start: refuses", func(t *testing.T) {
		run := kubectlMCS(t, kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,dead", "--watch", "--request-timeout", "5s")
		run.mustFail(t, "--watch did not start", "dead cannot be reached")
		if run.totalWrites() != 0 {
			t.Errorf("refused watch wrote %d times", run.totalWrites())
		}
	})

	t.Run("import --watch: missing namespace: an error until it exists", func(t *testing.T) {
		late := "modes-late"
		if _, err := provider.Create(ctx, late, []byte(namespaceManifest(late)+"---\n"+webManifest("http", 80, 8080))); err != nil {
			t.Fatal(err)
		}
		kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", late, "--context", "cluster1").mustSucceed(t)
		w := startWatch(ctx, set.Kubeconfig, "import", "web", "-n", late, "--from", "cluster1", "--context", "cluster2", "--watch")
		eventually(ctx, t, 60*time.Second, "the watch names the missing namespace and the fix", func() (bool, string) {
			out := w.log.String()
			return strings.Contains(out, "namespace "+late+" does not exist") && strings.Contains(out, "--create-namespace"), out
		})
		if _, err := getServiceImportErr(ctx, consumer, late, "web"); err == nil {
			t.Errorf("imported into a namespace that does not exist")
		}
		if _, err := consumer.Create(ctx, "", []byte(namespaceManifest(late))); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, 60*time.Second, "web is imported once the namespace exists", func() (bool, string) {
			_, err := getServiceImportErr(ctx, consumer, late, "web")
			return err == nil, errString(err)
		})
		if code := w.stop(); code != 0 {
			t.Errorf("watch exited %d when stopped, want 0:\n%s", code, w.log.String())
		}
	})

	t.Run("sync --watch: missing namespace: that cluster skipped and named", func(t *testing.T) {
		// ns exists in cluster1 and cluster2 (the first subtest), not in cluster3.
		w := startWatch(ctx, set.Kubeconfig, "sync", "web", "-n", ns, "--clusters", "cluster1,cluster2,cluster3", "--watch")
		eventually(ctx, t, 60*time.Second, "cluster3 named with the fix", func() (bool, string) {
			out := w.log.String()
			return strings.Contains(out, "cluster3: not importing "+ns+"/web: namespace "+ns+" does not exist there") &&
				strings.Contains(out, "kubectl create namespace "+ns+" --context cluster3"), out
		})
		if _, err := getServiceImportErr(ctx, consumer, ns, "web"); err != nil {
			t.Errorf("cluster2 (which has the namespace) was not synced: %v", err)
		}
		if code := w.stop(); code != 0 {
			t.Errorf("watch exited %d when stopped, want 0:\n%s", code, w.log.String())
		}
	})

	for _, verb := range [][]string{
		{"import", "web", "--from", "cluster1", "--context", "cluster2"},
		{"sync", "web", "--clusters", "cluster1,cluster2"},
	} {
		t.Run(verb[0]+" --watch --create-namespace: creates it", func(t *testing.T) {
			created := "modes-create-" + verb[0]
			if _, err := provider.Create(ctx, created, []byte(namespaceManifest(created)+"---\n"+webManifest("http", 80, 8080))); err != nil {
				t.Fatal(err)
			}
			kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", created, "--context", "cluster1").mustSucceed(t)
			w := startWatch(ctx, set.Kubeconfig, append(verb, "-n", created, "--watch", "--create-namespace")...)
			eventually(ctx, t, 60*time.Second, "the namespace is created and web imported", func() (bool, string) {
				_, err := getServiceImportErr(ctx, consumer, created, "web")
				return err == nil, errString(err) + "\n" + w.log.String()
			})
			ns, err := consumer.Client.CoreV1().Namespaces().Get(ctx, created, metav1.GetOptions{})
			if err != nil || ns.Labels[reconcile.ManagedByLabel] != reconcile.FieldManager {
				t.Errorf("namespace %s in cluster2: %v, labels %v; want it created by kubectl-mcs", created, err, ns.GetLabels())
			}
			if code := w.stop(); code != 0 {
				t.Errorf("watch exited %d when stopped, want 0:\n%s", code, w.log.String())
			}
		})
	}
}

// watchRun is an in-process `kubectl mcs ... --watch` whose output is read
// while it runs.
type watchRun struct {
	log    pluginrun.LockedBuffer
	cancel context.CancelFunc
	done   chan int
}

func startWatch(ctx context.Context, kubeconfig string, args ...string) *watchRun {
	ctx, cancel := context.WithCancel(ctx)
	w := &watchRun{cancel: cancel, done: make(chan int, 1)}
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &w.log, ErrOut: &w.log}
	root := cmd.NewCmdMCSWithLoader(streams, &clusterset.Loader{Flags: genericclioptions.NewConfigFlags(true)})
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	root.SetContext(ctx)
	go func() { w.done <- cmd.Execute(root, streams) }()
	return w
}

// stop ends the watch as SIGTERM would and returns its exit code.
func (w *watchRun) stop() int {
	w.cancel()
	return <-w.done
}
