package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	exportInfo = desc("serviceexport_info",
		"Every ServiceExport the watch syncs (1), by the cluster that holds it.",
		"cluster", "namespace", "serviceexport")
	exportCondition = desc("serviceexport_status_condition",
		"The current status and reason of each condition (Valid, Ready, Conflict) of a ServiceExport (1; one series per condition).",
		"cluster", "namespace", "serviceexport", "condition", "status", "reason")
	importInfo = desc("serviceimport_info",
		"Every ServiceImport in a consumer the watch syncs (1), with its type (ClusterSetIP or Headless).",
		"cluster", "namespace", "serviceimport", "type")
	importCondition = desc("serviceimport_status_condition",
		"The current status and reason of each condition (Ready) of a ServiceImport (1; one series per condition).",
		"cluster", "namespace", "serviceimport", "condition", "status", "reason")
	importClusters = desc("serviceimport_clusters",
		"Number of exporting clusters a ServiceImport lists in status.clusters.",
		"cluster", "namespace", "serviceimport")
	clusterReachable = desc("cluster_reachable",
		"1 while the cluster's API server answers the controller's probe (/readyz), 0 while it does not.",
		"cluster")
	staleEndpoints = desc("stale_endpoints",
		"Endpoints a consumer (cluster) keeps for an unreachable source (source_cluster) until --stale-ttl has passed; 0 for a reachable source.",
		"cluster", "source_cluster")
	leader = desc("leader",
		"1 while this process holds the leader election Lease and syncs (always 1 without --leader-elect), else 0.")
)

// stateCollector turns a State, read at each scrape, into const metrics:
// an object gone from the caches is gone from the next scrape.
type stateCollector struct {
	state func() State
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{exportInfo, exportCondition, importInfo, importCondition, importClusters, clusterReachable, staleEndpoints, leader} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(leader, boolValue(st.Leader))
	for _, cl := range st.Clusters {
		gauge(clusterReachable, boolValue(cl.Reachable), cl.Name)
	}
	// Two informers never hold the same object, but a State built by hand
	// might: a duplicate series would fail the whole scrape.
	seen := map[string]bool{}
	once := func(parts ...string) bool {
		k := ""
		for _, p := range parts {
			k += strconv.Quote(p)
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	for _, e := range st.Exports {
		if !once("export", e.Cluster, e.Namespace, e.Name) {
			continue
		}
		gauge(exportInfo, 1, e.Cluster, e.Namespace, e.Name)
		for _, cond := range e.Conditions {
			if once("export-condition", e.Cluster, e.Namespace, e.Name, cond.Type) {
				gauge(exportCondition, 1, e.Cluster, e.Namespace, e.Name, cond.Type, string(cond.Status), cond.Reason)
			}
		}
	}
	for _, i := range st.Imports {
		if !once("import", i.Cluster, i.Namespace, i.Name) {
			continue
		}
		gauge(importInfo, 1, i.Cluster, i.Namespace, i.Name, i.Type)
		gauge(importClusters, float64(i.Clusters), i.Cluster, i.Namespace, i.Name)
		for _, cond := range i.Conditions {
			if once("import-condition", i.Cluster, i.Namespace, i.Name, cond.Type) {
				gauge(importCondition, 1, i.Cluster, i.Namespace, i.Name, cond.Type, string(cond.Status), cond.Reason)
			}
		}
	}
	for _, s := range st.Stale {
		if once("stale", s.Cluster, s.Source) {
			gauge(staleEndpoints, float64(s.Endpoints), s.Cluster, s.Source)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
