package localcluster

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const echoManifest = `
apiVersion: v1
kind: Pod
metadata:
  name: echo
  labels: {app: echo}
spec:
  containers:
  - name: echo
    image: echo
    ports:
    - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  selector: {app: echo}
  ports:
  - port: 80
    targetPort: 8080
`

const clientManifest = `
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: client
    image: client
`

// TestDataPlane checks the data plane itself, below any MCS object: a pod
// answers on its container port from its own node and from another
// cluster's node, and a ClusterIP Service reaches it through kube-proxy.
func TestDataPlane(t *testing.T) {
	NeedTools(t)
	needDataPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set, err := Start(ctx, Options{Clusters: 2, DataPlane: true, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	c1, c2 := set.Clusters[0], set.Clusters[1]
	if _, err := c1.Create(ctx, "default", []byte(echoManifest)); err != nil {
		t.Fatal(err)
	}
	for _, c := range set.Clusters {
		if _, err := c.Create(ctx, "default", []byte(clientManifest)); err != nil {
			t.Fatal(err)
		}
	}
	var podIP, clusterIP string
	eventually(t, 30*time.Second, func() error {
		pod, err := c1.Client.CoreV1().Pods("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc, err := c1.Client.CoreV1().Services("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		podIP, clusterIP = pod.Status.PodIP, svc.Spec.ClusterIP
		if podIP == "" {
			return errNotYet
		}
		return nil
	})
	for _, tc := range []struct {
		from    *Cluster
		pod     string // "" for the node
		address string
	}{
		{c1, "", net.JoinHostPort(podIP, "8080")},
		{c2, "", net.JoinHostPort(podIP, "8080")},
		{c1, "", net.JoinHostPort(clusterIP, "80")},
		{c1, "client", net.JoinHostPort(podIP, "8080")},
		{c2, "client", net.JoinHostPort(podIP, "8080")},
		{c1, "client", net.JoinHostPort(clusterIP, "80")},
	} {
		from := tc.from.Name + "'s node"
		if tc.pod != "" {
			from = tc.from.Name + "'s pod " + tc.pod
		}
		eventually(t, 30*time.Second, func() error {
			var got string
			var err error
			if tc.pod == "" {
				got, err = tc.from.Connect(ctx, tc.address)
			} else {
				got, err = tc.from.ConnectFromPod(ctx, "default", tc.pod, tc.address)
			}
			if err != nil {
				return err
			}
			if got != "cluster1/echo" {
				t.Fatalf("%s -> %s answered %q, want cluster1/echo", from, tc.address, got)
			}
			t.Logf("%s -> %s: %s", from, tc.address, got)
			return nil
		})
	}
	// cluster2's node has no rule for cluster1's ClusterIP: it goes nowhere.
	if got, err := c2.Connect(ctx, net.JoinHostPort(clusterIP, "80")); err == nil {
		t.Fatalf("cluster2 reached cluster1's ClusterIP %s: %q", clusterIP, got)
	}
}

// needDataPlane skips in -short mode, and where the machine cannot run the
// data plane unless MCS_REQUIRE_DATAPLANE (pluginrun.RequireDataPlaneEnv)
// demands it.
func needDataPlane(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts local clusters (not in -short mode)")
	}
	if err := DataPlaneSupported(""); err != nil {
		if os.Getenv("MCS_REQUIRE_DATAPLANE") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

var errNotYet = errors.New("not yet")

// eventually retries check until it succeeds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
