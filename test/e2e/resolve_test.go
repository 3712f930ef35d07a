package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/resolve"
	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestResolveAndDNSSetup: the seed's MySQL in its own namespace, exported
// and imported; the consumer's Corefile is the vendor's. resolve names the
// missing DNS setup; dns --patch fixes it; then a real CoreDNS running the
// patched Corefile gives, for every per-pod form, exactly resolve's answer.
func TestResolveAndDNSSetup(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := "resolve-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	if _, err := provider.Create(ctx, ns, append([]byte(namespaceManifest(ns)+"---\n"), fixtures.MustRead(fixtures.SeedMySQL)...)); err != nil {
		t.Fatal(err)
	}
	pods := waitForHostnames(ctx, t, provider, ns, "mysql", "mysql-0", "mysql-1")
	kubectlMCS(t, set.Kubeconfig, "export", "mysql", "-n", ns, "--context", "cluster1").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2", "--create-namespace").mustSucceed(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": string(fixtures.MustRead(fixtures.SeedCorefile))}}
	if _, err := consumer.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clusters := "--clusters=cluster1,cluster2,cluster3"

	// The spec form needs a DNS setup this consumer lacks.
	spec := "mysql-0.cluster1.mysql." + ns + ".svc.clusterset.local"
	broken := kubectlMCS(t, set.Kubeconfig, "resolve", spec, "--context", "cluster2", clusters)
	if broken.code == 0 || !strings.Contains(broken.stdout, "not set up to serve") || !strings.Contains(broken.stdout, "kubectl mcs dns --patch --context cluster2") {
		t.Errorf("resolve of %s without DNS setup: exit %d, want the DNS setup link and its fix:\n%s", spec, broken.code, broken.stdout)
	}
	// The check answers with its exit code: 1 while not set up.
	check := kubectlMCS(t, set.Kubeconfig, "dns", "--context", "cluster2")
	if check.code != 1 || !strings.Contains(check.stdout, "does not serve clusterset.local") || !strings.Contains(check.stdout, "problem:") {
		t.Errorf("dns check: exit %d, want 1 and the problems:\n%s", check.code, check.stdout)
	}
	dry := kubectlMCS(t, set.Kubeconfig, "dns", "--patch", "--vendor-form", "--dry-run=client", "--context", "cluster2").mustSucceed(t)
	if !strings.Contains(dry.stdout, "+") || !strings.Contains(dry.stdout, "(dry run)") || dry.totalWrites() != 0 {
		t.Errorf("dns --patch --dry-run=client: want a diff, no writes (%d):\n%s", dry.totalWrites(), dry.stdout)
	}
	kubectlMCS(t, set.Kubeconfig, "dns", "--patch", "--vendor-form", "--context", "cluster2").mustSucceed(t)
	again := kubectlMCS(t, set.Kubeconfig, "dns", "--patch", "--vendor-form", "--context", "cluster2").mustSucceed(t)
	if !strings.Contains(again.stdout, "unchanged") || again.totalWrites() != 0 {
		t.Errorf("a second dns --patch must change nothing:\n%s", again.stdout)
	}
	// Set up now: both checks answer 0.
	kubectlMCS(t, set.Kubeconfig, "dns", "--context", "cluster2").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "dns", "--vendor-form", "--context", "cluster2").mustSucceed(t)

	patched, err := consumer.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	local, err := localcluster.LocalizeCorefile(patched.Data["Corefile"])
	if err != nil {
		t.Fatal(err)
	}
	coredns, err := consumer.StartCoreDNS(ctx, local)
	if err != nil {
		t.Fatalf("the real CoreDNS refuses the patched Corefile: %v\n%s", err, local)
	}

	run := kubectlMCS(t, set.Kubeconfig, "resolve", "mysql-0", "-n", ns, "--context", "cluster2", clusters, "--dns-server", coredns.Addr, "-o", "json").mustSucceed(t)
	var report resolve.Report
	if err := json.Unmarshal([]byte(run.stdout), &report); err != nil {
		t.Fatalf("resolve -o json: %v\n%s", err, run.stdout)
	}
	want := map[string]string{
		"mysql-0.amcs-mysql." + ns + ".svc.cluster.local.":        "derived-pod",
		"mysql-0.cluster1.mysql." + ns + ".svc.clusterset.local.": "clusterset-pod",
		"mysql-0.mysql." + ns + ".svc.clusterset.local.":          "vendor-pod",
	}
	seen := map[string]bool{}
	for _, n := range report.Names {
		if _, ok := want[n.Name]; !ok {
			t.Errorf("unexpected name %s", n.Name)
			continue
		}
		seen[n.Name] = true
		if n.Form != want[n.Name] || n.Answer != pods["mysql-0"] || n.Cluster != "cluster1" || !n.Ready || !n.Served || n.Here != "yes" {
			t.Errorf("%s: %+v, want form %s answering %s from cluster1, ready, served here", n.Name, n, want[n.Name], pods["mysql-0"])
		}
		// The comparison with the live CoreDNS goes both ways: same set.
		if n.Live != "agrees" {
			t.Errorf("%s: live CoreDNS %s", n.Name, n.Live)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("resolve mysql-0 does not list %s", name)
		}
	}
	// A name the imported state does not have: both say no.
	gone := kubectlMCS(t, set.Kubeconfig, "resolve", "mysql-7.cluster1.mysql."+ns+".svc.clusterset.local", "--context", "cluster2", clusters, "--dns-server", coredns.Addr)
	if gone.code == 0 || !strings.Contains(gone.stdout, "agrees") {
		t.Errorf("resolve of a missing pod: exit %d, want a failure on which the live DNS agrees:\n%s", gone.code, gone.stdout)
	}
}

