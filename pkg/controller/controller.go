// Package controller runs the reconcile library continuously: informers on
// every cluster involved feed a rate-limited work queue keyed by consumer,
// namespace and service; each key is synced through the same pure library
// and the same executor as `kubectl mcs import`, so the watch mode and the
// on-demand mode can never disagree.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"k8s.io/client-go/util/workqueue"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Options configures Run.
type Options struct {
	// Consumers are kept in step with every cluster of Sources but
	// themselves; a cluster may be in both (the whole-clusterset mode).
	Consumers []*clusterset.Cluster
	Sources   []*clusterset.Cluster
	// Namespace limits the sync to one namespace ("" = all); Services to
	// some service names (empty = all).
	Namespace string
	Services  []string
	// StaleTTL is how long an unreachable source's endpoints are kept
	// before they are removed (the KEP recommends keeping them a while).
	StaleTTL time.Duration
	// ProbeInterval is how often sources are checked for reachability.
	ProbeInterval time.Duration
	// Log receives one line per decision and per applied change.
	Log io.Writer
	// LeaderElection, if set, makes only the holder of a Lease in the
	// first consumer write.
	LeaderElection *LeaderElection
	// HealthAddr, if set, serves /healthz and /readyz there.
	HealthAddr string
	// Workers is the number of keys synced at once.
	Workers int
	// SkipMissingNamespaces: a consumer without the export's namespace is
	// left alone (whole-clusterset mode: import "where the namespace
	// exists"), instead of reporting the missing namespace.
	SkipMissingNamespaces bool
	Now                   func() time.Time
}

// LeaderElection names the Lease that decides which replica writes.
type LeaderElection struct {
	Namespace string
	Name      string
	Identity  string
}

// clusterWatch is the informer caches of one cluster.
type clusterWatch struct {
	cluster   *clusterset.Cluster
	exports   cache.SharedIndexInformer
	imports   cache.SharedIndexInformer
	services  cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	ownSlices cache.SharedIndexInformer
	nsInf     cache.SharedIndexInformer

	mu                sync.Mutex
	unreachableSince  time.Time
	expired           bool
	consumer, source  bool
	factoriesStarters []func(<-chan struct{})
}

type key struct {
	consumer  string // cluster id
	namespace string
	service   string
}

// Controller keeps consumers in step with their sources.
type Controller struct {
	opts     Options
	watches  map[string]*clusterWatch // by cluster id
	queue    workqueue.TypedRateLimitingInterface[key]
	logMu    sync.Mutex
	synced   atomic.Bool
	leading  atomic.Bool
	syncs    atomic.Int64
	executor map[string]*apply.Executor
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
		opts:     opts,
		watches:  map[string]*clusterWatch{},
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[key]()),
		executor: map[string]*apply.Executor{},
	}
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
	for _, con := range opts.Consumers {
		sources := map[string]*clusterset.Cluster{}
		for _, s := range opts.Sources {
			if s.ID != con.ID {
				sources[s.ID] = s
			}
		}
		c.executor[con.ID] = &apply.Executor{Consumer: con, Sources: sources}
	}
	return c, nil
}

