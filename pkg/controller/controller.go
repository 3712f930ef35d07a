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
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
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
	// StaleTTL is how long an unreachable source's endpoints are kept
	// before they are removed (the KEP recommends keeping them a while).
	StaleTTL time.Duration
	// ProbeInterval is how often clusters are checked for reachability.
	ProbeInterval time.Duration
	// Log receives one line per decision and per applied change.
	Log io.Writer
	// LeaderElection, if set, makes only the holder of a Lease in the
	// first consumer write.
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

// LeaderElection names the Lease that decides which replica writes.
type LeaderElection struct {
	Namespace string
	Name      string
	Identity  string
}

// clusterWatch is the informer caches of one cluster, and what the probe
// last found about it.
type clusterWatch struct {
	cluster   *clusterset.Cluster
	exports   cache.SharedIndexInformer
	imports   cache.SharedIndexInformer
	services  cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	ownSlices cache.SharedIndexInformer
	nsInf     cache.SharedIndexInformer

	mu               sync.Mutex
	unreachableSince time.Time
	unreachableErr   error
	expired          bool
	consumer, source bool
	starters         []func(<-chan struct{})
	// recorder writes Events about this cluster's objects into it (set
	// while Run runs).
	recorder record.EventRecorder
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
		Reader: cacheReader{c}, MissingNamespaces: engine.SkipMissingNamespaces, Now: opts.Now,
		Written: c.written.record, MaxWritesInFlight: opts.MaxWritesInFlight,
	}
	return c, nil
}

func (c *Controller) buildInformers(w *clusterWatch) error {
	cl := w.cluster
	resync := 10 * time.Minute
	kube := informers.NewSharedInformerFactoryWithOptions(cl.Kube, resync, informers.WithNamespace(c.opts.Namespace))
	dyn := dynamicinformer.NewFilteredDynamicSharedInformerFactory(cl.Dynamic, resync, c.opts.Namespace, nil)
	w.services = kube.Core().V1().Services().Informer()
	if err := addServiceIndex(w.services); err != nil {
		return err
	}
	if err := setTransform(w.services, trimManagedFields); err != nil {
		return err
	}
	w.starters = append(w.starters, kube.Start, dyn.Start)
	c.handle(w.services, cl.ID, kindService, func(obj any) []key {
		m := objectMeta(obj)
		var keys []key
		if w.source {
			keys = append(keys, c.keyOf(m.Namespace, m.Name)...)
		}
		if svc := m.Labels[mcsv1beta1.LabelServiceName]; w.consumer && svc != "" {
			keys = append(keys, c.keyOf(m.Namespace, svc)...)
		}
		return keys
	})
	if w.source {
		gvr, err := cl.MCSResource(clusterset.ServiceExports)
		if err != nil {
			return err
		}
		w.exports = dyn.ForResource(gvr).Informer()
		if err := addServiceIndex(w.exports); err != nil {
			return err
		}
		if err := setTransform(w.exports, trimManagedFields); err != nil {
			return err
		}
		sliceFactory := informers.NewSharedInformerFactoryWithOptions(cl.Kube, resync, informers.WithNamespace(c.opts.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = snapshot.SourceSliceSelector }))
		w.slices = sliceFactory.Discovery().V1().EndpointSlices().Informer()
		if err := addServiceIndex(w.slices); err != nil {
			return err
		}
		if err := setTransform(w.slices, trimSourceSlice); err != nil {
			return err
		}
		w.starters = append(w.starters, sliceFactory.Start)
		c.handle(w.exports, cl.ID, kindServiceExport, func(obj any) []key { m := objectMeta(obj); return c.keyOf(m.Namespace, m.Name) })
		c.handle(w.slices, cl.ID, "", func(obj any) []key {
			m := objectMeta(obj)
			keys := c.keyOf(m.Namespace, m.Labels[discoveryv1.LabelServiceName])
			c.markSeen(keys)
			return keys
		})
	}
	if w.consumer {
		gvr, err := cl.MCSResource(clusterset.ServiceImports)
		if err != nil {
			return err
		}
		w.imports = dyn.ForResource(gvr).Informer()
		if err := addServiceIndex(w.imports); err != nil {
			return err
		}
		if err := setTransform(w.imports, trimManagedFields); err != nil {
			return err
		}
		ownFactory := informers.NewSharedInformerFactoryWithOptions(cl.Kube, resync, informers.WithNamespace(c.opts.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = snapshot.ConsumerSliceSelector }))
		w.ownSlices = ownFactory.Discovery().V1().EndpointSlices().Informer()
		if err := addServiceIndex(w.ownSlices); err != nil {
			return err
		}
		if err := setTransform(w.ownSlices, trimManagedFields); err != nil {
			return err
		}
		nsFactory := informers.NewSharedInformerFactory(cl.Kube, resync)
		w.nsInf = nsFactory.Core().V1().Namespaces().Informer()
		if err := setTransform(w.nsInf, trimManagedFields); err != nil {
			return err
		}
		w.starters = append(w.starters, ownFactory.Start, nsFactory.Start)
		c.handle(w.imports, cl.ID, kindServiceImport, func(obj any) []key { m := objectMeta(obj); return c.keyOf(m.Namespace, m.Name) })
		c.handle(w.ownSlices, cl.ID, kindEndpointSlice, func(obj any) []key {
			m := objectMeta(obj)
			return c.keyOf(m.Namespace, m.Labels[mcsv1beta1.LabelServiceName])
		})
		c.handle(w.nsInf, cl.ID, "", func(obj any) []key {
			name := objectMeta(obj).Name
			return slices.DeleteFunc(c.allKeys(), func(k key) bool { return k.namespace != name })
		})
	}
	return nil
}

