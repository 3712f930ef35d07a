package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestMetricsAndEvents runs `kubectl mcs sync --watch --metrics-addr` over
// the three shared clusters (its own namespace) and follows /metrics and
// the Events as the world changes: a port conflict between cluster1 and
// cluster2, an endpoint change in cluster1, an export waiting for its
// Service, and cluster3 (the only exporter of db) stopped past --stale-ttl
// and started again.
func TestMetricsAndEvents(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns := "metrics-ns"
	c1, c2, c3 := set.Cluster("cluster1"), set.Cluster("cluster2"), set.Cluster("cluster3")
	createNamespaceEverywhere(ctx, t, set, ns)
	// web: port 80 in cluster1, 8080 in cluster2 (a PortConflict); db:
	// exported by cluster3 alone.
	for _, s := range []struct {
		c              *localcluster.Cluster
		name           string
		port, ipBlock  int
		endpointsCount int
	}{{c1, "web", 80, 1, 2}, {c2, "web", 8080, 2, 2}, {c3, "db", 5432, 3, 2}} {
		if _, err := s.c.Create(ctx, ns, []byte(handService(s.name, s.port, s.ipBlock, s.endpointsCount))); err != nil {
			t.Fatal(err)
		}
	}

	addr := freeAddr(t)
	metricsURL := "http://" + addr + "/metrics"
	const staleTTL = 10 * time.Second
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan pluginRun, 1)
	go func() {
		done <- kubectlMCSWatch(watchCtx, t, set.Kubeconfig, "sync", "-n", ns, "--clusters", "cluster1,cluster2,cluster3", "--watch",
			"--stale-ttl", staleTTL.String(), "--metrics-addr", addr, "--health-addr", addr)
	}()
	// cluster3 is shared with every other test: whatever happens here, it
	// is started again (StartAPIServer waits for /readyz) before the end.
	c3down := false
	defer func() {
		if c3down {
			if err := c3.StartAPIServer(context.Background()); err != nil {
				t.Errorf("restarting cluster3's API server: %v", err)
			}
		}
		stopWatch()
		select {
		case run := <-done:
			if run.code != 0 {
				t.Errorf("the watch exited %d:\n%s", run.code, headTail(run.stderr, 20))
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the watch did not stop within 30s of its cancellation")
		}
	}()

	// metric polls /metrics until the series with these labels (summed,
	// when they select several) satisfies ok.
	metric := func(what, name string, labels map[string]string, ok func(float64) bool) float64 {
		t.Helper()
		var v float64
		eventually(ctx, t, 60*time.Second, what, func() (bool, string) {
			s, _, err := scrapeMetrics(ctx, metricsURL)
			if err != nil {
				return false, err.Error()
			}
			var found bool
			v, found = s.value(name, labels)
			return found && ok(v), fmt.Sprintf("%s%v = %v (present %t)", name, labels, v, found)
		})
		return v
	}
	is := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	above := func(min float64) func(float64) bool { return func(v float64) bool { return v > min } }

	for _, c := range []string{"cluster1", "cluster2", "cluster3"} {
		metric(c+" reachable", "kubectl_mcs_cluster_reachable", map[string]string{"cluster": c}, is(1))
	}
	metric("this process leads", "kubectl_mcs_leader", nil, is(1))
	if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz on the --metrics-addr listener: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The conflict: both exports Conflict=True/PortConflict.
	kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", "cluster1").mustSucceed(t)
	time.Sleep(1100 * time.Millisecond) // creationTimestamps have one-second resolution
	kubectlMCS(t, set.Kubeconfig, "export", "web", "-n", ns, "--context", "cluster2").mustSucceed(t)
	kubectlMCS(t, set.Kubeconfig, "export", "db", "-n", ns, "--context", "cluster3").mustSucceed(t)
	for _, c := range []string{"cluster1", "cluster2"} {
		metric(c+"'s export of web in conflict", "kubectl_mcs_serviceexport_status_condition", map[string]string{
			"cluster": c, "namespace": ns, "serviceexport": "web", "condition": "Conflict", "status": "True", "reason": "PortConflict"}, is(1))
	}
	metric("cluster2's import of web lists two exporters", "kubectl_mcs_serviceimport_clusters",
		map[string]string{"cluster": "cluster2", "namespace": ns, "serviceimport": "web"}, is(2))
	metric("db imported into cluster2", "kubectl_mcs_serviceimport_info",
		map[string]string{"cluster": "cluster2", "namespace": ns, "serviceimport": "db", "type": "ClusterSetIP"}, is(1))
	metric("slices written into cluster2", "kubectl_mcs_writes_total", map[string]string{"cluster": "cluster2", "resource": "endpointslices"}, above(0))
	metric("export statuses written into cluster1", "kubectl_mcs_writes_total", map[string]string{"cluster": "cluster1", "resource": "serviceexports/status"}, above(0))
	metric("successful syncs timed", "kubectl_mcs_sync_duration_seconds", map[string]string{"result": "success"}, above(0))
	metric("the named work queue counts its adds", "workqueue_adds_total", map[string]string{"name": "kubectl-mcs"}, above(0))
	for _, c := range []*localcluster.Cluster{c1, c2} {
		waitEvent(ctx, t, c, ns, "ServiceExport", "web", corev1.EventTypeWarning, "PortConflict")
	}

	// An endpoint change in cluster1 reaches cluster2: one more
	// propagation observed there.
	var before float64 // no series before the first observation
	if s, _, err := scrapeMetrics(ctx, metricsURL); err == nil {
		before, _ = s.value("kubectl_mcs_endpoint_propagation_seconds", map[string]string{"cluster": "cluster2"})
	}
	patch := fmt.Sprintf(`{"endpoints":[%s]}`, strings.Join(handEndpoints(1, 3), ","))
	if _, err := c1.Client.DiscoveryV1().EndpointSlices(ns).Patch(ctx, "web-hand", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 30*time.Second, "cluster1's third endpoint mirrored into cluster2", func() (bool, string) {
		got := mirroredBySource(ctx, t, c2, ns, "web")["cluster1"]
		return len(got) == 3, fmt.Sprint(got)
	})
	metric("the propagation into cluster2 observed", "kubectl_mcs_endpoint_propagation_seconds", map[string]string{"cluster": "cluster2"}, above(before))
	if s, _, err := scrapeMetrics(ctx, metricsURL); err == nil {
		sum, _ := s.value("kubectl_mcs_endpoint_propagation_seconds_sum", map[string]string{"cluster": "cluster2"})
		count, _ := s.value("kubectl_mcs_endpoint_propagation_seconds", map[string]string{"cluster": "cluster2"})
		t.Logf("endpoint propagation into cluster2: %d observations, mean %.1f ms", int(count), 1000*sum/count)
		if sum/count > 10 {
			t.Errorf("mean endpoint propagation into cluster2 %.1fs, want well under 10s", sum/count)
		}
	}

	// An export made ahead of its Service: Valid=False/NoService, then
	// Valid=True once the Service exists; an event for each.
	createV1beta1Export(ctx, t, c1, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "lonely", Namespace: ns}})
	metric("lonely Valid=False/NoService", "kubectl_mcs_serviceexport_status_condition", map[string]string{
		"cluster": "cluster1", "namespace": ns, "serviceexport": "lonely", "condition": "Valid", "status": "False", "reason": "NoService"}, is(1))
	waitEvent(ctx, t, c1, ns, "ServiceExport", "lonely", corev1.EventTypeWarning, "NoService")
	if _, err := c1.Create(ctx, ns, []byte(handService("lonely", 80, 4, 1))); err != nil {
		t.Fatal(err)
	}
	metric("lonely Valid=True once its Service exists", "kubectl_mcs_serviceexport_status_condition", map[string]string{
		"cluster": "cluster1", "namespace": ns, "serviceexport": "lonely", "condition": "Valid", "status": "True", "reason": "Valid"}, is(1))
	waitEvent(ctx, t, c1, ns, "ServiceExport", "lonely", corev1.EventTypeNormal, "Valid")

	// cluster3 stops: unreachable, db's endpoints kept in cluster1 and
	// cluster2 until the TTL, then removed.
	downAt := time.Now() // it stops answering at SIGTERM, before StopAPIServer returns
	c3.StopAPIServer()
	c3down = true
	metric("cluster3 unreachable", "kubectl_mcs_cluster_reachable", map[string]string{"cluster": "cluster3"}, is(0))
	for _, c := range []string{"cluster1", "cluster2"} {
		metric(c+" keeps cluster3's 2 endpoints", "kubectl_mcs_stale_endpoints", map[string]string{"cluster": c, "source_cluster": "cluster3"}, is(2))
	}
	if _, raw, err := scrapeMetrics(ctx, metricsURL); err == nil {
		t.Logf("/metrics with web in conflict and cluster3 stopped (kubectl_mcs_* and workqueue_*, buckets left out):\n%s", metricsExcerpt(raw))
	}
	for _, c := range []*localcluster.Cluster{c1, c2} {
		ev := waitEvent(ctx, t, c, ns, "ServiceImport", "db", corev1.EventTypeWarning, "SourceUnreachable")
		if !strings.Contains(ev.Message, "cluster3") || !strings.Contains(ev.Message, "2 endpoint(s)") {
			t.Errorf("%s: SourceUnreachable says %q, want cluster3 and its 2 endpoints", c.Name, ev.Message)
		}
	}
	waitEvent(ctx, t, c2, ns, "ServiceImport", "db", corev1.EventTypeWarning, "StaleEndpointsRemoved")
	metric("no endpoints kept past the TTL", "kubectl_mcs_stale_endpoints", map[string]string{"cluster": "cluster2", "source_cluster": "cluster3"}, is(0))
	eventually(ctx, t, 30*time.Second, "db's import removed from cluster2 past the TTL", func() (bool, string) {
		_, err := getServiceImportErr(ctx, c2, ns, "db")
		return apierrors.IsNotFound(err), errString(err)
	})
	if d := time.Since(downAt); d < staleTTL {
		t.Errorf("db's endpoints removed %s after cluster3 stopped, before the %s TTL", d.Round(time.Second), staleTTL)
	}

	// cluster3 is back: reachable, db imported again.
	if err := c3.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	c3down = false
	metric("cluster3 reachable again", "kubectl_mcs_cluster_reachable", map[string]string{"cluster": "cluster3"}, is(1))
	metric("db imported into cluster2 again", "kubectl_mcs_serviceimport_clusters",
		map[string]string{"cluster": "cluster2", "namespace": ns, "serviceimport": "db"}, is(1))
	metric("web still in conflict in cluster1", "kubectl_mcs_serviceexport_status_condition", map[string]string{
		"cluster": "cluster1", "namespace": ns, "serviceexport": "web", "condition": "Conflict", "status": "True", "reason": "PortConflict"}, is(1))

	// What `kubectl get events -n metrics-ns` shows in each cluster.
	for _, c := range set.Clusters {
		t.Logf("$ kubectl get events -n %s --context %s  # reported by kubectl-mcs\n%s", ns, c.Name, eventTable(ctx, t, c, ns))
	}
}

