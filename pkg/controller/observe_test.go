package controller

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics/metricstest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// These tests build a controller around informers whose stores are filled
// by hand: what it derives from its caches (metrics, events) needs no
// cluster.

type testSet struct {
	c      *Controller
	events map[string]*record.FakeRecorder // by cluster id
}

// newTestController: contexts ctx1..ctxN with cluster ids c1..cN, each a
// source and a consumer (the sync mode).
func newTestController(t *testing.T, n int) testSet {
	t.Helper()
	c := &Controller{
		opts:    Options{Log: io.Discard, Now: time.Now, StaleTTL: time.Minute},
		watches: map[string]*clusterWatch{}, skipped: map[[2]string]bool{},
		seen: map[key]time.Time{}, failures: map[key]string{}, conditions: map[exportKey]writtenConditions{},
	}
	c.metrics = metrics.New(c.metricsState)
	ts := testSet{c: c, events: map[string]*record.FakeRecorder{}}
	for i := 1; i <= n; i++ {
		id := "c" + string(rune('0'+i))
		rec := record.NewFakeRecorder(100)
		ts.events[id] = rec
		c.watches[id] = &clusterWatch{
			cluster: &clusterset.Cluster{Context: "ctx" + string(rune('0'+i)), ID: id},
			source:  true, consumer: true, recorder: rec,
			exports: newInformer(&unstructured.Unstructured{}), imports: newInformer(&unstructured.Unstructured{}),
			ownSlices: newInformer(&discoveryv1.EndpointSlice{}),
		}
	}
	c.leading.Store(true)
	return ts
}

var mcsGV = schema.GroupVersion{Group: mcsv1beta1.GroupName, Version: "v1beta1"}

func newInformer(obj runtime.Object) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(&cache.ListWatch{}, obj, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func add(t *testing.T, inf cache.SharedIndexInformer, obj any) {
	t.Helper()
	if err := inf.GetStore().Add(obj); err != nil {
		t.Fatal(err)
	}
}

func export(t *testing.T, ns, name string, conds ...metav1.Condition) *unstructured.Unstructured {
	t.Helper()
	ex := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)}, Status: mcsv1beta1.ServiceExportStatus{Conditions: conds}}
	u, err := apply.ToUnstructured(ex, mcsGV.WithKind("ServiceExport"))
	if err != nil {
		t.Fatal(err)
	}
	u.SetUID(ex.UID)
	return u
}

func serviceImport(t *testing.T, ns, name string, clusters ...string) *unstructured.Unstructured {
	t.Helper()
	si := &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.Headless}}
	for _, c := range clusters {
		si.Status.Clusters = append(si.Status.Clusters, mcsv1beta1.ClusterStatus{Cluster: c})
	}
	si.Status.Conditions = []metav1.Condition{cond("Ready", "True", "Ready")}
	u, err := apply.ToUnstructured(si, mcsGV.WithKind("ServiceImport"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mirrored(ns, service, source string, endpoints int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "amcs-" + service + "." + source, Labels: map[string]string{
		discoveryv1.LabelManagedBy: reconcile.FieldManager, mcsv1beta1.LabelServiceName: service, mcsv1beta1.LabelSourceCluster: source}}}
	for range endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"198.18.0.1"}})
	}
	return s
}

func cond(typ, status, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason, Message: typ + " is " + status + "/" + reason}
}

// drain returns the events a fake recorder holds ("Warning Reason message").
func drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func gather(t *testing.T, c *Controller, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := c.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	return metricstest.Value(metricstest.ByName(families), name, labels)
}