func (c *Controller) buildInformers(w *clusterWatch) error {
	cl := w.cluster
	resync := 10 * time.Minute
	kube := informers.NewSharedInformerFactoryWithOptions(cl.Kube, resync, informers.WithNamespace(c.opts.Namespace))
	dyn := dynamicinformer.NewFilteredDynamicSharedInformerFactory(cl.Dynamic, resync, c.opts.Namespace, nil)
	w.services = kube.Core().V1().Services().Informer()
	w.factoriesStarters = append(w.factoriesStarters, kube.Start, dyn.Start)
	if w.source {
		gvr, err := cl.MCSResource(clusterset.ServiceExports)
		if err != nil {
			return err
		}
		w.exports = dyn.ForResource(gvr).Informer()
		sliceFactory := informers.NewSharedInformerFactoryWithOptions(cl.Kube, resync, informers.WithNamespace(c.opts.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = snapshot.SourceSliceSelector }))
		w.slices = sliceFactory.Discovery().V1().EndpointSlices().Informer()
		w.factoriesStarters = append(w.factoriesStarters, sliceFactory.Start)
		c.handle(w.exports, func(obj any) []key { return c.sourceKeys(w, objectMeta(obj)) })
		c.handle(w.services, func(obj any) []key { return c.sourceKeys(w, objectMeta(obj)) })
		c.handle(w.slices, func(obj any) []key {
			m := objectMeta(obj)
			m.Name = m.Labels[discoveryv1.LabelServiceName]
			return c.sourceKeys(w, m)
		})
	}
	if w.consumer {
		gvr, err := cl.MCSResource(clusterset.ServiceImports)
		if err != nil {
			return err
		}
		w.imports = dyn.ForResource(gvr).Informer()
		ownFactory := informers.NewSharedInformerFactoryWithOptions(cl.Kube, resync, informers.WithNamespace(c.opts.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = snapshot.ConsumerSliceSelector }))
		w.ownSlices = ownFactory.Discovery().V1().EndpointSlices().Informer()
		nsFactory := informers.NewSharedInformerFactory(cl.Kube, resync)
		w.nsInf = nsFactory.Core().V1().Namespaces().Informer()
		w.factoriesStarters = append(w.factoriesStarters, ownFactory.Start, nsFactory.Start)
		consumerKey := func(m metav1.ObjectMeta) []key {
			if !c.inScope(m.Name) {
				return nil
			}
			return []key{{consumer: cl.ID, namespace: m.Namespace, service: m.Name}}
		}
		c.handle(w.imports, func(obj any) []key { return consumerKey(objectMeta(obj)) })
		c.handle(w.ownSlices, func(obj any) []key {
			m := objectMeta(obj)
			m.Name = m.Labels[mcsv1beta1.LabelServiceName]
			return consumerKey(m)
		})
		c.handle(w.services, func(obj any) []key {
			m := objectMeta(obj)
			if svc := m.Labels[mcsv1beta1.LabelServiceName]; svc != "" {
				m.Name = svc
				return consumerKey(m)
			}
			return nil
		})
		c.handle(w.nsInf, func(any) []key { return c.allKeys(cl.ID) })
	}
	return nil
}

func (c *Controller) inScope(service string) bool {
	return service != "" && (len(c.opts.Services) == 0 || slices.Contains(c.opts.Services, service))
}

// sourceKeys: a change in a source concerns that service in every other
// consumer.
func (c *Controller) sourceKeys(w *clusterWatch, m metav1.ObjectMeta) []key {
	if !c.inScope(m.Name) {
		return nil
	}
	var keys []key
	for _, con := range c.opts.Consumers {
		if con.ID != w.cluster.ID {
			keys = append(keys, key{consumer: con.ID, namespace: m.Namespace, service: m.Name})
		}
	}
	return keys
}

func (c *Controller) handle(inf cache.SharedIndexInformer, keys func(any) []key) {
	enqueue := func(obj any) {
		for _, k := range keys(obj) {
			c.queue.Add(k)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
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
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels()}
	case metav1.Object:
		return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels()}
	}
	return metav1.ObjectMeta{}
}

