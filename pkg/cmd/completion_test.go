package cmd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// completion is what cobra's hidden __complete verb answered: the
// candidates (descriptions dropped) and the directive for the shell.
type completion struct {
	candidates []string
	directive  cobra.ShellCompDirective
	stderr     string
}

// complete runs `kubectl mcs __complete ARGS...` in-process, as the shell
// scripts and kubectl_complete-mcs do: the last argument is the word being
// completed.
func complete(t *testing.T, args ...string) completion {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := cmd.NewCmdMCS(streams)
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	code, err := strconv.Atoi(strings.TrimPrefix(last, ":"))
	if !strings.HasPrefix(last, ":") || err != nil {
		t.Fatalf("__complete %q: no directive line at the end of:\n%s", args, out.String())
	}
	c := completion{directive: cobra.ShellCompDirective(code), stderr: errOut.String()}
	for _, line := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(line, "\t")
		c.candidates = append(c.candidates, name)
	}
	return c
}

// writeKubeconfig writes a kubeconfig whose clusters all point at a closed
// port: enough for context completion, and an unreachable cluster for the
// rest.
func writeKubeconfig(t *testing.T, contexts ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\ncurrent-context: " + contexts[0] + "\nclusters:\n")
	for _, name := range contexts {
		b.WriteString("- name: " + name + "-cluster\n  cluster:\n    server: https://127.0.0.1:1\n")
	}
	b.WriteString("users:\n")
	for _, name := range contexts {
		b.WriteString("- name: " + name + "-user\n  user:\n    token: not-used\n")
	}
	b.WriteString("contexts:\n")
	for _, name := range contexts {
		b.WriteString("- name: " + name + "\n  context:\n    cluster: " + name + "-cluster\n    user: " + name + "-user\n")
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompletionScripts(t *testing.T) {
	// Each script completes the executable kubectl-mcs and asks it for
	// candidates; nothing in them may name the bare root command "mcs".
	for shell, want := range map[string]string{
		"bash":       "complete -o default -F __start_kubectl-mcs kubectl-mcs",
		"zsh":        "#compdef kubectl-mcs",
		"fish":       "complete -c kubectl-mcs",
		"powershell": "Register-ArgumentCompleter -CommandName 'kubectl-mcs'",
	} {
		t.Run(shell, func(t *testing.T) {
			var out bytes.Buffer
			root := cmd.NewCmdMCS(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
			root.SetArgs([]string{"completion", shell})
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("completion %s: no %q in the script:\n%.400s", shell, want, out.String())
			}
		})
	}
	root := cmd.NewCmdMCS(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	root.SetArgs([]string{"completion", "tcsh"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "tcsh") {
		t.Errorf("completion tcsh: want an error naming the shell, got %v", err)
	}
}

func TestCompleteFromKubeconfig(t *testing.T) {
	kubeconfig := writeKubeconfig(t, "cluster1", "cluster2", "staging")
	all := []string{"cluster1", "cluster2", "staging"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"verbs", []string{""}, nil}, // checked below: the verbs are there
		{"context", []string{"export", "--context", ""}, all},
		{"context prefix", []string{"status", "--context", "clu"}, []string{"cluster1", "cluster2"}},
		{"context before verb", []string{"--context", "st"}, []string{"staging"}},
		{"from", []string{"import", "--from", ""}, all},
		{"from after comma", []string{"import", "--from", "cluster1,"}, []string{"cluster1,cluster2", "cluster1,staging"}},
		{"from partial entry", []string{"import", "--from", "staging,cluster1,c"}, []string{"staging,cluster1,cluster2"}},
		{"from all named", []string{"import", "--from", "cluster1,cluster2,staging,"}, nil},
		{"clusters of status", []string{"status", "--clusters", "s"}, []string{"staging"}},
		{"clusters with equals", []string{"status", "--clusters=cluster2,"}, []string{"cluster2,cluster1", "cluster2,staging"}},
		{"clusters of crds install", []string{"crds", "install", "--clusters", "cluster2,"}, []string{"cluster2,cluster1", "cluster2,staging"}},
		{"clusters of crds check", []string{"crds", "check", "--clusters", ""}, all},
		{"clusters of resolve", []string{"resolve", "--clusters", "cluster1,s"}, []string{"cluster1,staging"}},
		{"kubeconfig cluster", []string{"status", "--cluster", "stag"}, []string{"staging-cluster"}},
		{"kubeconfig user", []string{"status", "--user", "cluster1"}, []string{"cluster1-user"}},
		{"no arguments to version", []string{"version", ""}, nil},
		{"shells", []string{"completion", ""}, []string{"bash", "zsh", "fish", "powershell"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := complete(t, append([]string{"--kubeconfig", kubeconfig}, tc.args...)...)
			if tc.name == "verbs" {
				for _, verb := range []string{"completion", "crds", "export", "import", "status", "unexport", "version"} {
					if !slices.Contains(got.candidates, verb) {
						t.Errorf("verb %s not offered: %q", verb, got.candidates)
					}
				}
				return
			}
			if !slices.Equal(got.candidates, tc.want) {
				t.Errorf("candidates %q, want %q", got.candidates, tc.want)
			}
			if got.directive&cobra.ShellCompDirectiveNoFileComp == 0 {
				t.Errorf("directive %d lets the shell offer file names", got.directive)
			}
		})
	}
}

// TestCompleteUnreachableCluster: when the cluster cannot be reached, TAB
// offers nothing (no file names either) and prints nothing but cobra's own
// directive line, which every shell script throws away.
func TestCompleteUnreachableCluster(t *testing.T) {
	kubeconfig := writeKubeconfig(t, "down")
	for _, args := range [][]string{
		{"-n", ""},
		{"export", "--namespace", "x", ""},
		{"unexport", ""},
		{"import", "--from", "down", ""},
		{"import", ""},
		{"status", "-A", ""},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			var got completion
			// client-go's own reports go through klog to the process's
			// stderr, not the command's: watch that too.
			processStderr := captureStderr(t, func() {
				got = complete(t, append([]string{"--kubeconfig", kubeconfig}, args...)...)
			})
			if processStderr != "" {
				t.Errorf("printed to stderr:\n%s", processStderr)
			}
			if len(got.candidates) != 0 {
				t.Errorf("candidates %q from an unreachable cluster", got.candidates)
			}
			if got.directive != cobra.ShellCompDirectiveNoFileComp {
				t.Errorf("directive %d, want NoFileComp (%d)", got.directive, cobra.ShellCompDirectiveNoFileComp)
			}
			if lines := strings.Split(strings.TrimSpace(got.stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "Completion ended with directive") {
				t.Errorf("stderr has more than cobra's directive line:\n%s", got.stderr)
			}
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("took %s for a refused connection", elapsed)
			}
		})
	}
}

// captureStderr runs fn with os.Stderr sent to a file, and returns what
// was written there.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stderr
	os.Stderr = f
	defer func() { os.Stderr = saved }()
	fn()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCompleteFromCluster reads namespaces and service names from one real
// local cluster (kube-apiserver with the MCS CRDs).
func TestCompleteFromCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a local cluster (not started in -short mode)")
	}
	localcluster.NeedTools(t)
	t.Setenv("KUBECACHEDIR", t.TempDir()) // ports of earlier runs get reused
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	c := set.Clusters[0]

	for _, ns := range []string{"provider-ns", "other-ns"} {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	port := []corev1.ServicePort{{Name: "tcp", Port: 3306}}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "mysql"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: port}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Ports: port}},
		{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
	} {
		if _, err := c.Client.CoreV1().Services("provider-ns").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mcs := func(resource, kind, ns, name string, spec map[string]any) {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": kind,
			"metadata": map[string]any{"name": name, "namespace": ns},
		}}
		if spec != nil {
			obj.Object["spec"] = spec
		}
		gvr := schema.GroupVersionResource{Group: "multicluster.x-k8s.io", Version: "v1beta1", Resource: resource}
		if _, err := c.Dynamic().Resource(gvr).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mcs("serviceexports", "ServiceExport", "provider-ns", "mysql", nil)
	mcs("serviceexports", "ServiceExport", "other-ns", "cache", nil)
	mcs("serviceimports", "ServiceImport", "provider-ns", "db", map[string]any{
		"type": "Headless", "ports": []any{map[string]any{"port": int64(5432), "protocol": "TCP"}},
	})

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"namespace prefix", []string{"-n", "prov"}, []string{"provider-ns"}},
		{"namespace after verb", []string{"status", "--namespace", "other"}, []string{"other-ns"}},
		{"export offers Services but ExternalName", []string{"export", "-n", "provider-ns", ""}, []string{"mysql", "web"}},
		{"export leaves out given names", []string{"export", "-n", "provider-ns", "mysql", ""}, []string{"web"}},
		{"unexport offers exports", []string{"unexport", "-n", "provider-ns", ""}, []string{"mysql"}},
		{"unexport in another namespace", []string{"unexport", "--context", "cluster1", "-n", "other-ns", "c"}, []string{"cache"}},
		{"import without --from offers imports", []string{"import", "-n", "provider-ns", ""}, []string{"db"}},
		{"import offers what --from exports", []string{"import", "--from", "cluster1", "-n", "provider-ns", ""}, []string{"mysql"}},
		{"status offers exports and imports", []string{"status", "-n", "provider-ns", ""}, []string{"db", "mysql"}},
		{"status -A", []string{"status", "-A", ""}, []string{"cache", "db", "mysql"}},
		{"status --clusters", []string{"status", "--clusters", "cluster1", "-n", "other-ns", ""}, []string{"cache"}},
		{"resolve offers exports and imports", []string{"resolve", "-n", "provider-ns", "m"}, []string{"mysql"}},
		{"namespace without services", []string{"export", "-n", "default", "x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := complete(t, append([]string{"--kubeconfig", set.Kubeconfig}, tc.args...)...)
			if !slices.Equal(got.candidates, tc.want) {
				t.Errorf("candidates %q, want %q", got.candidates, tc.want)
			}
			if got.directive != cobra.ShellCompDirectiveNoFileComp {
				t.Errorf("directive %d, want NoFileComp", got.directive)
			}
		})
	}
	all := complete(t, "--kubeconfig", set.Kubeconfig, "-n", "")
	for _, ns := range []string{"default", "kube-system", "other-ns", "provider-ns"} {
		if !slices.Contains(all.candidates, ns) {
			t.Errorf("namespace %s not offered: %q", ns, all.candidates)
		}
	}
}