func TestExportConditionEvents(t *testing.T) {
	ts := newTestController(t, 2)
	c := ts.c
	k := key{"shop", "web"}
	valid := cond("Valid", "True", "Valid")
	add(t, c.watches["c1"].exports, export(t, "shop", "web", valid, cond("Conflict", "False", "NoConflicts")))
	add(t, c.watches["c2"].exports, export(t, "shop", "web", valid))
	before := c.cachedExports(k)

	conflict := cond("Conflict", "True", "PortConflict")
	report := engine.Report{
		Plan: reconcile.Plan{ExportStatuses: []reconcile.ExportStatus{
			{Cluster: "c1", Namespace: "shop", Name: "web", Conditions: []metav1.Condition{valid, cond("Ready", "True", "Exported"), conflict}},
			{Cluster: "c2", Namespace: "shop", Name: "web", Conditions: []metav1.Condition{valid, cond("Ready", "True", "Exported"), conflict}},
		}},
		Results: []apply.Result{
			{Cluster: "ctx1", Kind: "ServiceExport", Namespace: "shop", Name: "web", Action: apply.Configured, Subject: "status"},
			{Cluster: "ctx2", Kind: "ServiceExport", Namespace: "shop", Name: "web", Action: apply.Configured, Subject: "status"},
		},
	}
	c.exportConditionEvents(before, report)
	// Valid did not change: no event about it; Conflict did, in each
	// cluster, as a Warning with the condition's reason and message.
	want := []string{"Warning PortConflict Conflict is True/PortConflict"}
	for _, id := range []string{"c1", "c2"} {
		if got := drain(ts.events[id]); !slices.Equal(got, want) {
			t.Errorf("%s: events %q, want %q", id, got, want)
		}
	}

	// The same sync again before the cache shows the first write (it
	// lags): the status is written again, but nothing changed.
	c.exportConditionEvents(before, report)
	for id, r := range ts.events {
		if got := drain(r); len(got) != 0 {
			t.Errorf("%s: events %q for a status written twice", id, got)
		}
	}

	// The same plan again, as the caches now hold it: nothing changed,
	// nothing written, no event (a restarted watch emits nothing).
	add(t, c.watches["c1"].exports, export(t, "shop", "web", report.Plan.ExportStatuses[0].Conditions...))
	add(t, c.watches["c2"].exports, export(t, "shop", "web", report.Plan.ExportStatuses[1].Conditions...))
	c.exportConditionEvents(c.cachedExports(k), engine.Report{Plan: report.Plan})
	for id, r := range ts.events {
		if got := drain(r); len(got) != 0 {
			t.Errorf("%s: events %q for conditions that did not change", id, got)
		}
	}

	// A write that failed (no result) emits nothing either.
	invalid := cond("Valid", "False", "NoService")
	plan := reconcile.Plan{ExportStatuses: []reconcile.ExportStatus{{Cluster: "c1", Namespace: "shop", Name: "web", Conditions: []metav1.Condition{invalid, conflict}}}}
	c.exportConditionEvents(c.cachedExports(k), engine.Report{Plan: plan})
	if got := drain(ts.events["c1"]); len(got) != 0 {
		t.Errorf("events %q for a status that was not written", got)
	}
	c.exportConditionEvents(c.cachedExports(k), engine.Report{Plan: plan, Results: report.Results[:1]})
	if got, want := drain(ts.events["c1"]), []string{"Warning NoService Valid is False/NoService"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestSourceEvents(t *testing.T) {
	ts := newTestController(t, 3)
	c := ts.c
	for _, id := range []string{"c1", "c2"} {
		add(t, c.watches[id].imports, serviceImport(t, "shop", "web", "c1", "c3"))
		add(t, c.watches[id].ownSlices, mirrored("shop", "web", "c3", 2))
	}
	add(t, c.watches["c2"].imports, serviceImport(t, "shop", "db", "c1")) // not from c3
	down := c.watches["c3"]
	down.mu.Lock()
	down.unreachableErr, down.unreachableSince = errors.New("connection refused"), time.Now()
	down.mu.Unlock()

	c.sourceEvents(down, sourceUnreachable, 0, errors.New("connection refused"))
	for _, id := range []string{"c1", "c2"} {
		got := drain(ts.events[id])
		if len(got) != 1 || !strings.HasPrefix(got[0], "Warning SourceUnreachable source cluster ctx3 (cluster id c3) is unreachable") ||
			!strings.Contains(got[0], "its 2 endpoint(s) imported here are kept for up to 1m0s") {
			t.Errorf("%s: events %q, want one SourceUnreachable about ctx3's 2 endpoints", id, got)
		}
	}
	// The unreachable cluster's own imports get nothing (it cannot be
	// written to).
	if got := drain(ts.events["c3"]); len(got) != 0 {
		t.Errorf("the unreachable cluster got events %q", got)
	}
	c.sourceEvents(down, sourceExpired, 90*time.Second, nil)
	if got := drain(ts.events["c1"]); len(got) != 1 || !strings.HasPrefix(got[0], "Warning StaleEndpointsRemoved source cluster ctx3 (cluster id c3) has been unreachable for 1m30s") {
		t.Errorf("events %q, want one StaleEndpointsRemoved", got)
	}
	drain(ts.events["c2"])
	c.sourceEvents(down, sourceReachable, 2*time.Minute, nil)
	if got := drain(ts.events["c2"]); len(got) != 1 || !strings.HasPrefix(got[0], "Normal SourceReachable source cluster ctx3 (cluster id c3) is reachable again after 2m0s") {
		t.Errorf("events %q, want one SourceReachable", got)
	}
}

func TestSyncFailedEventOncePerError(t *testing.T) {
	ts := newTestController(t, 2)
	c := ts.c
	k := key{"shop", "web"}
	add(t, c.watches["c1"].exports, export(t, "shop", "web"))
	add(t, c.watches["c2"].imports, serviceImport(t, "shop", "web", "c1"))
	for range 3 {
		c.syncFailedEvent(k, errors.New("ctx2: forbidden"))
	}
	if got := drain(ts.events["c1"]); len(got) != 1 || got[0] != "Warning SyncFailed sync of shop/web failed (retrying): ctx2: forbidden" {
		t.Errorf("events on the export %q, want one SyncFailed", got)
	}
	if got := drain(ts.events["c2"]); len(got) != 0 {
		t.Errorf("events on the import %q while the service has an export", got)
	}
	c.syncFailedEvent(k, errors.New("ctx2: something else"))
	if got := drain(ts.events["c1"]); len(got) != 1 {
		t.Errorf("a new error: events %q, want one", got)
	}
	c.syncSucceeded(k)
	c.syncFailedEvent(k, errors.New("ctx2: something else"))
	if got := drain(ts.events["c1"]); len(got) != 1 {
		t.Errorf("the same error after a success: events %q, want one", got)
	}
	// No export left: the imports get it.
	c.watches["c1"].exports.GetStore().Delete(export(t, "shop", "web"))
	c.syncFailedEvent(k, errors.New("deleting: forbidden"))
	if got := drain(ts.events["c2"]); len(got) != 1 {
		t.Errorf("events on the import %q, want one", got)
	}
	long := strings.Repeat("x", 5000)
	c.syncFailedEvent(k, errors.New(long))
	if got := drain(ts.events["c2"]); len(got) != 1 || len(got[0]) > len("Warning SyncFailed ")+maxEventMessage {
		t.Errorf("a long error is not cut to %d bytes: %d", maxEventMessage, len(got[0]))
	}
}

func TestMetricsStateFromCaches(t *testing.T) {
	ts := newTestController(t, 3)
	c := ts.c
	c.opts.Services = []string{"web"}
	add(t, c.watches["c1"].exports, export(t, "shop", "web", cond("Conflict", "True", "PortConflict")))
	add(t, c.watches["c1"].exports, export(t, "shop", "other")) // out of scope
	add(t, c.watches["c2"].imports, serviceImport(t, "shop", "web", "c1", "c3"))
	add(t, c.watches["c2"].ownSlices, mirrored("shop", "web", "c3", 4))
	add(t, c.watches["c2"].ownSlices, mirrored("shop", "web", "c1", 1))
	c.watches["c3"].unreachableErr = errors.New("down")

	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kubectl_mcs_serviceexport_status_condition", map[string]string{"cluster": "ctx1", "namespace": "shop", "serviceexport": "web",
			"condition": "Conflict", "status": "True", "reason": "PortConflict"}, 1},
		{"kubectl_mcs_serviceimport_clusters", map[string]string{"cluster": "ctx2", "namespace": "shop", "serviceimport": "web"}, 2},
		{"kubectl_mcs_serviceimport_info", map[string]string{"cluster": "ctx2", "namespace": "shop", "serviceimport": "web", "type": "Headless"}, 1},
		{"kubectl_mcs_cluster_reachable", map[string]string{"cluster": "ctx3"}, 0},
		{"kubectl_mcs_cluster_reachable", map[string]string{"cluster": "ctx1"}, 1},
		{"kubectl_mcs_stale_endpoints", map[string]string{"cluster": "ctx2", "source_cluster": "ctx3"}, 4},
		{"kubectl_mcs_stale_endpoints", map[string]string{"cluster": "ctx2", "source_cluster": "ctx1"}, 0},
		{"kubectl_mcs_leader", map[string]string{}, 1},
	} {
		if v, ok := gather(t, c, m.name, m.labels); !ok || v != m.want {
			t.Errorf("%s%v = %v (present %t), want %v", m.name, m.labels, v, ok, m.want)
		}
	}
	if _, ok := gather(t, c, "kubectl_mcs_serviceexport_info", map[string]string{"cluster": "ctx1", "namespace": "shop", "serviceexport": "other"}); ok {
		t.Errorf("an export out of the watch's scope has a series")
	}
	// Past the TTL the endpoints are no longer kept.
	c.watches["c3"].expired = true
	if v, _ := gather(t, c, "kubectl_mcs_stale_endpoints", map[string]string{"cluster": "ctx2", "source_cluster": "ctx3"}); v != 0 {
		t.Errorf("stale endpoints of an expired source = %v, want 0", v)
	}
}

