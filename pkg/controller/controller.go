// Package controller runs the sync engine continuously: informers on every
// cluster involved feed a rate-limited work queue keyed by namespace and
// service; each key is one engine.Sync of that service over every consumer,
// read from the caches, the same function `kubectl mcs import` and `sync`
// run once, so the watch mode and the on-demand mode can never disagree.
// It tells what it does three ways: a log line per decision, Kubernetes
// Events on the objects a change concerns (events.go), and Prometheus
// metrics (observe.go, package metrics).
package controller

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics"
)

// Options configures Run.
type Options struct {
	// Consumers are kept in step with every cluster of Sources; a cluster
	// may be in both (the whole-clusterset mode, where exporters import
	// too).
	Consumers []*clusterset.Cluster
	Sources   []*clusterset.Cluster
	// Namespace limits the sync to one namespace ("" = all); Services to
	// some service names (empty = all).
	Namespace string
	Services  []string
	// MissingNamespaces is the policy's (engine.PolicyFor): skip, fail
	// the service's sync (retried when the namespace appears), or create.
	MissingNamespaces engine.MissingNamespaces
	// StaleTTL is how long an unreachable source's endpoints are kept
	// before they are removed (the KEP recommends keeping them a while).
	StaleTTL time.Duration
	// ProbeInterval is how often clusters are checked for reachability.
	ProbeInterval time.Duration
	// Log receives one line per decision and per applied change.
	Log io.Writer
	// LeaderElection, if set, makes only the holder of its Lease write.
	LeaderElection *LeaderElection
	// HealthAddr, if set, serves /healthz and /readyz there.
	HealthAddr string
	// MetricsAddr, if set, serves the Prometheus metrics on /metrics there
	// (on the same listener as HealthAddr when both are one address).
	MetricsAddr string
	// Workers is the number of keys synced at once.
	Workers int
	// MaxWritesInFlight bounds each sync's write requests in flight to one
	// cluster (engine.Engine.MaxWritesInFlight).
	MaxWritesInFlight int
	Now               func() time.Time
}

// key is the unit of work: one service, synced into every consumer at
// once, so that its export conditions are decided once per change.
type key struct {
	namespace string
	service   string
}

// Controller keeps consumers in step with their sources.
type Controller struct {
	opts    Options
	watches map[string]*clusterWatch // by cluster id
	queue   workqueue.TypedRateLimitingInterface[key]
	engine  *engine.Engine
	logMu   sync.Mutex
	synced  atomic.Bool
	leading atomic.Bool
	syncs   atomic.Int64

	skippedMu sync.Mutex
	// skipped are the (cluster, namespace) pairs already reported as
	// missing a namespace: said once, not at every resync.
	skipped map[[2]string]bool

	metrics *metrics.Metrics
	seenMu  sync.Mutex
	// seen holds, per key, when a source EndpointSlice change was first
	// seen and not yet synced (the start of endpoint_propagation_seconds).
	seen map[key]time.Time
	// failures holds the last sync error of each key reported as an Event,
	// so a retried failure is reported once, not at every retry.
	failuresMu sync.Mutex
	failures   map[key]string
	// conditions holds the export conditions this process wrote last, by
	// export (events.go).
	conditionsMu sync.Mutex
	conditions   map[exportKey]writtenConditions
	// written are the objects written whose informers lag (written.go).
	written written
}

// New builds the informers; nothing is contacted until Run.
func New(opts Options) (*Controller, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 2 * time.Second
	}
	c := &Controller{
		opts:       opts,
		watches:    map[string]*clusterWatch{},
		skipped:    map[[2]string]bool{},
		seen:       map[key]time.Time{},
		failures:   map[key]string{},
		conditions: map[exportKey]writtenConditions{},
	}
	c.metrics = metrics.New(c.metricsState)
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
		workqueue.TypedRateLimitingQueueConfig[key]{Name: metrics.QueueName, MetricsProvider: c.metrics.QueueMetrics()})
	for _, cl := range append(slices.Clone(opts.Sources), opts.Consumers...) {
		w := c.watches[cl.ID]
		if w == nil {
			w = &clusterWatch{cluster: cl}
			c.watches[cl.ID] = w
		}
		w.source = w.source || slices.Contains(opts.Sources, cl)
		w.consumer = w.consumer || slices.Contains(opts.Consumers, cl)
	}
	for _, w := range c.watches {
		if err := c.buildInformers(w); err != nil {
			return nil, err
		}
	}
	c.written.cached = c.cachedVersion
	c.engine = &engine.Engine{
		Sources: opts.Sources, Consumers: opts.Consumers,
		Reader: cacheReader{c}, MissingNamespaces: opts.MissingNamespaces, Now: opts.Now,
		Written: c.written.record, MaxWritesInFlight: opts.MaxWritesInFlight,
	}
	return c, nil
}

func (c *Controller) logf(format string, args ...any) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	fmt.Fprintf(c.opts.Log, "%s "+format+"\n", append([]any{c.opts.Now().UTC().Format(time.RFC3339)}, args...)...)
}
