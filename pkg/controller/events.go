package controller

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// The watch mode records Kubernetes Events, each in the cluster that holds
// the object it is about, through client-go's recorder (tools/record),
// whose correlator aggregates similar events and rate-limits each object's.
// An event is only emitted for a change this process made or saw happen:
// an export condition it wrote, a probe's finding that changed, a sync that
// failed in a new way. A watch restarted with nothing changed emits none.

// ReportingController is the Events' source component and reporting
// controller.
const ReportingController = "kubectl-mcs"

// Reasons of the Events about ServiceImports and sync failures (those about
// ServiceExports carry their condition's reason: Valid, NoService,
// InvalidServiceType, NoConflicts, PortConflict, ...).
const (
	ReasonSourceUnreachable     = "SourceUnreachable"
	ReasonSourceReachable       = "SourceReachable"
	ReasonStaleEndpointsRemoved = "StaleEndpointsRemoved"
	ReasonSyncFailed            = "SyncFailed"
)

// maxEventMessage keeps a message (a sync error may list many objects)
// within what the events API takes.
const maxEventMessage = 1024

// startEvents gives every cluster its recorder, whose requests are made
// under ctx, and returns what stops them.
func (c *Controller) startEvents(ctx context.Context) (stop func()) {
	instance := ""
	if le := c.opts.LeaderElection; le != nil {
		instance = le.Identity
	} else if host, err := os.Hostname(); err == nil {
		instance = host
	}
	var broadcasters []record.EventBroadcaster
	for _, w := range c.watches {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: w.cluster.Kube.CoreV1().Events("")})
		w.mu.Lock()
		w.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: ReportingController, Host: instance})
		w.mu.Unlock()
		broadcasters = append(broadcasters, b)
	}
	return func() {
		for _, w := range c.watches {
			w.mu.Lock()
			w.recorder = nil
			w.mu.Unlock()
		}
		for _, b := range broadcasters {
			b.Shutdown()
		}
	}
}

// event records an event about ref in the cluster w, unless it is
// unreachable (the recorder would retry for two minutes in vain).
func (c *Controller) event(w *clusterWatch, ref *corev1.ObjectReference, eventType, reason, message string) {
	w.mu.Lock()
	unreachable, recorder := w.unreachableErr != nil, w.recorder
	w.mu.Unlock()
	if recorder == nil || unreachable {
		return
	}
	if len(message) > maxEventMessage {
		message = message[:maxEventMessage-3] + "..."
	}
	recorder.Event(ref, eventType, reason, message)
}

// reference is what an Event names: kind, apiVersion (the one the cluster
// serves), namespace, name and uid, so `kubectl describe` finds it.
func reference(u *unstructured.Unstructured) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind: u.GetKind(), APIVersion: u.GetAPIVersion(),
		Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(),
	}
}

// cachedExport is a ServiceExport as the cache held it before a sync.
type cachedExport struct {
	object     *unstructured.Unstructured
	conditions []metav1.Condition
}

// cachedExports reads the key's export in every source before its sync:
// after it, the cache may already show the conditions the sync wrote.
func (c *Controller) cachedExports(k key) map[string]cachedExport {
	out := map[string]cachedExport{}
	for id, w := range c.watches {
		u := cachedObject(w.exports, k)
		if u == nil {
			c.conditionsMu.Lock()
			delete(c.conditions, exportKey{id, k})
			c.conditionsMu.Unlock()
			continue
		}
		var ex mcsv1beta1.ServiceExport
		_ = apply.FromUnstructured(u, &ex)
		out[id] = cachedExport{object: u, conditions: ex.Status.Conditions}
	}
	return out
}

// exportKey names one export: its cluster id and key.
type exportKey struct {
	cluster string
	key
}

// writtenConditions are the conditions last written to an export (this
// very object: a re-created export has another uid).
type writtenConditions struct {
	uid        types.UID
	conditions []metav1.Condition
}

// exportConditionEvents records, for each export whose status this sync
// wrote, an event per Valid or Conflict condition whose status or reason
// changed (or appeared): reason and message as in the condition; Warning
// for Valid=False and Conflict=True. "Changed" is against the cache before
// the sync and against what this process wrote last: the cache can lag
// behind a write, and two syncs in quick succession then write the same
// status twice, which is one change.
func (c *Controller) exportConditionEvents(before map[string]cachedExport, report engine.Report) {
	written := map[[3]string]bool{}
	for _, r := range report.Results {
		if r.Kind == "ServiceExport" && r.Action != apply.Unchanged {
			written[[3]string{r.Cluster, r.Namespace, r.Name}] = true
		}
	}
	for _, es := range report.Plan.ExportStatuses {
		w := c.watches[es.Cluster]
		old, ok := before[es.Cluster]
		if w == nil || !ok || old.object.GetName() != es.Name || old.object.GetNamespace() != es.Namespace ||
			!written[[3]string{w.cluster.Context, es.Namespace, es.Name}] {
			continue
		}
		ek := exportKey{es.Cluster, key{es.Namespace, es.Name}}
		c.conditionsMu.Lock()
		var last []metav1.Condition
		if prev := c.conditions[ek]; prev.uid == old.object.GetUID() {
			last = prev.conditions
		}
		c.conditions[ek] = writtenConditions{uid: old.object.GetUID(), conditions: es.Conditions}
		c.conditionsMu.Unlock()
		for _, t := range []mcsv1beta1.ServiceExportConditionType{mcsv1beta1.ServiceExportConditionValid, mcsv1beta1.ServiceExportConditionConflict} {
			now := meta.FindStatusCondition(es.Conditions, string(t))
			same := func(conds []metav1.Condition) bool {
				was := meta.FindStatusCondition(conds, string(t))
				return was != nil && was.Status == now.Status && was.Reason == now.Reason
			}
			if now == nil || same(old.conditions) || same(last) {
				continue
			}
			eventType := corev1.EventTypeNormal
			if t == mcsv1beta1.ServiceExportConditionValid && now.Status == metav1.ConditionFalse ||
				t == mcsv1beta1.ServiceExportConditionConflict && now.Status == metav1.ConditionTrue {
				eventType = corev1.EventTypeWarning
			}
			c.event(w, reference(old.object), eventType, now.Reason, now.Message)
		}
	}
}

