package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// podName stands in for the pod's name: the container's hostname.
const podName = "kubectl-mcs-5d8f7c9b6-image"

// TestImageRunsAsDeployment runs the image the way the Deployment of
// deploy/in-cluster/kubectl-mcs.yaml runs it, everything read from there:
// its args, the image's user (or the securityContext's), a read-only root,
// no privilege escalation, its env, the kubeconfig Secret mounted as a file
// where the manifest mounts it, its emptyDir, and the service account a
// pod gets. Against the local clusters it checks the probes answer on
// their ports, an export is imported into every cluster, and SIGTERM stops
// it cleanly within terminationGracePeriodSeconds.
func TestImageRunsAsDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local clusters: not in -short mode")
	}
	// Like the data-plane tests: skipped where the machine cannot run it,
	// a failure where CI (as root) demands it.
	cannot := localcluster.CheckTools(localcluster.ToolsDir())
	if os.Geteuid() != 0 {
		cannot = errors.New("needs root (chroot, mounts)")
	}
	if cannot != nil {
		if os.Getenv(pluginrun.RequireDataPlaneEnv) != "" {
			t.Fatal(cannot)
		}
		t.Skip(cannot)
	}
	b := sharedImage(t)
	img := readLayout(t, b.layout)
	m := readManifest(t)
	d, c := m.deployment, m.container()
	pod := d.Spec.Template.Spec
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 3, Log: testLog{t}})
	if err != nil {
		t.Fatalf("starting local clusters: %v", err)
	}
	defer set.Stop()

	// What the manifest creates besides the Deployment (namespace,
	// service account, RBAC), in every cluster: the home cluster is the
	// one whose service account the pod gets.
	home := set.Clusters[0]
	for _, cl := range set.Clusters {
		if _, err := cl.Create(ctx, "", m.others); err != nil {
			t.Fatal(err)
		}
	}

	root := filepath.Join(t.TempDir(), "rootfs")
	unpack(t, img, root, true)
	spec := containerSpec{
		Root:       root,
		Hostname:   podName,
		WorkingDir: img.config.Config.WorkingDir,
		Argv:       imageArgv(t, img, c),
	}
	if spec.WorkingDir == "" {
		spec.WorkingDir = "/"
	}
	spec.UID, spec.GID = imageUser(t, img)
	for _, sc := range []*corev1.SecurityContext{podSecurity(pod.SecurityContext), c.SecurityContext} {
		if sc != nil && sc.RunAsUser != nil {
			spec.UID = int(*sc.RunAsUser)
		}
		if sc != nil && sc.RunAsGroup != nil {
			spec.GID = int(*sc.RunAsGroup)
		}
	}
	if nonRoot := (pod.SecurityContext != nil && boolOr(pod.SecurityContext.RunAsNonRoot, false)) ||
		(c.SecurityContext != nil && boolOr(c.SecurityContext.RunAsNonRoot, false)); nonRoot && spec.UID == 0 {
		t.Fatalf("runAsNonRoot, but the container would run as uid 0")
	}
	if sc := c.SecurityContext; sc != nil {
		spec.ReadOnlyRoot = boolOr(sc.ReadOnlyRootFilesystem, false)
		spec.NoNewPrivs = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	}
	spec.Mounts = volumeMounts(ctx, t, set, pod, c)
	spec.Env = slices.Clone(img.config.Config.Env)
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Fatalf("env %s: valueFrom is not run by this test", e.Name)
		}
		spec.Env = append(spec.Env, e.Name+"="+e.Value)
	}
	if boolOr(pod.AutomountServiceAccountToken, true) {
		sa, env := serviceAccountMount(ctx, t, home, d.Namespace, pod.ServiceAccountName)
		spec.Mounts = append(spec.Mounts, sa)
		spec.Env = append(spec.Env, env...)
	}
	spec.Env = append(spec.Env, "HOSTNAME="+podName)

	health := probeURL(t, c, c.LivenessProbe, "liveness")
	ready := probeURL(t, c, c.ReadinessProbe, "readiness")
	for _, u := range []*url.URL{health, ready} {
		checkPortFree(t, u.Port())
	}

	logPath := filepath.Join(t.TempDir(), "container.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	t.Logf("running %q as %d:%d in %s (read-only root %v, mounts %+v)", spec.Argv, spec.UID, spec.GID, root, spec.ReadOnlyRoot, spec.Mounts)
	cmd, err := startContainer(spec, logFile, logFile)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("container output:\n%s", out)
		}
	}()

	eventually(ctx, t, exited, 30*time.Second, "the entrypoint runs as the image's user", func() error {
		return checkProcess(cmd.Process.Pid, spec)
	})
	for _, u := range []*url.URL{health, ready} {
		eventually(ctx, t, exited, 90*time.Second, "GET "+u.String()+" answers 200", func() error { return httpOK(ctx, u.String(), "") })
	}

	// The seed: MySQL behind a headless Service in cluster1, exported.
	for _, cl := range set.Clusters {
		if _, err := cl.Create(ctx, "", fixtures.MustRead(fixtures.SeedNamespace)); err != nil {
			t.Fatal(err)
		}
	}
	ns := fixtures.SeedNamespaceName
	if _, err := home.Create(ctx, ns, append(fixtures.MustRead(fixtures.SeedMySQL), append([]byte("\n---\n"), fixtures.MustRead(fixtures.SeedServiceExport)...)...)); err != nil {
		t.Fatal(err)
	}
	for _, cl := range set.Clusters {
		eventually(ctx, t, exited, 90*time.Second, "the export mysql is imported into "+cl.Name, func() error {
			return importedFrom(ctx, cl, ns, "mysql", home.Name)
		})
	}
	if d.Spec.Template.Annotations["prometheus.io/scrape"] == "true" {
		metrics := fmt.Sprintf("http://127.0.0.1:%s%s", d.Spec.Template.Annotations["prometheus.io/port"], d.Spec.Template.Annotations["prometheus.io/path"])
		eventually(ctx, t, exited, 30*time.Second, metrics+" says this replica leads", func() error {
			return httpOK(ctx, metrics, "\nkubectl_mcs_leader 1\n")
		})
	}

	grace := 30 * time.Second // Kubernetes' default
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		t.Logf("SIGTERM: exited after %s (%v); terminationGracePeriodSeconds allows %s", time.Since(start).Round(time.Millisecond), err, grace)
		if err != nil {
			t.Errorf("after SIGTERM the container exited with %v, want 0", err)
		}
	case <-time.After(grace):
		t.Fatalf("still running %s after SIGTERM (terminationGracePeriodSeconds); the kubelet would kill it", grace)
	}
	out, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "read-only file system") {
		t.Errorf("the plugin tried to write to its read-only root:\n%s", out)
	}
}