// handService is a Service without selector and a hand-made EndpointSlice
// of n ready endpoints (addresses from block, clear of the pods' ranges).
func handService(name string, port, block, n int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  ports: [{name: http, port: %[2]d, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-hand
  labels: {kubernetes.io/service-name: %[1]s, endpointslice.kubernetes.io/managed-by: e2e-test}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [%[3]s]
`, name, port, strings.Join(handEndpoints(block, n), ","))
}

func handEndpoints(block, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`{"addresses":["198.18.%d.%d"],"conditions":{"ready":true}}`, 224+block, i+1))
	}
	return out
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metricFamilies is one scrape, parsed.
type metricFamilies map[string]*dto.MetricFamily

func scrapeMetrics(ctx context.Context, url string) (metricFamilies, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	return families, string(raw), err
}

// value sums the series of name whose labels include the given ones: a
// gauge's or counter's value, a histogram's count (name_sum: its sum).
func (f metricFamilies) value(name string, labels map[string]string) (float64, bool) {
	sum := strings.HasSuffix(name, "_sum")
	family := f[name]
	if family == nil && sum {
		family = f[strings.TrimSuffix(name, "_sum")]
	}
	if family == nil {
		return 0, false
	}
	var total float64
	found := false
	for _, m := range family.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetHistogram() != nil && sum:
			total += m.GetHistogram().GetSampleSum()
		case m.GetHistogram() != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total, found
}

// metricsExcerpt keeps the kubectl_mcs_* and workqueue_* lines of a scrape,
// without histogram buckets.
func metricsExcerpt(raw string) string {
	var b strings.Builder
	for _, line := range strings.Split(raw, "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if !strings.HasPrefix(name, "kubectl_mcs_") && !strings.HasPrefix(name, "workqueue_") || strings.Contains(line, "_bucket{") ||
			strings.HasPrefix(line, "# HELP") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// waitEvent waits for an Event reported by kubectl-mcs about an object of
// namespace ns in cluster c, and returns it.
func waitEvent(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, kind, name, eventType, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	eventually(ctx, t, 30*time.Second, fmt.Sprintf("%s: a %s event %s on %s %s/%s", c.Name, eventType, reason, kind, ns, name), func() (bool, string) {
		list, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name || e.Source.Component != "kubectl-mcs" {
				continue
			}
			seen = append(seen, e.Type+"/"+e.Reason)
			if e.Type == eventType && e.Reason == reason {
				found = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("events on it: %v", seen)
	})
	if found.ReportingController != "kubectl-mcs" || found.InvolvedObject.UID == "" {
		t.Errorf("%s: event %s: reportingController %q, involvedObject.uid %q; want kubectl-mcs and the object's uid",
			c.Name, reason, found.ReportingController, found.InvolvedObject.UID)
	}
	return found
}

// eventTable lists the Events kubectl-mcs reported in a namespace as
// `kubectl get events` does.
func eventTable(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string) string {
	t.Helper()
	list, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	events := slices.DeleteFunc(list.Items, func(e corev1.Event) bool { return e.Source.Component != "kubectl-mcs" })
	slices.SortFunc(events, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-8s %-22s %-22s %s\n", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
	for _, e := range events {
		msg := strings.ReplaceAll(e.Message, "\n", " ")
		if e.Count > 1 {
			msg += fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(&b, "%-10s %-8s %-22s %-22s %s\n", time.Since(e.LastTimestamp.Time).Round(time.Second), e.Type, e.Reason,
			strings.ToLower(e.InvolvedObject.Kind)+"/"+e.InvolvedObject.Name, msg)
	}
	return b.String()
}
