package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mcs/kubectl-mcs/deploy/rbac"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// TestLeastPrivilege runs export, import, status and a short import
// --watch (informers, Events in both clusters) as a user bound to exactly
// the shipped ClusterRoles, then removes one rule and expects a clear
// refusal before anything is written.
func TestLeastPrivilege(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "rbac-ns"
	const user = "mcs-operator"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	roles := map[*localcluster.Cluster][]string{provider: {"view.yaml", "provider.yaml"}, consumer: {"view.yaml", "consumer.yaml"}}
	for c, files := range roles {
		for _, f := range files {
			manifest, err := rbac.Manifests.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Create(ctx, "", manifest); err != nil {
				t.Fatal(err)
			}
			role := "kubectl-mcs-" + strings.TrimSuffix(f, ".yaml")
			if _, err := c.Create(ctx, "", []byte(fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: %[1]s-%[2]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[1]s}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}]
`, role, user))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := provider.Create(ctx, ns, []byte(namespaceManifest(ns)+manyServices(4, 2, 3))); err != nil {
		t.Fatal(err)
	}
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := set.WriteUserKubeconfig(kubeconfig, user, nil); err != nil {
		t.Fatal(err)
	}

	kubectlMCS(t, kubeconfig, "export", "db-0", "-n", ns, "--context", "cluster1").mustSucceed(t)
	kubectlMCS(t, kubeconfig, "import", "db-0", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
	status := kubectlMCS(t, kubeconfig, "status", "-n", ns, "--clusters", "cluster1,cluster2").mustSucceed(t)
	if got := tableRow(t, status.stdout, "db-0")["IMPORTED IN"]; got != "cluster2" {
		t.Errorf("status as %s: IMPORTED IN %q, want cluster2", user, got)
	}
	watchAsUser(ctx, t, kubeconfig, provider, consumer, ns, "db-3")

	// Without the right to write EndpointSlices, import refuses up front.
	patch := `{"rules":[
	  {"apiGroups":["multicluster.x-k8s.io"],"resources":["serviceimports"],"verbs":["create","patch","delete"]},
	  {"apiGroups":["multicluster.x-k8s.io"],"resources":["serviceimports/status"],"verbs":["patch"]},
	  {"apiGroups":[""],"resources":["services"],"verbs":["create","patch","delete"]}]}`
	if _, err := consumer.Client.RbacV1().ClusterRoles().Patch(ctx, "kubectl-mcs-consumer", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, kubeconfig, "export", "db-1", "-n", ns, "--context", "cluster1").mustSucceed(t)
	run := kubectlMCS(t, kubeconfig, "import", "db-1", "-n", ns, "--from", "cluster1", "--context", "cluster2")
	run.mustFail(t, "cluster2", "forbidden", "create endpointslices.discovery.k8s.io in namespace rbac-ns", "nothing was written", "deploy/rbac")
	if run.totalWrites() != 0 {
		t.Errorf("refused import wrote %d times", run.totalWrites())
	}
	if _, err := getServiceImportErr(ctx, consumer, ns, "db-1"); err == nil {
		t.Errorf("a ServiceImport was created by the refused import")
	}

	// Without the right to write export status, export refuses up front.
	if _, err := provider.Client.RbacV1().ClusterRoles().Patch(ctx, "kubectl-mcs-provider", types.MergePatchType,
		[]byte(`{"rules":[{"apiGroups":["multicluster.x-k8s.io"],"resources":["serviceexports"],"verbs":["create","patch","delete"]}]}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	denied := kubectlMCS(t, kubeconfig, "export", "db-2", "-n", ns, "--context", "cluster1")
	denied.mustFail(t, "cluster1", "forbidden", "patch serviceexports/status.multicluster.x-k8s.io in namespace rbac-ns", "nothing was written")
	if denied.totalWrites() != 0 {
		t.Errorf("refused export wrote %d times", denied.totalWrites())
	}
	if _, err := provider.Dynamic().Resource(serviceExportsGVR).Namespace(ns).Get(ctx, "db-2", metav1.GetOptions{}); err == nil {
		t.Errorf("the refused export created ServiceExport db-2")
	}
	// What the role still allows keeps working.
	kubectlMCS(t, kubeconfig, "unexport", "db-0", "-n", ns, "--context", "cluster1").mustSucceed(t)
}

// TestVerboseLogsHideTokens: -v=9 logs every request, never the bearer token.
func TestVerboseLogsHideTokens(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := set.Cluster("cluster1")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "mcs-token-test", Namespace: "default"}}
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token
	cfg, err := clientcmd.LoadFromFile(set.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AuthInfos["token"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["token"] = &clientcmdapi.Context{Cluster: "cluster1", AuthInfo: "token", Namespace: "default"}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, pluginrun.Binary(t), "--kubeconfig", kubeconfig, "--context", "token", "-v=9", "status", "-A", "--clusters", "token")
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "Authorization: Bearer") {
		t.Fatalf("-v=9 output shows no request headers; the check would prove nothing:\n%.2000s", out)
	}
	if strings.Contains(string(out), token) || strings.Contains(string(out), token[:20]) {
		t.Errorf("-v=9 output contains the bearer token")
	}
}

// watchAsUser runs `import SERVICE --watch` as the bound user from cluster1
// into cluster2, cluster1 being reached through a proxy (context
// rbac-source): the informers need list and watch (view role); the export's
// conditions bring an Event in cluster1 (provider role); closing the proxy
// makes the source unreachable, an Event on the ServiceImport in cluster2
// (consumer role). An Event reported by kubectl-mcs can only have been
// written by the user.
func watchAsUser(ctx context.Context, t *testing.T, kubeconfig string, provider, consumer *localcluster.Cluster, ns, svc string) {
	t.Helper()
	proxy := startTCPProxy(t, strings.TrimPrefix(provider.Server, "https://"))
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Clusters[provider.Name].DeepCopy()
	src.Server = "https://" + proxy.Addr()
	cfg.Clusters["rbac-source"] = src
	cfg.Contexts["rbac-source"] = &clientcmdapi.Context{Cluster: "rbac-source", AuthInfo: cfg.Contexts[provider.Name].AuthInfo, Namespace: "default"}
	watchConfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, watchConfig); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, kubeconfig, "export", svc, "-n", ns, "--context", provider.Name).mustSucceed(t)

	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan pluginRun, 1)
	go func() {
		done <- kubectlMCSWatch(watchCtx, t, watchConfig, "import", svc, "-n", ns, "--from", "rbac-source", "--context", consumer.Name, "--watch")
	}()
	defer func() {
		stopWatch()
		select {
		case run := <-done:
			if run.code != 0 || strings.Contains(run.stderr, "forbidden") {
				t.Errorf("the watch as the bound user exited %d:\n%s", run.code, headTail(run.stderr, 20))
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the watch did not stop within 30s of its cancellation")
		}
	}()
	eventually(ctx, t, 60*time.Second, "the watch as the bound user imports "+svc, func() (bool, string) {
		si, err := getServiceImportErr(ctx, consumer, ns, svc)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(clustersOf(si), []string{"rbac-source"}), fmt.Sprint(clustersOf(si))
	})
	waitEvent(ctx, t, provider, ns, "ServiceExport", svc, corev1.EventTypeNormal, "NoConflicts")
	proxy.Close()
	waitEvent(ctx, t, consumer, ns, "ServiceImport", svc, corev1.EventTypeWarning, "SourceUnreachable")
}
