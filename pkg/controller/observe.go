package controller

import (
	"slices"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// What the controller feeds the metrics: the state behind the scrape-time
// series (from the caches and the probe), and per sync the objects written
// and the endpoint propagation delay.

// Metrics are the controller's metrics (served on Options.MetricsAddr).
func (c *Controller) Metrics() *metrics.Metrics { return c.metrics }

// metricsState reads the caches and the probe's findings at scrape time.
func (c *Controller) metricsState() metrics.State {
	st := metrics.State{Leader: c.leading.Load()}
	watches := make([]*clusterWatch, 0, len(c.watches))
	for _, w := range c.watches {
		watches = append(watches, w)
	}
	slices.SortFunc(watches, func(a, b *clusterWatch) int { return strings.Compare(a.cluster.Context, b.cluster.Context) })
	// Sources whose endpoints are kept: unreachable, not yet expired.
	kept := map[string]bool{}
	reachable := map[*clusterWatch]bool{}
	for _, w := range watches {
		w.mu.Lock()
		reachable[w] = w.unreachableErr == nil
		kept[w.cluster.ID] = w.source && w.unreachableErr != nil && !w.expired
		w.mu.Unlock()
		st.Clusters = append(st.Clusters, metrics.Cluster{Name: w.cluster.Context, Reachable: reachable[w]})
	}
	for _, w := range watches {
		for _, u := range c.inScope(w.exports) {
			var ex mcsv1beta1.ServiceExport
			_ = apply.FromUnstructured(u, &ex)
			st.Exports = append(st.Exports, metrics.Object{Cluster: w.cluster.Context, Namespace: ex.Namespace, Name: ex.Name, Conditions: ex.Status.Conditions})
		}
		for _, u := range c.inScope(w.imports) {
			var si mcsv1beta1.ServiceImport
			_ = apply.FromUnstructured(u, &si)
			st.Imports = append(st.Imports, metrics.Import{
				Object: metrics.Object{Cluster: w.cluster.Context, Namespace: si.Namespace, Name: si.Name, Conditions: si.Status.Conditions},
				Type:   string(si.Spec.Type), Clusters: len(si.Status.Clusters),
			})
		}
		if w.ownSlices == nil || !reachable[w] {
			continue
		}
		stale := map[string]int{}
		for _, obj := range w.ownSlices.GetStore().List() {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if ok && s.Labels[discoveryv1.LabelManagedBy] == reconcile.FieldManager && kept[s.Labels[mcsv1beta1.LabelSourceCluster]] &&
				len(c.keyOf(s.Namespace, s.Labels[mcsv1beta1.LabelServiceName])) > 0 {
				stale[s.Labels[mcsv1beta1.LabelSourceCluster]] += len(s.Endpoints)
			}
		}
		for _, src := range watches {
			if src != w && src.source {
				st.Stale = append(st.Stale, metrics.StaleEndpoints{Cluster: w.cluster.Context, Source: src.cluster.Context, Endpoints: stale[src.cluster.ID]})
			}
		}
	}
	return st
}

// inScope lists the cached MCS objects of the services this watch syncs.
func (c *Controller) inScope(inf cache.SharedIndexInformer) []*unstructured.Unstructured {
	if inf == nil {
		return nil
	}
	var out []*unstructured.Unstructured
	for _, obj := range inf.GetStore().List() {
		if u, ok := obj.(*unstructured.Unstructured); ok && len(c.keyOf(u.GetNamespace(), u.GetName())) > 0 {
			out = append(out, u)
		}
	}
	return out
}

// writeResources names the resource of each kind of result, as
// kubectl_mcs_writes_total's label resource.
var writeResources = map[string]string{
	reconcile.KindService:       "services",
	reconcile.KindEndpointSlice: "endpointslices",
	"ServiceExport":             "serviceexports/status",
}

// countWrites adds the objects a sync wrote to kubectl_mcs_writes_total. A
// ServiceImport is one result whether its spec, its status or both were
// written; the plan says which.
func (c *Controller) countWrites(report engine.Report) {
	importWrites := map[[3]string][]string{}
	for _, ch := range report.Plan.Changes {
		w := c.watches[ch.Cluster]
		if w == nil || ch.Action == reconcile.ActionUnchanged {
			continue
		}
		k := [3]string{w.cluster.Context, ch.Namespace, ch.Name}
		switch ch.Kind {
		case reconcile.KindServiceImport:
			importWrites[k] = append(importWrites[k], "serviceimports")
		case reconcile.KindServiceImportStatus:
			importWrites[k] = append(importWrites[k], "serviceimports/status")
		}
	}
	counts := map[[2]string]int{}
	for _, r := range report.Results {
		if r.Action == apply.Unchanged {
			continue
		}
		if r.Kind == reconcile.KindServiceImport {
			resources := importWrites[[3]string{r.Cluster, r.Namespace, r.Name}]
			if len(resources) == 0 {
				resources = []string{"serviceimports"}
			}
			for _, res := range resources {
				counts[[2]string{r.Cluster, res}]++
			}
			continue
		}
		if res, ok := writeResources[r.Kind]; ok {
			counts[[2]string{r.Cluster, res}]++
		}
	}
	for k, n := range counts {
		c.metrics.AddWrites(k[0], k[1], n)
	}
}

// markSeen notes when a source EndpointSlice change of these keys was
// first seen. Only while syncing: the initial lists of a start (or of a
// follower becoming leader) are not changes anyone waits for.
func (c *Controller) markSeen(keys []key) {
	if !c.leading.Load() || len(keys) == 0 {
		return
	}
	now := time.Now()
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	for _, k := range keys {
		if _, ok := c.seen[k]; !ok {
			c.seen[k] = now
		}
	}
}

// takeSeen takes k's first sighting, if any, for the sync about to start;
// a change seen during the sync starts the next measure.
func (c *Controller) takeSeen(k key) (time.Time, bool) {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	t, ok := c.seen[k]
	delete(c.seen, k)
	return t, ok
}

// restoreSeen puts back a sighting whose sync failed, keeping the earliest.
func (c *Controller) restoreSeen(k key, t time.Time) {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	if cur, ok := c.seen[k]; !ok || t.Before(cur) {
		c.seen[k] = t
	}
}

// observePropagation records, for each consumer whose EndpointSlices the
// sync wrote, the time since the source change was seen.
func (c *Controller) observePropagation(report engine.Report, seen time.Time) {
	d := time.Since(seen)
	done := map[string]bool{}
	for _, r := range report.Results {
		if r.Kind == reconcile.KindEndpointSlice && r.Action != apply.Unchanged && !done[r.Cluster] {
			done[r.Cluster] = true
			c.metrics.ObservePropagation(r.Cluster, d)
		}
	}
}
