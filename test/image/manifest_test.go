package image

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifestPath is the in-cluster manifest whose Deployment the tests run.
const manifestPath = "deploy/in-cluster/kubectl-mcs.yaml"

// deployManifest is the in-cluster manifest: its Deployment, and the other
// objects (namespace, service account, RBAC) as YAML to create.
type deployManifest struct {
	deployment *appsv1.Deployment
	others     []byte
}

func readManifest(t testing.TB) *deployManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	m := &deployManifest{}
	var others [][]byte
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var obj unstructured.Unstructured
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", manifestPath, err)
		}
		b, err := yaml.Marshal(obj.Object)
		if err != nil {
			t.Fatal(err)
		}
		if obj.GetKind() != "Deployment" {
			others = append(others, b)
			continue
		}
		if m.deployment != nil {
			t.Fatalf("%s: more than one Deployment", manifestPath)
		}
		m.deployment = &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict(b, m.deployment); err != nil {
			t.Fatalf("%s: Deployment: %v", manifestPath, err)
		}
	}
	if m.deployment == nil || len(m.deployment.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one Deployment with one container", manifestPath)
	}
	m.others = bytes.Join(others, []byte("---\n"))
	return m
}

func (m *deployManifest) container() corev1.Container {
	return m.deployment.Spec.Template.Spec.Containers[0]
}

// imageRepo is the repository of the Deployment's image, without tag or
// digest: what the docker tarball is tagged with.
func imageRepo(t testing.TB) string {
	t.Helper()
	ref := readManifest(t).container().Image
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// argValue is the value of --name in args (--name=value or --name value).
func argValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// probePort resolves a probe's port (a number or a named container port).
func probePort(t testing.TB, c corev1.Container, port intstr.IntOrString) int {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntValue()
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	t.Fatalf("%s: probe port %q is no port of the container", manifestPath, port.StrVal)
	return 0
}