// testLog sends the local clusters' steps to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// boolOr is *p, or def when the manifest leaves the field out.
func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

var tokenSeconds int64 = 3600

func podSecurity(p *corev1.PodSecurityContext) *corev1.SecurityContext {
	if p == nil {
		return nil
	}
	return &corev1.SecurityContext{RunAsUser: p.RunAsUser, RunAsGroup: p.RunAsGroup}
}

// volumeMounts turns the container's volume mounts into bind mounts: the
// kubeconfig Secret becomes a read-only folder holding the local clusters'
// kubeconfig under the name --kubeconfig gives, an emptyDir an empty
// folder anyone may write (as the kubelet makes it).
func volumeMounts(ctx context.Context, t *testing.T, set *localcluster.Set, pod corev1.PodSpec, c corev1.Container) []mount {
	t.Helper()
	kubeconfig, ok := argValue(c.Args, "--kubeconfig")
	if !ok {
		t.Fatalf("%s: the container's args name no --kubeconfig", manifestPath)
	}
	placed := false
	var mounts []mount
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Fatalf("%s: volume mount %s names no volume", manifestPath, vm.Name)
		}
		v := pod.Volumes[i]
		dir := t.TempDir()
		switch {
		case v.Secret != nil:
			rel, err := filepath.Rel(vm.MountPath, kubeconfig)
			if err != nil || !filepath.IsLocal(rel) {
				t.Fatalf("%s: Secret %s is mounted at %s, not where --kubeconfig=%s reads", manifestPath, v.Secret.SecretName, vm.MountPath, kubeconfig)
			}
			data, err := os.ReadFile(set.Kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
				t.Fatal(err)
			}
			placed = true
			mounts = append(mounts, mount{Source: dir, Target: vm.MountPath, ReadOnly: true})
		case v.EmptyDir != nil:
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			mounts = append(mounts, mount{Source: dir, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
		default:
			t.Fatalf("%s: volume %s: only secret and emptyDir volumes are run by this test", manifestPath, v.Name)
		}
	}
	if !placed {
		t.Fatalf("%s: --kubeconfig=%s is on no Secret volume of the container", manifestPath, kubeconfig)
	}
	return mounts
}