// cachedVersion is the resource version of an object in the informer that
// holds the kind in that cluster, "" if none.
func (c *Controller) cachedVersion(cluster, kind, namespace, name string) string {
	w := c.watches[cluster]
	if w == nil {
		return ""
	}
	inf := map[string]cache.SharedIndexInformer{kindServiceExport: w.exports, kindServiceImport: w.imports, kindService: w.services, kindEndpointSlice: w.ownSlices}[kind]
	if inf == nil {
		return ""
	}
	obj, ok, _ := inf.GetIndexer().GetByKey(namespace + "/" + name)
	if !ok {
		return ""
	}
	return resourceVersionOf(obj)
}

// keyOf is the key of a service in scope, or none.
func (c *Controller) keyOf(namespace, service string) []key {
	if service == "" || len(c.opts.Services) > 0 && !slices.Contains(c.opts.Services, service) {
		return nil
	}
	return []key{{namespace: namespace, service: service}}
}

// handle enqueues the keys of every event of inf; kind (if not "") names
// the objects of this cluster read through c.written, dropped from it as
// the informer delivers them. The echo of this process's own write (the
// version it wrote) enqueues nothing: the sync that wrote it knew it.
func (c *Controller) handle(inf cache.SharedIndexInformer, cluster, kind string, keys func(any) []key) {
	enqueue := func(obj any) {
		for _, k := range keys(obj) {
			c.queue.Add(k)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if !c.written.seen(cluster, kind, obj, false) {
				enqueue(obj)
			}
		},
		UpdateFunc: func(_, obj any) {
			if !c.written.seen(cluster, kind, obj, false) {
				enqueue(obj)
			}
		},
		DeleteFunc: func(obj any) {
			c.written.seen(cluster, kind, obj, true)
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			enqueue(obj)
		},
	})
}

func objectMeta(obj any) metav1.ObjectMeta {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if o, ok := obj.(metav1.Object); ok {
		return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels()}
	}
	return metav1.ObjectMeta{}
}

