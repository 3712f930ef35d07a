// Package deploy holds the manifests users apply: least-privilege RBAC
// (rbac/) and the in-cluster Deployment (in-cluster/). This test keeps
// them valid YAML whose kubectl-mcs invocations the command tree accepts.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
)

func TestManifests(t *testing.T) {
	files, err := filepath.Glob("*/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("manifests: %v %v", files, err)
	}
	deployments := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			var obj unstructured.Unstructured
			err := dec.Decode(&obj.Object)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if obj.GetKind() == "" || obj.GetName() == "" {
				t.Errorf("%s: object without kind or name", f)
			}
			if obj.GetKind() != "Deployment" {
				continue
			}
			deployments++
			b, _ := yaml.Marshal(obj.Object)
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(b, &d); err != nil {
				t.Fatalf("%s: Deployment: %v", f, err)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				root := cmd.NewCmdMCS(genericiooptions.NewTestIOStreamsDiscard())
				sub, _, err := root.Find(c.Args)
				if err != nil || sub == root {
					t.Fatalf("%s: args %v name no kubectl mcs verb: %v", f, c.Args, err)
				}
				if err := sub.ParseFlags(c.Args); err != nil {
					t.Errorf("%s: kubectl mcs %s rejects its flags %v: %v", f, sub.Name(), c.Args, err)
				}
				if !strings.Contains(strings.Join(c.Args, " "), "--leader-elect") && *d.Spec.Replicas > 1 {
					t.Errorf("%s: %d replicas without --leader-elect would write at once", f, *d.Spec.Replicas)
				}
				checkPorts(t, f, &d, c, sub.Flags().Lookup("health-addr").Value.String(), sub.Flags().Lookup("metrics-addr").Value.String())
				checkMemoryLimit(t, f, c)
			}
		}
	}
	if deployments == 0 {
		t.Errorf("no Deployment found in %v", files)
	}
}

// checkMemoryLimit: a container with a memory limit sets GOMEMLIMIT, in a
// form the Go runtime accepts, at most 90% of the limit (stacks and the
// runtime live outside the heap).
func checkMemoryLimit(t *testing.T, file string, c corev1.Container) {
	t.Helper()
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return
	}
	var soft string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			soft = e.Value
		}
	}
	if soft == "" {
		t.Errorf("%s: container %s has a memory limit of %s but no GOMEMLIMIT: the heap grows to twice its live size before a collection and can hit the limit", file, c.Name, limit.String())
		return
	}
	// GOMEMLIMIT's units (KiB, MiB, GiB) are Kubernetes' Ki, Mi, Gi.
	q, err := resource.ParseQuantity(strings.TrimSuffix(strings.Replace(soft, "iB", "i", 1), "B"))
	if err != nil || !regexp.MustCompile(`^[0-9]+(B|KiB|MiB|GiB)?$`).MatchString(soft) {
		t.Errorf("%s: GOMEMLIMIT=%q is not a byte count the Go runtime reads (e.g. 230MiB): %v", file, soft, err)
		return
	}
	if q.Value()*10 > limit.Value()*9 {
		t.Errorf("%s: GOMEMLIMIT=%s is above 90%% of the memory limit %s", file, soft, limit.String())
	}
}

// checkPorts: the ports of --health-addr and --metrics-addr are declared
// by the container, and a metrics port is the one the prometheus.io scrape
// annotations name.
func checkPorts(t *testing.T, file string, d *appsv1.Deployment, c corev1.Container, healthAddr, metricsAddr string) {
	t.Helper()
	declared := map[string]bool{}
	for _, p := range c.Ports {
		declared[strconv.Itoa(int(p.ContainerPort))] = true
	}
	for flag, addr := range map[string]string{"--health-addr": healthAddr, "--metrics-addr": metricsAddr} {
		if addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s: %s=%s: %v", file, flag, addr, err)
			continue
		}
		if !declared[port] {
			t.Errorf("%s: %s=%s but the container declares no port %s", file, flag, addr, port)
		}
	}
	ann := d.Spec.Template.Annotations
	if metricsAddr == "" {
		if ann["prometheus.io/scrape"] == "true" {
			t.Errorf("%s: prometheus.io/scrape without --metrics-addr", file)
		}
		return
	}
	_, port, _ := net.SplitHostPort(metricsAddr)
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": port, "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("%s: pod annotation %s = %q, want %q (--metrics-addr=%s)", file, k, ann[k], v, metricsAddr)
		}
	}
}

// TestRolesCoverTheWatchMode: what --watch needs beyond the one-shot verbs
// (pkg/controller): its informers list and watch every kind they cache, in
// every cluster (view); it records Events on ServiceExports in sources
// (provider) and on ServiceImports in consumers (consumer), which
// client-go's recorder creates and then patches. test/e2e's
// TestLeastPrivilege runs the watch as a user bound to these roles.
func TestRolesCoverTheWatchMode(t *testing.T) {
	roles := map[string]rbacv1.ClusterRole{}
	for _, f := range []string{"view", "provider", "consumer"} {
		raw, err := os.ReadFile(filepath.Join("rbac", f+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var r rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict(raw, &r); err != nil {
			t.Fatalf("rbac/%s.yaml: %v", f, err)
		}
		roles[f] = r
	}
	grants := func(r rbacv1.ClusterRole, group, resource, verb string) bool {
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
				return true
			}
		}
		return false
	}
	need := []struct{ role, group, resource, verb string }{
		{"view", "multicluster.x-k8s.io", "serviceexports", "watch"},
		{"view", "multicluster.x-k8s.io", "serviceimports", "watch"},
		{"view", "", "services", "watch"},
		{"view", "", "namespaces", "watch"},
		{"view", "discovery.k8s.io", "endpointslices", "watch"},
		{"provider", "", "events", "create"},
		{"provider", "", "events", "patch"},
		{"consumer", "", "events", "create"},
		{"consumer", "", "events", "patch"},
	}
	for _, n := range need {
		if !grants(roles[n.role], n.group, n.resource, n.verb) {
			t.Errorf("rbac/%s.yaml does not grant %s on %s (group %q), which --watch needs", n.role, n.verb, n.resource, n.group)
		}
	}
}
