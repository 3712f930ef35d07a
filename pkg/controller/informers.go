package controller

import (
	"slices"
	"strings"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

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
	// watchErr is the last connection fault of a watch since the last
	// probe; watchFault says one was logged and has not ended
	// (watchfault.go).
	watchErr         error
	watchFault       bool
	consumer, source bool
	starters         []func(<-chan struct{})
	// recorder writes Events about this cluster's objects into it (set
	// while Run runs).
	recorder record.EventRecorder
}

func (c *Controller) buildInformers(w *clusterWatch) error {
	cl := w.cluster
	resync := 10 * time.Minute
	kubeClient, dynClient, err := w.watchClients()
	if err != nil {
		return err
	}
	kube := informers.NewSharedInformerFactoryWithOptions(kubeClient, resync, informers.WithNamespace(c.opts.Namespace))
	dyn := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dynClient, resync, c.opts.Namespace, nil)
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
		sliceFactory := informers.NewSharedInformerFactoryWithOptions(kubeClient, resync, informers.WithNamespace(c.opts.Namespace),
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
		ownFactory := informers.NewSharedInformerFactoryWithOptions(kubeClient, resync, informers.WithNamespace(c.opts.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = snapshot.ConsumerSliceSelector }))
		w.ownSlices = ownFactory.Discovery().V1().EndpointSlices().Informer()
		if err := addServiceIndex(w.ownSlices); err != nil {
			return err
		}
		if err := setTransform(w.ownSlices, trimManagedFields); err != nil {
			return err
		}
		nsFactory := informers.NewSharedInformerFactory(kubeClient, resync)
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
	return c.setWatchErrorHandlers(w)
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