// allKeys lists every service any source exports or any consumer imports.
func (c *Controller) allKeys() []key {
	seen := map[key]bool{}
	var out []key
	for _, w := range c.watches {
		for _, inf := range []cache.SharedIndexInformer{w.exports, w.imports} {
			if inf == nil {
				continue
			}
			for _, obj := range inf.GetStore().List() {
				m := objectMeta(obj)
				for _, k := range c.keyOf(m.Namespace, m.Name) {
					if !seen[k] {
						seen[k] = true
						out = append(out, k)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b key) int {
		return strings.Compare(a.namespace+"/"+a.service, b.namespace+"/"+b.service)
	})
	return out
}

func (c *Controller) logf(format string, args ...any) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	fmt.Fprintf(c.opts.Log, "%s "+format+"\n", append([]any{c.opts.Now().UTC().Format(time.RFC3339)}, args...)...)
}

// Run starts the informers, waits for their caches, and syncs until ctx
// ends. With leader election, keys are only synced while leading.
func (c *Controller) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer c.queue.ShutDown()
	stopServing, err := c.serve()
	if err != nil {
		return err
	}
	defer stopServing()
	defer c.startEvents()()
	var hasSynced []cache.InformerSynced
	for _, w := range c.watches {
		for _, start := range w.starters {
			start(ctx.Done())
		}
		for _, inf := range []cache.SharedIndexInformer{w.exports, w.imports, w.services, w.slices, w.ownSlices, w.nsInf} {
			if inf != nil {
				hasSynced = append(hasSynced, inf.HasSynced)
			}
		}
	}
	c.logf("watching %d cluster(s); waiting for caches", len(c.watches))
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return ctx.Err()
	}
	c.synced.Store(true)
	c.logf("caches synced")
	go c.probe(ctx)
	if c.opts.LeaderElection == nil {
		c.runWorkers(ctx)
		return nil
	}
	return c.runLeading(ctx)
}

func (c *Controller) runWorkers(ctx context.Context) {
	// What this process wrote while it led before may have changed since.
	c.conditionsMu.Lock()
	clear(c.conditions)
	c.conditionsMu.Unlock()
	c.leading.Store(true)
	for _, k := range c.allKeys() {
		c.queue.Add(k)
	}
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.leading.Store(false)
	c.logf("stopped")
}

func (c *Controller) runLeading(ctx context.Context) error {
	le := c.opts.LeaderElection
	holder := c.opts.Consumers[0]
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name, holder.Kube.CoreV1(), holder.Kube.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return err
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.logf("leading (lease %s/%s in %s, identity %s)", le.Namespace, le.Name, holder.Context, le.Identity)
				c.runWorkers(ctx)
			},
			OnStoppedLeading: func() { c.logf("not leading") },
			OnNewLeader: func(id string) {
				if id != le.Identity {
					c.logf("following leader %s", id)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	elector.Run(ctx)
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(k)
	if err := c.sync(ctx, k); err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.logf("%s/%s: %v (retrying)", k.namespace, k.service, err)
		c.syncFailedEvent(k, err)
		c.queue.AddRateLimited(k)
		return true
	}
	c.syncSucceeded(k)
	c.queue.Forget(k)
	return true
}

// sync runs the engine for one service over every consumer, from the
// caches. A cluster the probe finds unreachable is the probe's to report;
// its endpoints are kept, and the sync of the others goes on.
func (c *Controller) sync(ctx context.Context, k key) error {
	c.syncs.Add(1)
	seen, changed := c.takeSeen(k)
	before := c.cachedExports(k)
	start := time.Now()
	report, err := c.engine.Sync(ctx, snapshot.Scope{Namespace: k.namespace, Services: []string{k.service}})
	var unreachable *engine.UnreachableError
	result := metrics.ResultSuccess
	switch {
	case errors.As(err, &unreachable):
		result, err = metrics.ResultPartial, nil
	case err != nil:
		result = metrics.ResultError
	}
	c.metrics.ObserveSync(time.Since(start), result)
	for _, r := range report.Results {
		if r.Action != apply.Unchanged {
			c.logf("%s: %s", r.Cluster, r)
		}
	}
	c.countWrites(report)
	if changed {
		c.observePropagation(report, seen)
		if err != nil {
			// The retry goes on measuring from the first sighting.
			c.restoreSeen(k, seen)
		}
	}
	c.exportConditionEvents(before, report)
	c.reportSkipped(report.Skipped)
	return err
}

// reportSkipped says once per cluster and namespace that an export's
// namespace is missing there, with the fix.
func (c *Controller) reportSkipped(skipped []engine.Skipped) {
	c.skippedMu.Lock()
	defer c.skippedMu.Unlock()
	for _, s := range skipped {
		k := [2]string{s.Cluster.ID, s.Namespace}
		if c.skipped[k] {
			continue
		}
		c.skipped[k] = true
		c.logf("%s: not importing %s/%s: namespace %s does not exist there (fix: %s)",
			s.Cluster.Context, s.Namespace, strings.Join(s.Services, ","), s.Namespace, s.Fix())
	}
}

// cacheReader reads a sync's snapshot from the informer caches, with what
// the probe knows: an unreachable cluster's lists are not used (its
// endpoints are kept), and past StaleTTL it is a source with nothing.
type cacheReader struct{ c *Controller }

