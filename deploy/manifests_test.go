// Package deploy holds the manifests users apply: least-privilege RBAC
// (rbac/) and the in-cluster Deployment (in-cluster/). This test keeps
// them valid YAML whose kubectl-mcs invocations the command tree accepts.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
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
			}
		}
	}
	if deployments == 0 {
		t.Errorf("no Deployment found in %v", files)
	}
}
