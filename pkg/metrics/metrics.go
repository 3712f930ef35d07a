// Package metrics is what the watch mode (`import --watch`, `sync --watch`)
// shows Prometheus on /metrics: the state of every ServiceExport and
// ServiceImport, read from the controller's informer caches at scrape time
// (so a series goes when its object goes, with no bookkeeping), the
// reachability of each cluster, the endpoints kept for unreachable sources,
// and what the syncs did (their duration, the objects written, how long an
// endpoint change took to reach each consumer), plus client-go's work queue
// metrics. Each controller has a registry of its own: several watches in one
// process (the e2e tests) never share a series.
//
// The label `cluster` is always the kubeconfig context of the cluster the
// series is about (the one holding the object, the one written to, the one
// probed), never the MCS cluster id: contexts are what a user passes to
// --clusters and --context.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Namespace prefixes every metric of kubectl mcs (the work queue's keep
// client-go's usual workqueue_ names, which dashboards know).
const Namespace = "kubectl_mcs"

// Results of a sync, the values of kubectl_mcs_sync_duration_seconds's
// label `result`.
const (
	// ResultSuccess: every cluster was read and every write succeeded.
	ResultSuccess = "success"
	// ResultPartial: the sync went on without unreachable clusters (their
	// endpoints kept); what could be written was.
	ResultPartial = "partial"
	// ResultError: the sync failed (it is retried with back-off).
	ResultError = "error"
)

// State is what the collector reads at each scrape: the controller's view
// of its clusters, from its informer caches and its probe.
type State struct {
	// Leader is true while this process syncs (always, without leader
	// election, once the caches are synced).
	Leader   bool
	Clusters []Cluster
	Exports  []Object
	Imports  []Import
	Stale    []StaleEndpoints
}

// Cluster is one cluster the controller watches.
type Cluster struct {
	// Name is the kubeconfig context.
	Name      string
	Reachable bool
}

// Object is a ServiceExport or ServiceImport in the cache of one cluster.
type Object struct {
	Cluster, Namespace, Name string
	Conditions               []metav1.Condition
}

// Import is a ServiceImport with what its status says.
type Import struct {
	Object
	// Type is ClusterSetIP or Headless.
	Type string
	// Clusters is the number of exporting clusters in status.clusters.
	Clusters int
}

// StaleEndpoints counts the mirrored endpoints a consumer (Cluster) holds
// for a source (Source) that is unreachable and not yet past --stale-ttl.
type StaleEndpoints struct {
	Cluster, Source string
	Endpoints       int
}

// Metrics holds the registry served on /metrics and the metrics the
// controller updates as it syncs.
type Metrics struct {
	registry     *prometheus.Registry
	syncDuration *prometheus.HistogramVec
	writes       *prometheus.CounterVec
	propagation  *prometheus.HistogramVec
	queue        *queueMetrics
}

// New registers every metric in a new registry; state is called at each
// scrape for the series derived from the caches.
func New(state func() State) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "sync_duration_seconds",
			Help:      "Duration of one sync of one service over every consumer (read from the caches, plan, writes), by result: success, partial (synced without an unreachable cluster) or error.",
			Buckets:   prometheus.ExponentialBuckets(0.001, 2, 15), // 1ms .. 16s
		}, []string{"result"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "writes_total",
			Help:      "Objects written (created, changed or deleted) by the syncs, by cluster written to and resource: serviceimports, serviceimports/status, services, endpointslices, serviceexports/status. Events are not counted.",
		}, []string{"cluster", "resource"}),
		propagation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "endpoint_propagation_seconds",
			Help:      "From the moment the controller saw a source EndpointSlice change to the sync that wrote the consumer's EndpointSlices returning, by consumer cluster.",
			Buckets:   []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"cluster"}),
		queue: newQueueMetrics(),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.syncDuration, m.writes, m.propagation,
		&stateCollector{state: state},
	)
	m.queue.register(m.registry)
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry is the registry Handler serves (for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveSync records one sync's duration and result.
func (m *Metrics) ObserveSync(d time.Duration, result string) {
	m.syncDuration.WithLabelValues(result).Observe(d.Seconds())
}

// AddWrites counts n objects written to a resource of a cluster.
func (m *Metrics) AddWrites(cluster, resource string, n int) {
	if n > 0 {
		m.writes.WithLabelValues(cluster, resource).Add(float64(n))
	}
}

// ObservePropagation records how long an endpoint change took to reach a
// consumer.
func (m *Metrics) ObservePropagation(cluster string, d time.Duration) {
	m.propagation.WithLabelValues(cluster).Observe(d.Seconds())
}
