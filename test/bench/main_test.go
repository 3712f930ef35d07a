// Package bench measures kubectl mcs on real local clusters.
//
// Without $MCS_BENCH, `go test ./test/bench` (part of `make test`) runs only
// TestRoundTrips (small imports whose request counts per cluster are
// asserted against the documented figures) and TestWatchScale (a short
// `sync --watch` over 3 clusters × 20 services: cold start, restart and
// churn, whose write counts are asserted): counts, never times. With
// MCS_BENCH=1 (`make bench`), TestBench runs every benchmark (round trips,
// scale, fan-out, start-up, library, propagation, watch at scale), prints
// the table and rewrites the section of docs/performance.md between the bench markers.
package bench

import (
	"os"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// clusters: cluster1 and cluster2 are sources, cluster3 the consumer;
// cluster4 is kubectl's consumer in the scale benchmark, and cluster1..6
// the fan-out clusterset (bench mode only).
var clusters *localcluster.Set

func benchMode() bool { return os.Getenv("MCS_BENCH") != "" }

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	n := 3
	if benchMode() {
		n = 6
	}
	return pluginrun.Main(m, "bench", localcluster.Options{Clusters: n}, &clusters)
}

func needClusters(t *testing.T) *localcluster.Set {
	return pluginrun.NeedClusters(t, clusters, "bench")
}