func TestCountWrites(t *testing.T) {
	ts := newTestController(t, 2)
	c := ts.c
	report := engine.Report{
		Plan: reconcile.Plan{Changes: []reconcile.Change{
			{Cluster: "c2", Action: reconcile.ActionCreate, Kind: reconcile.KindServiceImport, Namespace: "shop", Name: "web"},
			{Cluster: "c2", Action: reconcile.ActionUpdate, Kind: reconcile.KindServiceImportStatus, Namespace: "shop", Name: "web"},
			{Cluster: "c1", Action: reconcile.ActionUnchanged, Kind: reconcile.KindServiceImport, Namespace: "shop", Name: "web"},
			{Cluster: "c1", Action: reconcile.ActionUpdate, Kind: reconcile.KindServiceImportStatus, Namespace: "shop", Name: "web"},
		}},
		Results: []apply.Result{
			{Cluster: "ctx2", Kind: "ServiceImport", Namespace: "shop", Name: "web", Action: apply.Created},
			{Cluster: "ctx1", Kind: "ServiceImport", Namespace: "shop", Name: "web", Action: apply.Configured},
			{Cluster: "ctx2", Kind: "Service", Namespace: "shop", Name: "amcs-web", Action: apply.Created},
			{Cluster: "ctx2", Kind: "EndpointSlice", Namespace: "shop", Name: "amcs-web.c1-ipv4-0", Action: apply.Created},
			{Cluster: "ctx2", Kind: "EndpointSlice", Namespace: "shop", Name: "amcs-web.c1-ipv4-1", Action: apply.Deleted},
			{Cluster: "ctx1", Kind: "EndpointSlice", Namespace: "shop", Name: "amcs-web.c1-ipv4-0", Action: apply.Unchanged},
			{Cluster: "ctx1", Kind: "ServiceExport", Namespace: "shop", Name: "web", Action: apply.Configured, Subject: "status"},
		},
	}
	c.countWrites(report)
	for _, w := range []struct {
		cluster, resource string
		want              float64
	}{
		{"ctx2", "serviceimports", 1}, {"ctx2", "serviceimports/status", 1}, {"ctx1", "serviceimports/status", 1},
		{"ctx2", "services", 1}, {"ctx2", "endpointslices", 2}, {"ctx1", "serviceexports/status", 1},
	} {
		if v, _ := gather(t, c, "kubectl_mcs_writes_total", map[string]string{"cluster": w.cluster, "resource": w.resource}); v != w.want {
			t.Errorf("writes_total{cluster=%s,resource=%s} = %v, want %v", w.cluster, w.resource, v, w.want)
		}
	}
	for _, res := range []string{"serviceimports", "endpointslices"} {
		if v, ok := gather(t, c, "kubectl_mcs_writes_total", map[string]string{"cluster": "ctx1", "resource": res}); ok {
			t.Errorf("writes_total{cluster=ctx1,resource=%s} = %v for unchanged objects", res, v)
		}
	}

	// Propagation: one observation per consumer whose slices were written.
	k := key{"shop", "web"}
	c.markSeen([]key{k})
	first, _ := c.takeSeen(k)
	c.restoreSeen(k, first)
	c.markSeen([]key{k}) // a later sighting keeps the first
	seen, ok := c.takeSeen(k)
	if !ok || !seen.Equal(first) {
		t.Fatalf("takeSeen = %v %t, want the first sighting %v", seen, ok, first)
	}
	if _, ok := c.takeSeen(k); ok {
		t.Errorf("a sighting is taken twice")
	}
	c.observePropagation(report, seen)
	if v, _ := gather(t, c, "kubectl_mcs_endpoint_propagation_seconds", map[string]string{"cluster": "ctx2"}); v != 1 {
		t.Errorf("propagation observations for ctx2 = %v, want 1", v)
	}
	if _, ok := gather(t, c, "kubectl_mcs_endpoint_propagation_seconds", map[string]string{"cluster": "ctx1"}); ok {
		t.Errorf("a propagation observed for ctx1, whose slices did not change")
	}
	// Not while following: an initial list is not a change.
	c.leading.Store(false)
	c.markSeen([]key{k})
	if _, ok := c.takeSeen(k); ok {
		t.Errorf("a sighting recorded while not syncing")
	}
}

