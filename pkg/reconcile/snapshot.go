package reconcile

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Snapshot is everything one reconcile run knows. The caller reads it from
// the clusters (already filtered to the namespaces and services the user
// asked about) and hands it over whole; Reconcile never reads anything else.
//
// A cluster may be a source and a consumer at once: KEP-1645 imports a
// service into every cluster of the clusterset, the exporting ones
// included, so a whole-clusterset sync lists every cluster in both.
type Snapshot struct {
	// Now stamps conditions that change in this run. It is the only clock.
	Now metav1.Time
	// Sources are the clusters whose exports are synced in this run.
	Sources []Source
	// Consumers are the clusters that receive the imports.
	Consumers []Consumer
}

// Source is one exporting cluster as read in this run.
type Source struct {
	// ClusterID is the KEP-2149 cluster id; it must be a DNS-1123 label.
	ClusterID string
	Exports   []mcsv1beta1.ServiceExport
	Services  []corev1.Service
	// EndpointSlices are the source's own slices, labeled
	// kubernetes.io/service-name=<service>.
	EndpointSlices []discoveryv1.EndpointSlice
	// Unreachable says the reader could not list this cluster. Its lists are
	// ignored; the slices previously mirrored from it are kept, it stays in
	// the imports' status.clusters and the plan lists it as stale. Nothing is
	// ever deleted because a cluster could not be read.
	Unreachable bool
}

// Consumer is an importing cluster as read in this run.
type Consumer struct {
	ClusterID string
	// Namespaces are the namespaces that exist in the consumer (namespace
	// sameness: an import lands only where its namespace already exists).
	Namespaces []string
	// Imports are the existing ServiceImports, managed or hand-made.
	Imports []mcsv1beta1.ServiceImport
	// Services are the existing Services whose names may collide with derived
	// names (any amcs-*), managed or not.
	Services []corev1.Service
	// EndpointSlices are the existing slices that carry our managed-by label,
	// plus any slice whose name collides with a name we want.
	EndpointSlices []discoveryv1.EndpointSlice
}
