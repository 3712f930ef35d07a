package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics/metricstest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
)

// scrape fetches /metrics from the handler, as Prometheus would (text
// format), and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// value is metricstest.Value, under a short name for the many checks here.
var value = metricstest.Value

func cond(typ, status, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason}
}

func TestStateSeriesFollowTheCaches(t *testing.T) {
	var mu sync.Mutex
	st := State{
		Leader:   true,
		Clusters: []Cluster{{Name: "cluster1", Reachable: true}, {Name: "cluster3", Reachable: false}},
		Exports: []Object{
			{Cluster: "cluster1", Namespace: "shop", Name: "web", Conditions: []metav1.Condition{
				cond("Valid", "True", "Valid"), cond("Conflict", "True", "PortConflict")}},
			{Cluster: "cluster3", Namespace: "shop", Name: "web", Conditions: []metav1.Condition{
				cond("Valid", "True", "Valid"), cond("Conflict", "True", "PortConflict")}},
		},
		Imports: []Import{{Object: Object{Cluster: "cluster2", Namespace: "shop", Name: "web",
			Conditions: []metav1.Condition{cond("Ready", "True", "Ready")}}, Type: "ClusterSetIP", Clusters: 2}},
		Stale: []StaleEndpoints{{Cluster: "cluster2", Source: "cluster3", Endpoints: 3}, {Cluster: "cluster2", Source: "cluster1"}},
	}
	m := New(func() State { mu.Lock(); defer mu.Unlock(); return st })
	got := scrape(t, m)

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kubectl_mcs_leader", map[string]string{}, 1},
		{"kubectl_mcs_cluster_reachable", map[string]string{"cluster": "cluster1"}, 1},
		{"kubectl_mcs_cluster_reachable", map[string]string{"cluster": "cluster3"}, 0},
		{"kubectl_mcs_serviceexport_info", map[string]string{"cluster": "cluster1", "namespace": "shop", "serviceexport": "web"}, 1},
		{"kubectl_mcs_serviceexport_status_condition", map[string]string{"cluster": "cluster3", "namespace": "shop", "serviceexport": "web",
			"condition": "Conflict", "status": "True", "reason": "PortConflict"}, 1},
		{"kubectl_mcs_serviceimport_info", map[string]string{"cluster": "cluster2", "namespace": "shop", "serviceimport": "web", "type": "ClusterSetIP"}, 1},
		{"kubectl_mcs_serviceimport_status_condition", map[string]string{"cluster": "cluster2", "namespace": "shop", "serviceimport": "web",
			"condition": "Ready", "status": "True", "reason": "Ready"}, 1},
		{"kubectl_mcs_serviceimport_clusters", map[string]string{"cluster": "cluster2", "namespace": "shop", "serviceimport": "web"}, 2},
		{"kubectl_mcs_stale_endpoints", map[string]string{"cluster": "cluster2", "source_cluster": "cluster3"}, 3},
		{"kubectl_mcs_stale_endpoints", map[string]string{"cluster": "cluster2", "source_cluster": "cluster1"}, 0},
	} {
		if v, ok := value(got, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %t), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	// Only the current value of a condition is a series.
	if n := len(got["kubectl_mcs_serviceexport_status_condition"].GetMetric()); n != 4 {
		t.Errorf("%d serviceexport_status_condition series, want 4 (2 exports x Valid, Conflict)", n)
	}

	// The conflict is resolved and cluster1's export goes: its series go
	// with it, with nothing to forget by hand.
	mu.Lock()
	st.Exports = []Object{{Cluster: "cluster3", Namespace: "shop", Name: "web", Conditions: []metav1.Condition{
		cond("Valid", "True", "Valid"), cond("Conflict", "False", "NoConflicts")}}}
	mu.Unlock()
	got = scrape(t, m)
	if _, ok := value(got, "kubectl_mcs_serviceexport_info", map[string]string{"cluster": "cluster1", "namespace": "shop", "serviceexport": "web"}); ok {
		t.Errorf("the series of a deleted export is still there")
	}
	if _, ok := value(got, "kubectl_mcs_serviceexport_status_condition", map[string]string{"cluster": "cluster3", "namespace": "shop", "serviceexport": "web",
		"condition": "Conflict", "status": "True", "reason": "PortConflict"}); ok {
		t.Errorf("the old Conflict=True series is still there after the condition changed")
	}
	if v, ok := value(got, "kubectl_mcs_serviceexport_status_condition", map[string]string{"cluster": "cluster3", "namespace": "shop", "serviceexport": "web",
		"condition": "Conflict", "status": "False", "reason": "NoConflicts"}); !ok || v != 1 {
		t.Errorf("Conflict=False/NoConflicts = %v (present %t), want 1", v, ok)
	}
}