// TestServe: /healthz, /readyz and /metrics on one listener when
// --health-addr and --metrics-addr are one address, on two otherwise; an
// address in use is an error.
func TestServe(t *testing.T) {
	ts := newTestController(t, 1)
	c := ts.c
	var log lockedLog
	c.opts.Log = &log
	c.synced.Store(true)
	addrOf := regexp.MustCompile(`serving (\S.*) on (127\.0\.0\.1:\d+)`)
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	c.opts.HealthAddr, c.opts.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0"
	stop, err := c.serve()
	if err != nil {
		t.Fatal(err)
	}
	m := addrOf.FindAllStringSubmatch(log.String(), -1)
	if len(m) != 1 || m[0][1] != "/healthz, /readyz, /metrics" {
		t.Fatalf("one address: listeners %q, want one serving all three paths", m)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := get("http://" + m[0][2] + path); code != http.StatusOK {
			t.Errorf("%s: %d", path, code)
		}
	}
	stop()

	log.Reset()
	// Two address strings: two listeners (localhost resolves to
	// 127.0.0.1 here).
	c.opts.HealthAddr, c.opts.MetricsAddr = "localhost:0", "127.0.0.1:0"
	stop, err = c.serve()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	m = addrOf.FindAllStringSubmatch(log.String(), -1)
	if len(m) != 2 {
		t.Fatalf("two addresses: listeners %q, want two", m)
	}
	metricsURL := "http://" + m[1][2]
	if code := get(metricsURL + "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: %d", code)
	}
	if code := get(metricsURL + "/healthz"); code != http.StatusNotFound {
		t.Errorf("/healthz on the metrics listener: %d, want 404", code)
	}

	c.opts.HealthAddr, c.opts.MetricsAddr = "", m[1][2]
	if _, err := c.serve(); err == nil || !strings.Contains(err.Error(), "serving /metrics") {
		t.Errorf("an address in use: %v, want an error naming /metrics", err)
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *lockedLog) Reset()         { l.mu.Lock(); defer l.mu.Unlock(); l.b.Reset() }