// sourceChange is what the probe found changed about a cluster.
type sourceChange int

const (
	sourceUnchanged sourceChange = iota
	sourceUnreachable
	sourceExpired
	sourceReachable
)

// sourceEvents records, on every ServiceImport of a reachable consumer
// that imports from src, that src became unreachable (its endpoints are
// kept), that it stayed so past --stale-ttl (its endpoints are removed),
// or that it is back.
func (c *Controller) sourceEvents(src *clusterWatch, change sourceChange, downFor time.Duration, probeErr error) {
	if !src.source {
		return
	}
	name := src.cluster.Context
	if src.cluster.ID != name {
		name += " (cluster id " + src.cluster.ID + ")"
	}
	for _, w := range c.watches {
		if w == src || w.imports == nil {
			continue
		}
		for _, obj := range w.imports.GetStore().List() {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok || len(c.keyOf(u.GetNamespace(), u.GetName())) == 0 {
				continue
			}
			var si mcsv1beta1.ServiceImport
			if apply.FromUnstructured(u, &si) != nil || !slices.ContainsFunc(si.Status.Clusters, func(s mcsv1beta1.ClusterStatus) bool { return s.Cluster == src.cluster.ID }) {
				continue
			}
			n := c.mirroredEndpoints(w, src.cluster.ID, u.GetNamespace(), u.GetName())
			switch change {
			case sourceUnreachable:
				c.event(w, reference(u), corev1.EventTypeWarning, ReasonSourceUnreachable,
					fmt.Sprintf("source cluster %s is unreachable (%v); its %d endpoint(s) imported here are kept for up to %s (--stale-ttl)", name, probeErr, n, c.opts.StaleTTL))
			case sourceExpired:
				c.event(w, reference(u), corev1.EventTypeWarning, ReasonStaleEndpointsRemoved,
					fmt.Sprintf("source cluster %s has been unreachable for %s, past the %s --stale-ttl: its %d endpoint(s) are removed from this import", name, downFor.Round(time.Second), c.opts.StaleTTL, n))
			case sourceReachable:
				c.event(w, reference(u), corev1.EventTypeNormal, ReasonSourceReachable,
					fmt.Sprintf("source cluster %s is reachable again after %s; its endpoints are synced again", name, downFor.Round(time.Second)))
			}
		}
	}
}

// mirroredEndpoints counts the endpoints a consumer's cache holds in the
// slices mirrored from one source for one service.
func (c *Controller) mirroredEndpoints(w *clusterWatch, sourceID, namespace, service string) int {
	n := 0
	for _, obj := range w.ownSlices.GetStore().List() {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if ok && s.Namespace == namespace && s.Labels[discoveryv1.LabelManagedBy] == reconcile.FieldManager &&
			s.Labels[mcsv1beta1.LabelServiceName] == service && s.Labels[mcsv1beta1.LabelSourceCluster] == sourceID {
			n += len(s.Endpoints)
		}
	}
	return n
}

// syncFailedEvent records a Warning about a failed sync of k on its
// exports (or, when none is left, its imports), once per distinct error:
// the retries of one failure are not news.
func (c *Controller) syncFailedEvent(k key, err error) {
	msg := err.Error()
	c.failuresMu.Lock()
	repeated := c.failures[k] == msg
	c.failures[k] = msg
	c.failuresMu.Unlock()
	if repeated {
		return
	}
	type target struct {
		w *clusterWatch
		u *unstructured.Unstructured
	}
	var exports, imports []target
	for _, w := range c.watches {
		if u := cachedObject(w.exports, k); u != nil {
			exports = append(exports, target{w, u})
		}
		if u := cachedObject(w.imports, k); u != nil {
			imports = append(imports, target{w, u})
		}
	}
	targets := exports
	if len(targets) == 0 {
		targets = imports
	}
	for _, t := range targets {
		c.event(t.w, reference(t.u), corev1.EventTypeWarning, ReasonSyncFailed, "sync of "+k.namespace+"/"+k.service+" failed (retrying): "+msg)
	}
}

// syncSucceeded forgets k's last failure: the next one is news again.
func (c *Controller) syncSucceeded(k key) {
	c.failuresMu.Lock()
	delete(c.failures, k)
	c.failuresMu.Unlock()
}

// cachedObject is k's object in a dynamic informer's cache, or nil.
func cachedObject(inf cache.SharedIndexInformer, k key) *unstructured.Unstructured {
	if inf == nil {
		return nil
	}
	obj, ok, err := inf.GetStore().GetByKey(k.namespace + "/" + k.service)
	if u, isU := obj.(*unstructured.Unstructured); ok && err == nil && isU {
		return u
	}
	return nil
}