// A State with the same object twice (two contexts of one cluster, say)
// still scrapes: a duplicate series would fail the whole scrape.
func TestDuplicateObjectsDoNotBreakTheScrape(t *testing.T) {
	ex := Object{Cluster: "c1", Namespace: "ns", Name: "a", Conditions: []metav1.Condition{cond("Valid", "True", "Valid")}}
	m := New(func() State {
		return State{Exports: []Object{ex, ex}, Stale: []StaleEndpoints{{"c2", "c1", 1}, {"c2", "c1", 1}}}
	})
	if v, ok := value(scrape(t, m), "kubectl_mcs_serviceexport_info", map[string]string{"cluster": "c1", "namespace": "ns", "serviceexport": "a"}); !ok || v != 1 {
		t.Errorf("serviceexport_info = %v (present %t), want 1", v, ok)
	}
}

func TestSyncWritesAndPropagation(t *testing.T) {
	m := New(func() State { return State{} })
	m.ObserveSync(20*time.Millisecond, ResultSuccess)
	m.ObserveSync(30*time.Millisecond, ResultSuccess)
	m.ObserveSync(5*time.Second, ResultError)
	m.AddWrites("cluster2", "endpointslices", 2)
	m.AddWrites("cluster2", "endpointslices", 1)
	m.AddWrites("cluster1", "serviceexports/status", 0) // no series for nothing
	m.ObservePropagation("cluster2", 40*time.Millisecond)
	got := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kubectl_mcs_sync_duration_seconds", map[string]string{"result": "success"}, 2},
		{"kubectl_mcs_sync_duration_seconds", map[string]string{"result": "error"}, 1},
		{"kubectl_mcs_writes_total", map[string]string{"cluster": "cluster2", "resource": "endpointslices"}, 3},
		{"kubectl_mcs_endpoint_propagation_seconds", map[string]string{"cluster": "cluster2"}, 1},
	} {
		if v, ok := value(got, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %t), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if _, ok := value(got, "kubectl_mcs_writes_total", map[string]string{"cluster": "cluster1", "resource": "serviceexports/status"}); ok {
		t.Errorf("AddWrites(0) made a series")
	}
	h := got["kubectl_mcs_endpoint_propagation_seconds"].GetMetric()[0].GetHistogram()
	if s := h.GetSampleSum(); s < 0.039 || s > 0.041 {
		t.Errorf("propagation sum %v, want 0.04", s)
	}
	// 40ms falls in the 0.05 bucket, not in the 0.025 one.
	for _, b := range h.GetBucket() {
		want := uint64(0)
		if b.GetUpperBound() >= 0.05 {
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("propagation bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}

// TestQueueMetrics: a named queue given QueueMetrics reports client-go's
// workqueue_* series into this registry, and two controllers' registries
// stay apart (workqueue.SetProvider could not do that).
func TestQueueMetrics(t *testing.T) {
	a, b := New(func() State { return State{} }), New(func() State { return State{} })
	// A retry an hour away: the retried item must not come back (an add)
	// before the scrape, however slow the machine.
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Hour, time.Hour),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: QueueName, MetricsProvider: a.QueueMetrics()})
	defer q.ShutDown()
	q.Add("ns/a")
	q.Add("ns/b")
	q.Add("ns/c")
	item, _ := q.Get()
	q.AddRateLimited(item)
	q.Done(item)
	got := scrape(t, a)
	name := map[string]string{"name": QueueName}
	for _, c := range []struct {
		metric string
		want   float64
	}{
		{"workqueue_adds_total", 3},
		{"workqueue_depth", 2},
		{"workqueue_retries_total", 1},
		{"workqueue_queue_duration_seconds", 1},
		{"workqueue_work_duration_seconds", 1},
	} {
		if v, ok := value(got, c.metric, name); !ok || v != c.want {
			t.Errorf("%s{name=%q} = %v (present %t), want %v", c.metric, QueueName, v, ok, c.want)
		}
	}
	for _, metric := range []string{"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"} {
		if _, ok := value(got, metric, name); !ok {
			t.Errorf("%s{name=%q} missing", metric, QueueName)
		}
	}
	if v, _ := value(scrape(t, b), "workqueue_adds_total", name); v != 0 {
		t.Errorf("another controller's registry counts %v adds of this queue", v)
	}
}

// TestHelpNamesEveryMetric: every kubectl_mcs metric has its HELP, since
// the table of docs/observability.md is made from them.
func TestHelpNamesEveryMetric(t *testing.T) {
	m := New(func() State {
		ready := []metav1.Condition{cond("Ready", "True", "Ready")}
		return State{Leader: true, Clusters: []Cluster{{Name: "c1"}}, Exports: []Object{{Cluster: "c1", Name: "a", Conditions: ready}},
			Imports: []Import{{Object: Object{Cluster: "c1", Name: "a", Conditions: ready}}}, Stale: []StaleEndpoints{{"c1", "c2", 0}}}
	})
	m.ObserveSync(time.Millisecond, ResultSuccess)
	m.AddWrites("c1", "services", 1)
	m.ObservePropagation("c1", time.Millisecond)
	var names []string
	for name, f := range scrape(t, m) {
		if strings.HasPrefix(name, Namespace+"_") {
			names = append(names, name)
			if f.GetHelp() == "" {
				t.Errorf("%s has no HELP", name)
			}
		}
	}
	if len(names) != 11 {
		t.Errorf("%d kubectl_mcs metrics %v, want 11", len(names), names)
	}
}