// allKeys lists every service any source exports or the consumer imports.
func (c *Controller) allKeys(consumerID string) []key {
	seen := map[key]bool{}
	var out []key
	add := func(ns, name string) {
		k := key{consumer: consumerID, namespace: ns, service: name}
		if c.inScope(name) && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for id, w := range c.watches {
		if w.source && id != consumerID {
			for _, obj := range w.exports.GetStore().List() {
				m := objectMeta(obj)
				add(m.Namespace, m.Name)
			}
		}
	}
	if w := c.watches[consumerID]; w != nil && w.imports != nil {
		for _, obj := range w.imports.GetStore().List() {
			m := objectMeta(obj)
			add(m.Namespace, m.Name)
		}
	}
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
	if c.opts.HealthAddr != "" {
		srv := c.healthServer()
		go func() { _ = srv.ListenAndServe() }()
		defer srv.Close()
	}
	hasSynced := c.startInformers(ctx)
	c.logf("watching %d cluster(s); waiting for caches", len(c.watches))
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return ctx.Err()
	}
	c.synced.Store(true)
	c.logf("caches synced")
	go c.probeSources(ctx)
	if c.opts.LeaderElection == nil {
		c.runWorkers(ctx)
		return nil
	}
	return c.runLeading(ctx)
}

// startInformers starts every cluster's informers and returns their
// synced checks.
func (c *Controller) startInformers(ctx context.Context) []cache.InformerSynced {
	var hasSynced []cache.InformerSynced
	for _, w := range c.watches {
		for _, start := range w.factoriesStarters {
			start(ctx.Done())
		}
		for _, inf := range []cache.SharedIndexInformer{w.exports, w.imports, w.services, w.slices, w.ownSlices, w.nsInf} {
			if inf != nil {
				hasSynced = append(hasSynced, inf.HasSynced)
			}
		}
	}
	return hasSynced
}

