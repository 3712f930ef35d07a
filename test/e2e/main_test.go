// Package e2e runs kubectl mcs against real local clusters (etcd,
// kube-apiserver, kube-controller-manager, CoreDNS built from the Go module
// proxy by `make tools`). `go test -short` skips it.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// clusters is the two-cluster set most tests share: cluster1 is the
// provider, cluster2 the consumer. Tests use their own namespaces.
var clusters *localcluster.Set

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		return m.Run()
	}
	// kubectl's discovery cache is keyed by host:port; ports of earlier runs
	// get reused, so give every run a cache of its own.
	cacheDir, err := os.MkdirTemp("", "kubectl-mcs-e2e-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(cacheDir)
	os.Setenv("KUBECACHEDIR", cacheDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	clusters, err = localcluster.Start(ctx, localcluster.Options{Clusters: 3, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting local clusters:", err)
		return 1
	}
	defer clusters.Stop()
	fmt.Fprintf(os.Stderr, "e2e: three clusters up in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// needClusters skips in -short mode, where TestMain started nothing.
func needClusters(t *testing.T) *localcluster.Set {
	t.Helper()
	if clusters == nil {
		t.Skip("e2e needs local clusters (not started in -short mode)")
	}
	return clusters
}
