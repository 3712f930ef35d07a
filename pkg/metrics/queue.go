package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// QueueName names the controller's work queue in the workqueue_* series.
const QueueName = "kubectl-mcs"

// queueMetrics are client-go's work queue metrics, with the names and
// buckets of k8s.io/component-base's provider (workqueue_depth{name}, ...),
// but in this registry: workqueue.SetProvider installs one provider for the
// whole process, once, so a second controller in the same process (the
// e2e tests run many) would report into the first one's registry. The
// queue gets this provider through its config (MetricsProvider) instead.
type queueMetrics struct {
	depth, unfinished, longestRunning *prometheus.GaugeVec
	adds, retries                     *prometheus.CounterVec
	latency, workDuration             *prometheus.HistogramVec
}

func newQueueMetrics() *queueMetrics {
	const sub = "workqueue"
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: sub, Name: name, Help: help}, []string{"name"})
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: sub, Name: name, Help: help}, []string{"name"})
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(10e-9, 10, 10)}, []string{"name"})
	}
	return &queueMetrics{
		depth:          gauge("depth", "Current depth of workqueue"),
		adds:           counter("adds_total", "Total number of adds handled by workqueue"),
		latency:        histogram("queue_duration_seconds", "How long in seconds an item stays in workqueue before being requested."),
		workDuration:   histogram("work_duration_seconds", "How long in seconds processing an item from workqueue takes."),
		unfinished:     gauge("unfinished_work_seconds", "How many seconds of work has done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads."),
		longestRunning: gauge("longest_running_processor_seconds", "How many seconds has the longest running processor for workqueue been running."),
		retries:        counter("retries_total", "Total number of retries handled by workqueue"),
	}
}

func (q *queueMetrics) register(r prometheus.Registerer) {
	r.MustRegister(q.depth, q.adds, q.latency, q.workDuration, q.unfinished, q.longestRunning, q.retries)
}

// QueueMetrics is the workqueue.MetricsProvider of this registry, for the
// MetricsProvider of a named queue's config.
func (m *Metrics) QueueMetrics() workqueue.MetricsProvider { return m.queue }

func (q *queueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return q.depth.WithLabelValues(name)
}

func (q *queueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return q.adds.WithLabelValues(name)
}

func (q *queueMetrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return q.latency.WithLabelValues(name)
}

func (q *queueMetrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return q.workDuration.WithLabelValues(name)
}

func (q *queueMetrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return q.unfinished.WithLabelValues(name)
}

func (q *queueMetrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return q.longestRunning.WithLabelValues(name)
}

func (q *queueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return q.retries.WithLabelValues(name)
}
