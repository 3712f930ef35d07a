package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// rtResult is the request counts of the verbs on one small clusterset:
// `services` headless Services with `endpoints` endpoints each in the two
// sources cluster1 and cluster2, imported into cluster3.
type rtResult struct {
	services, endpoints      int
	exportFirst, exportAgain counts
	importFirst, importAgain counts
	status                   counts
}

func measureRoundTrips(t *testing.T, ns string, services, endpoints int) rtResult {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := rtResult{services: services, endpoints: endpoints}
	for i, name := range []string{"cluster1", "cluster2"} {
		workload(ctx, t, set.Cluster(name), ns, services, endpoints, i)
	}
	exportArgs := func(ctx string) []string { return []string{"export", "--all", "-n", ns, "--context", ctx} }
	// export: counted in cluster1 (cluster2 the same).
	_, r.exportFirst = mcs(t, set.Kubeconfig, exportArgs("cluster1")...)
	mcs(t, set.Kubeconfig, exportArgs("cluster2")...)
	_, r.exportAgain = mcs(t, set.Kubeconfig, exportArgs("cluster1")...)
	importArgs := []string{"import", "-n", ns, "--from", "cluster1,cluster2", "--context", "cluster3", "--create-namespace"}
	_, r.importFirst = mcs(t, set.Kubeconfig, importArgs...)
	_, r.importAgain = mcs(t, set.Kubeconfig, importArgs...)
	_, r.status = mcs(t, set.Kubeconfig, "status", "-n", ns, "--clusters", "cluster1,cluster2,cluster3")
	return r
}

func (r rtResult) String() string {
	return fmt.Sprintf("services=%d endpoints=%d\nexport first %v\nexport again %v\nimport first %v\nimport again %v\nstatus %v",
		r.services, r.endpoints, r.exportFirst, r.exportAgain, r.importFirst, r.importAgain, r.status)
}

// The documented request counts of today (docs/performance.md), with
// discovery cached on disk. Per cluster:
//
//	import, source:   GET clusterproperties, serviceexports, services,
//	                  endpointslices                                   = 4
//	                  + 1 SelfSubjectRulesReview when its exports' status
//	                  is written                                       = 5
//	import, consumer: GET clusterproperties, namespace, serviceimports,
//	                  services, endpointslices                         = 5
//	                  when the namespace is missing (--create-namespace):
//	                  the same 5 + 1 review                            = 6
//	                  (the lists go out with the namespace's GET, in one
//	                  round trip, rather than after it: a request more,
//	                  a round trip less)
//	export:           GET clusterproperties, services, serviceexports  = 3
//	                  + 1 review when something is written             = 4
//	status:           8 in every cluster, whether it exports or only
//	                  imports (its reads go out together, in one round
//	                  trip)
//
// Writes: first import into a missing namespace = 1 (namespace) + per
// service 2 (ServiceImport spec, then status) + 1 (derived Service) + one
// EndpointSlice per source in the consumer, and one export status per
// export in each source; export = 2 per new export (object, then status);
// any re-run with nothing changed = 0. None of it grows with the number
// of services or endpoints, except the writes.
const (
	importSourceReads, importSourceReadsWriting = 4, 5
	importConsumerReads, importConsumerReadsNew = 5, 6
	exportReads, exportReadsWriting             = 3, 4
	statusReadsBoth, statusReadsConsumer        = 8, 8
)

// TestRoundTrips is the small version of benchmarks 1 and 2 that `make
// test` runs: it asserts the request counts per cluster (counts, not
// times) for 2 and for 20 services, so the reads are shown not to grow.
func TestRoundTrips(t *testing.T) {
	set := needClusters(t)
	// Fill the discovery cache, as any earlier run does.
	mcs(t, set.Kubeconfig, "status", "-A", "--clusters", "cluster1,cluster2,cluster3")
	for _, size := range []struct{ services, endpoints int }{{2, 3}, {20, 10}} {
		ns := fmt.Sprintf("rt-%d", size.services)
		r := measureRoundTrips(t, ns, size.services, size.endpoints)
		t.Logf("%s", r)
		s := int64(size.services)
		check := func(what string, got, want int64) {
			t.Helper()
			if got != want {
				t.Errorf("%d services: %s: %d requests, want %d", size.services, what, got, want)
			}
		}
		check("export, first: reads", r.exportFirst.reads["cluster1"], exportReadsWriting)
		check("export, first: writes", r.exportFirst.totalWrites(), 2*s)
		check("export, re-run: reads", r.exportAgain.reads["cluster1"], exportReads)
		check("export, re-run: writes", r.exportAgain.totalWrites(), 0)
		for _, src := range []string{"cluster1", "cluster2"} {
			check("import, first: reads in "+src, r.importFirst.reads[src], importSourceReadsWriting)
			check("import, first: writes in "+src, r.importFirst.writes[src], s)
			check("import, re-run: reads in "+src, r.importAgain.reads[src], importSourceReads)
		}
		check("import, first: reads in the consumer", r.importFirst.reads["cluster3"], importConsumerReadsNew)
		check("import, first: writes in the consumer", r.importFirst.writes["cluster3"], 1+s*(2+1+2))
		check("import, re-run: reads in the consumer", r.importAgain.reads["cluster3"], importConsumerReads)
		check("import, re-run: writes", r.importAgain.totalWrites(), 0)
		check("status: reads in cluster1", r.status.reads["cluster1"], statusReadsBoth)
		check("status: reads in cluster3", r.status.reads["cluster3"], statusReadsConsumer)
		check("status: writes", r.status.totalWrites(), 0)
	}
}
