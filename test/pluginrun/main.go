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

// Main is the body of a TestMain that needs local clusters: outside -short
// mode it gives the run a discovery cache of its own (kubectl's is keyed by
// host:port, and ports of earlier runs get reused), starts the clusters
// opts asks for into *set, runs the tests and stops the clusters.
func Main(m *testing.M, name string, opts localcluster.Options, set **localcluster.Set) int {
	flag.Parse()
	if testing.Short() {
		fmt.Printf("%s: skipped in -short mode\n", name)
		return m.Run()
	}
	if err := localcluster.CheckTools(localcluster.ToolsDir()); err != nil {
		if localcluster.ToolsRequired() {
			fmt.Fprintf(os.Stderr, "%s: %v (%s is set: the tools must be there)\n", name, err, localcluster.RequireToolsEnv)
			return 1
		}
		// A fresh clone: every test that needs the clusters skips and
		// says why (NeedClusters); the others run.
		noClusters = err.Error()
		fmt.Fprintf(os.Stderr, "%s: no local clusters: %v\n", name, err)
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
	opts.Log = os.Stderr
	s, err := localcluster.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: starting local clusters: %v\n", name, err)
		return 1
	}
	defer s.Stop()
	*set = s
	fmt.Fprintf(os.Stderr, "%s: %d clusters up in %s\n", name, opts.Clusters, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// noClusters is why Main started no clusters outside -short mode: the
// servers of `make tools` are missing.
var noClusters string

// NeedClusters returns the clusters Main started, or skips the test where
// Main started none: in -short mode, or without the servers of `make
// tools` (where they are required, Main fails instead).
func NeedClusters(t testing.TB, set *localcluster.Set, name string) *localcluster.Set {
	t.Helper()
	switch {
	case set != nil:
	case noClusters != "":
		t.Skipf("%s needs local clusters: %s", name, noClusters)
	default:
		t.Skip(name + " needs local clusters (not started in -short mode)")
	}
	return set
}

// RequireDataPlaneEnv, when set, makes a machine that cannot run the local
// clusters' data plane a failure instead of a skip: CI runs as root, where
// the connectivity tests must run.
const RequireDataPlaneEnv = "MCS_REQUIRE_DATAPLANE"

// WantDataPlane tells a TestMain whether to start its clusters with a data
// plane: where the machine supports one, or where RequireDataPlaneEnv
// demands it (Start then fails and says what is missing).
func WantDataPlane() bool {
	if os.Getenv(RequireDataPlaneEnv) != "" {
		return true
	}
	err := localcluster.DataPlaneSupported("")
	if err != nil {
		fmt.Fprintf(os.Stderr, "no data plane: %v; the connectivity tests will be skipped\n", err)
	}
	return err == nil
}

// NeedDataPlane skips a test when its clusters were started without a data
// plane (WantDataPlane said no).
func NeedDataPlane(t testing.TB, set *localcluster.Set) {
	t.Helper()
	if !set.HasDataPlane() {
		t.Skipf("needs the local clusters' data plane: %v", localcluster.DataPlaneSupported(""))
	}
}