func (r cacheReader) ReadSource(_ context.Context, cl *clusterset.Cluster, scope snapshot.Scope) (reconcile.Source, error) {
	w := r.c.watches[cl.ID]
	w.mu.Lock()
	unreachable, expired := w.unreachableErr, w.expired
	w.mu.Unlock()
	switch {
	case expired:
		return reconcile.Source{ClusterID: cl.ID}, nil
	case unreachable != nil:
		return reconcile.Source{ClusterID: cl.ID}, unreachable
	}
	exports, err := typedList[mcsv1beta1.ServiceExport](w.exports, scope, r.c.written.in(cl.ID, kindServiceExport, scope.Namespace))
	if err != nil {
		return reconcile.Source{ClusterID: cl.ID}, cl.Errorf("ServiceExport in the cache: %w", err)
	}
	services, err := typedList[corev1.Service](w.services, scope, r.c.written.in(cl.ID, kindService, scope.Namespace))
	if err != nil {
		return reconcile.Source{ClusterID: cl.ID}, cl.Errorf("Service in the cache: %w", err)
	}
	endpoints, _ := typedList[discoveryv1.EndpointSlice](w.slices, scope, nil)
	return snapshot.BuildSource(cl.ID, exports, services, endpoints, scope), nil
}

func (r cacheReader) ReadConsumer(_ context.Context, cl *clusterset.Cluster, scope snapshot.Scope) (reconcile.Consumer, error) {
	w := r.c.watches[cl.ID]
	w.mu.Lock()
	unreachable := w.unreachableErr
	w.mu.Unlock()
	if unreachable != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, unreachable
	}
	var namespaces []string
	for _, obj := range w.nsInf.GetStore().List() {
		namespaces = append(namespaces, objectMeta(obj).Name)
	}
	slices.Sort(namespaces)
	imports, err := typedList[mcsv1beta1.ServiceImport](w.imports, scope, r.c.written.in(cl.ID, kindServiceImport, scope.Namespace))
	if err != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, cl.Errorf("ServiceImport in the cache: %w", err)
	}
	services, err := typedList[corev1.Service](w.services, scope, r.c.written.in(cl.ID, kindService, scope.Namespace))
	if err != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, cl.Errorf("Service in the cache: %w", err)
	}
	endpoints, err := typedList[discoveryv1.EndpointSlice](w.ownSlices, scope, r.c.written.in(cl.ID, kindEndpointSlice, scope.Namespace))
	if err != nil {
		return reconcile.Consumer{ClusterID: cl.ID}, cl.Errorf("EndpointSlice in the cache: %w", err)
	}
	return snapshot.BuildConsumer(cl.ID, namespaces, imports, services, endpoints, scope), nil
}