// serviceAccountMount is what the kubelet gives every pod: a token of its
// service account, the cluster's CA and the namespace, and the address of
// the API server in KUBERNETES_SERVICE_HOST/PORT (here the home cluster's).
func serviceAccountMount(ctx context.Context, t *testing.T, home *localcluster.Cluster, namespace, account string) (mount, []string) {
	t.Helper()
	if account == "" {
		account = "default"
	}
	tok, err := home.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, account,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &tokenSeconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("%s: token of service account %s/%s: %v", home.Name, namespace, account, err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": home.Config.CAData, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(home.Server)
	if err != nil {
		t.Fatal(err)
	}
	return mount{Source: dir, Target: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
		[]string{"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()}
}

// probeURL is the URL a probe's httpGet asks, on the pod's address (here
// 127.0.0.1).
func probeURL(t *testing.T, c corev1.Container, p *corev1.Probe, what string) *url.URL {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("%s: the container has no %s probe with httpGet", manifestPath, what)
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(probePort(t, c, p.HTTPGet.Port))), Path: p.HTTPGet.Path}
}

// checkPortFree: the container shares the host's network, so a port
// taken by something else would fail the run for a reason not its own.
func checkPortFree(t *testing.T, port string) {
	t.Helper()
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		t.Fatalf("port %s of the manifest is taken on this machine (the container runs in the host's network): %v", port, err)
	}
	l.Close()
}

// checkProcess: the process has exec'd the entrypoint as the user, with
// no capabilities and (if asked) no_new_privs.
func checkProcess(pid int, spec containerSpec) error {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.Join(strings.Fields(v), " ")
	}
	want := map[string]string{
		"Name":   filepath.Base(spec.Argv[0]),
		"Uid":    strings.Repeat(strconv.Itoa(spec.UID)+" ", 4),
		"Gid":    strings.Repeat(strconv.Itoa(spec.GID)+" ", 4),
		"Groups": "",
		"CapEff": "0000000000000000",
		"CapPrm": "0000000000000000",
	}
	if spec.NoNewPrivs {
		want["NoNewPrivs"] = "1"
	}
	for k, v := range want {
		if fields[k] != strings.TrimSpace(v) {
			return fmt.Errorf("/proc/%d/status %s: %q, want %q", pid, k, fields[k], strings.TrimSpace(v))
		}
	}
	return nil
}

// eventually polls check until it succeeds, the deadline passes, or the
// container exits (which ends the test at once).
func eventually(ctx context.Context, t *testing.T, exited <-chan error, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		select {
		case exitErr := <-exited:
			t.Fatalf("%s: the container exited (%v) first; last: %v", what, exitErr, err)
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// httpOK: GET url answers 200, with contains in the body if given.
func httpOK(ctx context.Context, url, contains string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	if contains != "" && !strings.Contains(string(body), contains) {
		return fmt.Errorf("%s: no %q in the answer", url, strings.TrimSpace(contains))
	}
	return nil
}

var serviceImports = schema.GroupVersionResource{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Resource: "serviceimports"}

// importedFrom: cluster c has the ServiceImport ns/name with the exporting
// cluster in its status.
func importedFrom(ctx context.Context, c *localcluster.Cluster, ns, name, exporter string) error {
	si, err := c.Dynamic().Resource(serviceImports).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	list, _, _ := unstructured.NestedSlice(si.Object, "status", "clusters")
	for _, entry := range list {
		if m, ok := entry.(map[string]any); ok && m["cluster"] == exporter {
			return nil
		}
	}
	return fmt.Errorf("%s: ServiceImport %s/%s has status.clusters %v, want %s among them", c.Name, ns, name, list, exporter)
}
