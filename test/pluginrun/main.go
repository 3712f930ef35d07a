package pluginrun

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// Main is the body of a TestMain that needs n local clusters: outside
// -short mode it gives the run a discovery cache of its own (kubectl's is
// keyed by host:port, and ports of earlier runs get reused), starts the
// clusters into *set, runs the tests and stops the clusters.
func Main(m *testing.M, name string, n int, set **localcluster.Set) int {
	flag.Parse()
	if testing.Short() {
		fmt.Printf("%s: skipped in -short mode\n", name)
		return m.Run()
	}
	cacheDir, err := os.MkdirTemp("", "kubectl-mcs-"+name+"-cache-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer os.RemoveAll(cacheDir)
	os.Setenv("KUBECACHEDIR", cacheDir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := localcluster.Start(ctx, localcluster.Options{Clusters: n, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: starting local clusters: %v\n", name, err)
		return 1
	}
	defer s.Stop()
	*set = s
	fmt.Fprintf(os.Stderr, "%s: %d clusters up in %s\n", name, n, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// NeedClusters returns the clusters Main started, or skips the test in
// -short mode, where Main started none.
func NeedClusters(t testing.TB, set *localcluster.Set, name string) *localcluster.Set {
	t.Helper()
	if set == nil {
		t.Skip(name + " needs local clusters (not started in -short mode)")
	}
	return set
}