// typedList copies the objects of the scope from an informer into typed
// values (dynamic ones, the MCS objects, converted from unstructured). A
// key's sync needs one service of one namespace, so the service index
// (index.go) keeps it from walking, copying and filtering every cached
// object of the namespace or the cluster; MCS objects are named after their service, so only those of
// the scope's services are converted. An object that does not convert is
// an error that stops the sync of its service, never silently left out: a
// ServiceExport dropped that way would get its imports deleted.
//
// written are the objects this process wrote that the informer has not
// delivered yet (by namespace and name): each replaces the cached one if
// newer, or is added if the cache lacks it.
func typedList[T any](inf cache.SharedIndexInformer, scope snapshot.Scope, written map[[2]string]*unstructured.Unstructured) ([]T, error) {
	objs := scopeObjects(inf, scope)
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		if len(written) > 0 {
			m := objectMeta(obj)
			if wo, ok := written[[2]string{m.Namespace, m.Name}]; ok {
				delete(written, [2]string{m.Namespace, m.Name})
				wrv, _ := resourceVersion(wo.GetResourceVersion())
				if crv, ok := resourceVersion(resourceVersionOf(obj)); ok && wrv > crv {
					t, err := fromWritten[T](wo)
					if err != nil {
						return nil, err
					}
					out = append(out, t)
					continue
				}
			}
		}
		switch o := obj.(type) {
		case *unstructured.Unstructured:
			if !scope.Wants(o.GetName()) {
				continue
			}
			var t T
			if err := apply.FromUnstructured(o, &t); err != nil {
				return nil, fmt.Errorf("decoding %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
			out = append(out, t)
		case *T:
			out = append(out, *o)
		}
	}
	// Written, not in the cache yet (created): the snapshot's builders keep
	// only what the scope covers.
	for _, wo := range written {
		t, err := fromWritten[T](wo)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func fromWritten[T any](o *unstructured.Unstructured) (T, error) {
	var t T
	if err := apply.FromUnstructured(o, &t); err != nil {
		return t, fmt.Errorf("decoding %s/%s as written: %w", o.GetNamespace(), o.GetName(), err)
	}
	return t, nil
}

// probe checks every cluster's API server; an unreachable one is marked
// (its endpoints are kept, it is not written to) and, after StaleTTL,
// expired (its endpoints are removed).
func (c *Controller) probe(ctx context.Context) {
	ticker := time.NewTicker(c.opts.ProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for id, w := range c.watches {
			pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeInterval)
			err := w.cluster.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(pctx).Error()
			cancel()
			if ctx.Err() != nil {
				return
			}
			now := c.opts.Now()
			change, since := w.observe(err, now, c.opts.StaleTTL)
			switch change {
			case sourceUnreachable:
				c.logf("%s: unreachable (%v); keeping its endpoints for up to %s", id, errors.Unwrap(err), c.opts.StaleTTL)
			case sourceExpired:
				c.logf("%s: unreachable since %s, past the %s TTL: removing its endpoints", id, since.UTC().Format(time.RFC3339), c.opts.StaleTTL)
			case sourceReachable:
				c.logf("%s: reachable again after %s", id, now.Sub(since).Round(time.Second))
			}
			if change != sourceUnchanged && c.leading.Load() {
				// Before the syncs: the endpoints the events count are
				// still there.
				c.sourceEvents(w, change, now.Sub(since), err)
				for _, k := range c.allKeys() {
					c.queue.Add(k)
				}
			}
		}
	}
}

// observe records what a probe found at now and says what changed, with
// the time the cluster became unreachable (before this probe): a cluster
// that stops answering is unreachable (its endpoints kept, not written
// to); a source unreachable for ttl (> 0) is expired (its endpoints
// removed); one that answers again is reachable. A consumer-only cluster
// never expires: it has no endpoints of its own to remove.
func (w *clusterWatch) observe(err error, now time.Time, ttl time.Duration) (sourceChange, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	since := w.unreachableSince
	switch {
	case err != nil && w.unreachableSince.IsZero():
		w.unreachableSince, w.unreachableErr = now, w.cluster.Wrap(err)
		if !clusterset.Unreachable(w.unreachableErr) {
			w.unreachableErr = w.cluster.Errorf("not ready: %w", context.DeadlineExceeded)
		}
		return sourceUnreachable, since
	case err != nil && w.source && !w.expired && ttl > 0 && now.Sub(w.unreachableSince) >= ttl:
		w.expired = true
		return sourceExpired, since
	case err == nil && !w.unreachableSince.IsZero():
		w.unreachableSince, w.unreachableErr, w.expired = time.Time{}, nil, false
		return sourceReachable, since
	}
	return sourceUnchanged, since
}

// serve listens on --health-addr (/healthz, /readyz) and --metrics-addr
// (/metrics), one listener when both name the same address, and returns
// what stops them. An address that cannot be listened on is an error
// before anything is watched, rather than a probe failing later.
func (c *Controller) serve() (stop func(), err error) {
	muxes := map[string]*http.ServeMux{}
	var addrs []string
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
			addrs = append(addrs, addr)
		}
		return muxes[addr]
	}
	paths := map[string][]string{}
	if a := c.opts.HealthAddr; a != "" {
		mux(a).HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux(a).HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !c.synced.Load() {
				http.Error(w, "caches not synced\n", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok\n")
		})
		paths[a] = append(paths[a], "/healthz", "/readyz")
	}
	if a := c.opts.MetricsAddr; a != "" {
		mux(a).Handle("/metrics", c.metrics.Handler())
		paths[a] = append(paths[a], "/metrics")
	}
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("serving %s: %w", strings.Join(paths[addr], ", "), err)
		}
		srv := &http.Server{Handler: muxes[addr], ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(l) }()
		c.logf("serving %s on %s", strings.Join(paths[addr], ", "), l.Addr())
	}
	return stop, nil
}