// RunOnce starts the informers, syncs every known key once, and stops: the
// on-demand form of the whole-clusterset sync. It returns the first error
// any key met.
func (c *Controller) RunOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hasSynced := c.startInformers(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return ctx.Err()
	}
	var errs []error
	for _, con := range c.opts.Consumers {
		keys := c.allKeys(con.ID)
		slices.SortFunc(keys, func(a, b key) int {
			return strings.Compare(a.namespace+"/"+a.service, b.namespace+"/"+b.service)
		})
		for _, k := range keys {
			if err := c.sync(ctx, k); err != nil {
				errs = append(errs, fmt.Errorf("%s %s/%s: %w", k.consumer, k.namespace, k.service, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) runWorkers(ctx context.Context) {
	c.leading.Store(true)
	for _, con := range c.opts.Consumers {
		for _, k := range c.allKeys(con.ID) {
			c.queue.Add(k)
		}
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
		c.logf("%s %s/%s: %v (retrying)", k.consumer, k.namespace, k.service, err)
		c.queue.AddRateLimited(k)
		return true
	}
	c.queue.Forget(k)
	return true
}

// sync reconciles one service into one consumer from the caches.
func (c *Controller) sync(ctx context.Context, k key) error {
	c.syncs.Add(1)
	scope := snapshot.Scope{Namespace: k.namespace, Services: []string{k.service}}
	cw := c.watches[k.consumer]
	snap := reconcile.Snapshot{Now: metav1.NewTime(c.opts.Now().UTC().Truncate(time.Second))}
	for id, w := range c.watches {
		if !w.source || id == k.consumer {
			continue
		}
		snap.Sources = append(snap.Sources, c.sourceSnapshot(w, scope))
	}
	slices.SortFunc(snap.Sources, func(a, b reconcile.Source) int { return strings.Compare(a.ClusterID, b.ClusterID) })
	var err error
	if snap.Consumer, err = consumerSnapshot(cw, scope); err != nil {
		return err
	}
	if c.opts.SkipMissingNamespaces && !slices.Contains(snap.Consumer.Namespaces, k.namespace) {
		return nil
	}
	plan := reconcile.Reconcile(snap)
	if len(plan.Problems) > 0 {
		for _, p := range plan.Problems {
			c.logf("%s %s/%s: not synced: %s (fix: %s)", k.consumer, k.namespace, k.service, p.Message, p.Fix)
		}
		return nil
	}
	results, _, err := c.executor[k.consumer].Execute(ctx, plan)
	for _, r := range results {
		if r.Action != apply.Unchanged {
			c.logf("%s: %s", r.Cluster, r)
		}
	}
	return err
}

// sourceSnapshot is a source as the caches hold it, or marked unreachable
// (its endpoints kept), or, past the TTL, empty (its endpoints removed).
func (c *Controller) sourceSnapshot(w *clusterWatch, scope snapshot.Scope) reconcile.Source {
	w.mu.Lock()
	since, expired := w.unreachableSince, w.expired
	w.mu.Unlock()
	switch {
	case expired:
		return reconcile.Source{ClusterID: w.cluster.ID}
	case !since.IsZero():
		return reconcile.Source{ClusterID: w.cluster.ID, Unreachable: true}
	}
	return snapshot.BuildSource(w.cluster.ID, typedList[mcsv1beta1.ServiceExport](w.exports, scope.Namespace),
		typedList[corev1.Service](w.services, scope.Namespace), typedList[discoveryv1.EndpointSlice](w.slices, scope.Namespace), scope)
}

func consumerSnapshot(w *clusterWatch, scope snapshot.Scope) (reconcile.Consumer, error) {
	var namespaces []string
	for _, obj := range w.nsInf.GetStore().List() {
		namespaces = append(namespaces, obj.(*corev1.Namespace).Name)
	}
	slices.Sort(namespaces)
	return snapshot.BuildConsumer(w.cluster.ID, namespaces, typedList[mcsv1beta1.ServiceImport](w.imports, scope.Namespace),
		typedList[corev1.Service](w.services, scope.Namespace), typedList[discoveryv1.EndpointSlice](w.ownSlices, scope.Namespace), scope), nil
}

// typedList copies the objects of one namespace from an informer into
// typed values (dynamic ones converted from unstructured). A key's sync
// needs one namespace, so the namespace index keeps it from walking, and
// converting, every cached object of the cluster.
func typedList[T any](inf cache.SharedIndexInformer, namespace string) []T {
	objs, err := inf.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		// Informers built by client-go factories always have the index.
		objs = inf.GetStore().List()
	}
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		switch o := obj.(type) {
		case *unstructured.Unstructured:
			var t T
			if err := apply.FromUnstructured(o, &t); err == nil {
				out = append(out, t)
			}
		case *T:
			out = append(out, *o)
		}
	}
	return out
}

// probeSources checks every source's API server; an unreachable one is
// marked (its endpoints are kept) and, after StaleTTL, expired (removed).
func (c *Controller) probeSources(ctx context.Context) {
	ticker := time.NewTicker(c.opts.ProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for id, w := range c.watches {
			if !w.source {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeInterval)
			err := w.cluster.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(pctx).Error()
			cancel()
			now := c.opts.Now()
			changed := false
			w.mu.Lock()
			switch {
			case err != nil && w.unreachableSince.IsZero():
				w.unreachableSince, changed = now, true
				c.logf("%s: unreachable (%v); keeping its endpoints for up to %s", id, errors.Unwrap(err), c.opts.StaleTTL)
			case err != nil && !w.expired && c.opts.StaleTTL > 0 && now.Sub(w.unreachableSince) >= c.opts.StaleTTL:
				w.expired, changed = true, true
				c.logf("%s: unreachable since %s, past the %s TTL: removing its endpoints", id, w.unreachableSince.UTC().Format(time.RFC3339), c.opts.StaleTTL)
			case err == nil && !w.unreachableSince.IsZero():
				c.logf("%s: reachable again after %s", id, now.Sub(w.unreachableSince).Round(time.Second))
				w.unreachableSince, w.expired, changed = time.Time{}, false, true
			}
			w.mu.Unlock()
			if changed && c.leading.Load() {
				for _, con := range c.opts.Consumers {
					if con.ID != id {
						for _, k := range c.allKeys(con.ID) {
							c.queue.Add(k)
						}
					}
				}
			}
		}
	}
}

func (c *Controller) healthServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.synced.Load() {
			http.Error(w, "caches not synced\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return &http.Server{Addr: c.opts.HealthAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}