// TestResolveBrokenLinks: each broken link between a pod and its name gets
// its own message and fix.
func TestResolveBrokenLinks(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "links-ns"
	provider, consumer := set.Cluster("cluster1"), set.Cluster("cluster2")
	notReady := strings.Replace(string(fixtures.MustRead(fixtures.SeedMySQL)), "      labels:\n        app: mysql\n",
		fmt.Sprintf("      labels:\n        app: mysql\n      annotations:\n        %s: \"true\"\n", localcluster.NotReadyAnnotation), 1)
	if !strings.Contains(notReady, localcluster.NotReadyAnnotation) {
		t.Fatal("could not mark the StatefulSet's pods not ready")
	}
	if _, err := provider.Create(ctx, ns, []byte(namespaceManifest(ns)+"---\n"+webManifest("http", 80, 8080)+"---\n"+notReady)); err != nil {
		t.Fatal(err)
	}
	if _, err := provider.Create(ctx, "", []byte(namespaceManifest("links-elsewhere")+"---\napiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: links-elsewhere}\nspec: {ports: [{port: 80}]}\n")); err != nil {
		t.Fatal(err)
	}
	// A Service whose own name has the derived prefix, and one whose
	// derived name is cut and hashed: neither maps back by trimming
	// "amcs-" (reconcile.ServiceOfDerived looks them up).
	longName := strings.Repeat("long", 15) + "svc"
	for _, name := range []string{"amcs-api", longName} {
		if _, err := provider.Create(ctx, ns, []byte(fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: 80}]}\n", name))); err != nil {
			t.Fatal(err)
		}
	}
	waitForReadyEndpoints(ctx, t, provider, ns, "web", 1)
	if _, err := consumer.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
		t.Fatal(err)
	}
	// A port conflict: cluster1 (older export, wins) calls port 80 "http",
	// cluster3 calls it "web"; the import keeps one name per port.
	for name, port := range map[string]string{"cluster1": "http", "cluster3": "web"} {
		svc := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: dup}\nspec: {ports: [{name: %s, port: 80}]}\n", port)
		c := set.Cluster(name)
		if name == "cluster3" {
			if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Create(ctx, ns, []byte(svc)); err != nil {
			t.Fatal(err)
		}
		kubectlMCS(t, set.Kubeconfig, "export", "dup", "-n", ns, "--context", name).mustSucceed(t)
	}
	clusters := "--clusters=cluster1,cluster2,cluster3"

	cases := []struct {
		name    string
		setup   [][]string
		args    []string
		message string
		fix     string
	}{
		{name: "no Service", args: []string{"resolve", "nosuch", "-n", ns},
			message: "no endpoint with hostname \"nosuch\"", fix: "check the name and -n"},
		{name: "no export", args: []string{"resolve", "web", "-n", ns},
			message: "Service links-ns/web is not exported", fix: "kubectl mcs export web -n links-ns --context cluster1"},
		{name: "export not valid", setup: [][]string{{"export", "ghost", "-n", ns, "--context", "cluster1", "--allow-missing-service"}},
			args: []string{"resolve", "ghost", "-n", ns}, message: "no valid export of links-ns/ghost", fix: "create a ClusterIP or headless Service links-ns/ghost"},
		{name: "not imported", setup: [][]string{{"export", "web", "-n", ns, "--context", "cluster1"}},
			args: []string{"resolve", "web", "-n", ns}, message: "exported by cluster1 but not imported into cluster2", fix: "kubectl mcs import web -n links-ns --from cluster1 --context cluster2"},
		{name: "a Service named amcs-api, not imported", setup: [][]string{{"export", "amcs-api", "-n", ns, "--context", "cluster1"}},
			args: []string{"resolve", "amcs-api.links-ns.svc.clusterset.local"}, message: "links-ns/amcs-api is exported by cluster1 but not imported into cluster2",
			fix: "kubectl mcs import amcs-api -n links-ns --from cluster1 --context cluster2"},
		{name: "the derived name of a 63-character Service, not imported", setup: [][]string{{"export", longName, "-n", ns, "--context", "cluster1"}},
			args: []string{"resolve", reconcile.DerivedServiceName(longName) + ".links-ns.svc.cluster.local"}, message: "links-ns/" + longName + " is exported by cluster1 but not imported into cluster2",
			fix: "kubectl mcs import " + longName + " -n links-ns --from cluster1 --context cluster2"},
		{name: "namespace missing", setup: [][]string{{"export", "api", "-n", "links-elsewhere", "--context", "cluster1"}},
			args: []string{"resolve", "api", "-n", "links-elsewhere"}, message: "namespace links-elsewhere does not exist in cluster2", fix: "--create-namespace"},
		{name: "conflict", setup: [][]string{{"import", "dup", "-n", ns, "--from", "cluster1,cluster3", "--context", "cluster2"}},
			args: []string{"resolve", "_web._tcp.dup.links-ns.svc.clusterset.local"}, message: "the exports of links-ns/dup conflict (PortConflict)", fix: "make the exported Services agree"},
		{name: "endpoint not ready", setup: [][]string{{"export", "mysql", "-n", ns, "--context", "cluster1"}, {"import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2"}},
			args: []string{"resolve", "mysql-0", "-n", ns}, message: "endpoint mysql-0 of links-ns/mysql is not ready in cluster1", fix: "make the pod ready"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.setup {
				kubectlMCS(t, set.Kubeconfig, s...).mustSucceed(t)
			}
			if tc.name == "endpoint not ready" {
				waitForHostnamesAny(ctx, t, provider, ns, "mysql", "mysql-0")
				kubectlMCS(t, set.Kubeconfig, "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2").mustSucceed(t)
			}
			run := kubectlMCS(t, set.Kubeconfig, append(tc.args, "--context", "cluster2", clusters)...)
			if run.code == 0 {
				t.Fatalf("exit 0, want a failure naming the broken link")
			}
			if !strings.Contains(run.stdout, tc.message) || !strings.Contains(run.stdout, "Fix: ") || !strings.Contains(run.stdout, tc.fix) {
				t.Errorf("want message %q and fix %q in:\n%s", tc.message, tc.fix, run.stdout)
			}
		})
	}
	bad := kubectlMCS(t, set.Kubeconfig, "resolve", "mysql-0.cluster1.mysql.links-ns.svc.example.org", "--context", "cluster2")
	bad.mustFail(t, "mysql-0.cluster1.mysql.links-ns.svc.example.org")
	long := kubectlMCS(t, set.Kubeconfig, "resolve", strings.Repeat("a", 64)+".mysql.links-ns.svc.clusterset.local", "--context", "cluster2")
	long.mustFail(t, "63")
}

// waitForHostnamesAny waits until the endpointslice controller lists the
// hostnames, ready or not.
func waitForHostnamesAny(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, service string, hostnames ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				if ep.Hostname != nil {
					found[*ep.Hostname] = true
				}
			}
		}
		all := true
		for _, h := range hostnames {
			all = all && found[h]
		}
		if all {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %s/%s never listed %v", c.Name, ns, service, hostnames)
}
