// Package status is the report of `kubectl mcs status`: every export and
// import of a clusterset, read through pkg/snapshot, with validity, the
// import type, namespace sameness and drift decided by pkg/reconcile, and
// the DNS names from pkg/dns. pkg/cmd only parses flags and prints it.
package status

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Cluster is one cluster of the clusterset as status saw it.
type Cluster struct {
	Context string `json:"context"`
	ID      string `json:"id,omitempty"`
	// IDSource says where the id came from: a ClusterProperty (and the
	// version of about.k8s.io it was read in), or the context name and why.
	IDSource string `json:"idSource,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Service is one row of the status table.
type Service struct {
	Namespace  string         `json:"namespace"`
	Service    string         `json:"service"`
	Type       string         `json:"type,omitempty"`
	ExportedBy []ExportState  `json:"exportedBy,omitempty"`
	ImportedIn []ImportState  `json:"importedIn,omitempty"`
	Ports      []string       `json:"ports,omitempty"`
	Endpoints  EndpointCounts `json:"endpoints"`
	Conflicts  []string       `json:"conflicts,omitempty"`
	Created    *metav1.Time   `json:"created,omitempty"`
	DNSNames   []string       `json:"dnsNames,omitempty"`
	Derived    string         `json:"derivedService,omitempty"`
	IPs        []string       `json:"ips,omitempty"`
}

// ExportState is one cluster's export of a service.
type ExportState struct {
	Cluster string `json:"cluster"`
	Valid   bool   `json:"valid"`
	Reason  string `json:"reason,omitempty"`
}

// ImportState is one consumer's import of a service.
type ImportState struct {
	Cluster   string         `json:"cluster"`
	Endpoints EndpointCounts `json:"endpoints"`
	Stale     bool           `json:"stale"`
	Fix       string         `json:"fix,omitempty"`
}

// EndpointCounts are ready and total endpoints.
type EndpointCounts struct {
	Ready int `json:"ready"`
	Total int `json:"total"`
}

func (e EndpointCounts) String() string { return fmt.Sprintf("%d/%d", e.Ready, e.Total) }

// Report is what -o json|yaml prints.
type Report struct {
	Clusters []Cluster `json:"clusters"`
	Services []Service `json:"services"`
	// MissingNamespaces are the clusters that lack the namespace of a valid
	// export, so do not import it (namespace sameness).
	MissingNamespaces []MissingNamespace `json:"missingNamespaces,omitempty"`
}

// MissingNamespace is a cluster without an exported namespace.
type MissingNamespace struct {
	Cluster   string   `json:"cluster"`
	Namespace string   `json:"namespace"`
	Services  []string `json:"services"`
	Fix       string   `json:"fix"`
}

type serviceKey struct{ namespace, name string }

func (k serviceKey) scope() snapshot.Scope {
	return snapshot.Scope{Namespace: k.namespace, Services: []string{k.name}}
}

// Build merges what every cluster holds into one row per service,
// and re-runs the reconcile library per import to spot drift.
func Build(states []*ClusterState, now time.Time) Report {
	report := Report{Clusters: []Cluster{}, Services: []Service{}}
	rows := map[serviceKey]*Service{}
	row := func(ns, name string) *Service {
		k := serviceKey{ns, name}
		if rows[k] == nil {
			rows[k] = &Service{Namespace: ns, Service: name, Derived: reconcile.DerivedServiceName(name)}
		}
		return rows[k]
	}
	var healthy []*ClusterState
	exports := map[serviceKey][]reconcile.ExportView{}
	for _, st := range states {
		cr := Cluster{Context: st.Cluster.Context, ID: st.Cluster.ID, IDSource: st.Cluster.IDSource}
		if st.Err != nil {
			cr.Error = st.Err.Error()
		} else {
			healthy = append(healthy, st)
		}
		report.Clusters = append(report.Clusters, cr)
	}
	slices.SortFunc(report.Clusters, func(a, b Cluster) int { return strings.Compare(a.Context, b.Context) })

	for _, st := range healthy {
		id := st.Cluster.ID
		services := map[serviceKey]*corev1.Service{}
		for i := range st.Source.Services {
			s := &st.Source.Services[i]
			services[serviceKey{s.Namespace, s.Name}] = s
		}
		for i := range st.Source.Exports {
			e := &st.Source.Exports[i]
			r := row(e.Namespace, e.Name)
			observed := meta.FindStatusCondition(e.Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid))
			svc := services[serviceKey{e.Namespace, e.Name}]
			// Validity as the sync decides it now; the reason a sync wrote,
			// where it says the export is not valid.
			valid := reconcile.ValidCondition(id, e, svc)
			es := ExportState{Cluster: id, Valid: valid.Status == metav1.ConditionTrue}
			if observed != nil && observed.Status != metav1.ConditionTrue {
				es.Reason = observed.Reason
			} else if !es.Valid {
				es.Reason = valid.Reason
			}
			r.ExportedBy = append(r.ExportedBy, es)
			for _, reason := range reconcile.ConflictReasons(e.Status.Conditions) {
				if !slices.Contains(r.Conflicts, reason) {
					r.Conflicts = append(r.Conflicts, reason)
				}
			}
			exports[serviceKey{e.Namespace, e.Name}] = append(exports[serviceKey{e.Namespace, e.Name}], reconcile.ExportView{Cluster: id, Export: e, Service: svc})
			if r.Created == nil || e.CreationTimestamp.Before(r.Created) {
				t := e.CreationTimestamp
				r.Created = &t
			}
			if svc != nil && es.Valid {
				for _, p := range svc.Spec.Ports {
					addPort(r, p.Name, p.Port, string(p.Protocol))
				}
			}
		}
		counts := countEndpoints(st.Source.EndpointSlices)
		for k, c := range counts {
			if r := rows[k]; r != nil {
				r.Endpoints.Ready += c.Ready
				r.Endpoints.Total += c.Total
			}
		}
	}
	// The type is the winning export's, as the sync decides it (the oldest
	// valid export), not the first one read.
	for k, views := range exports {
		if w, ok := reconcile.WinningExport(views); ok {
			rows[k].Type = string(reconcile.ImportTypeOf(w.Service))
		}
	}
	report.MissingNamespaces = missingNamespaces(healthy, now)
	for _, st := range healthy {
		mirrored := countMirrored(st.Consumer.EndpointSlices)
		for i := range st.Consumer.Imports {
			si := &st.Consumer.Imports[i]
			r := row(si.Namespace, si.Name)
			if r.Type == "" {
				r.Type = string(si.Spec.Type)
			}
			for _, p := range si.Spec.Ports {
				addPort(r, p.Name, p.Port, string(p.Protocol))
			}
			if len(r.IPs) == 0 {
				r.IPs = si.Spec.IPs
			}
			// Also right for an import another MCS controller made.
			r.Derived = reconcile.DerivedServiceOf(si)
			if r.Created == nil {
				t := si.CreationTimestamp
				r.Created = &t
			}
			is := ImportState{Cluster: st.Cluster.ID, Endpoints: mirrored[serviceKey{si.Namespace, si.Name}]}
			if exporters := exportersOf(healthy, si.Namespace, si.Name); len(exporters) > 0 || len(si.Status.Clusters) > 0 {
				is.Stale, is.Fix = drift(healthy, st, si, exporters, now)
			}
			r.ImportedIn = append(r.ImportedIn, is)
		}
	}
	for _, r := range rows {
		slices.SortFunc(r.ExportedBy, func(a, b ExportState) int { return strings.Compare(a.Cluster, b.Cluster) })
		slices.SortFunc(r.ImportedIn, func(a, b ImportState) int { return strings.Compare(a.Cluster, b.Cluster) })
		slices.Sort(r.Conflicts)
		slices.Sort(r.Ports)
		r.DNSNames = dns.ServiceNames(r.Service, r.Namespace, r.Derived, r.Type == string(mcsv1beta1.Headless))
		report.Services = append(report.Services, *r)
	}
	slices.SortFunc(report.Services, func(a, b Service) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Service, b.Service)
	})
	return report
}

func addPort(r *Service, name string, port int32, protocol string) {
	if protocol == "" {
		protocol = string(corev1.ProtocolTCP)
	}
	p := fmt.Sprintf("%d/%s", port, protocol)
	if name != "" {
		p = name + ":" + p
	}
	if !slices.Contains(r.Ports, p) {
		r.Ports = append(r.Ports, p)
	}
}

// missingNamespaces runs the library over the whole clusterset, every
// cluster a source and a consumer, as `kubectl mcs sync` does, and lists
// the clusters it would skip for lack of the namespace.
func missingNamespaces(healthy []*ClusterState, now time.Time) []MissingNamespace {
	snap := reconcile.Snapshot{Now: metav1.NewTime(now)}
	byID := map[string]*ClusterState{}
	for _, st := range healthy {
		snap.Sources = append(snap.Sources, st.Source)
		snap.Consumers = append(snap.Consumers, st.Consumer)
		byID[st.Cluster.ID] = st
	}
	var out []MissingNamespace
	for _, cp := range reconcile.Reconcile(snap).Consumers {
		ctx := byID[cp.Cluster].Cluster.Context
		for _, m := range cp.MissingNamespaces {
			out = append(out, MissingNamespace{Cluster: ctx, Namespace: m.Namespace, Services: m.Services,
				Fix: fmt.Sprintf("kubectl create namespace %s --context %s", m.Namespace, ctx)})
		}
	}
	return out
}

// exportersOf returns the clusters that export the service, the consumer
// included (KEP-1645: a cluster's own export is one source of its import).
func exportersOf(healthy []*ClusterState, ns, name string) []*ClusterState {
	var out []*ClusterState
	for _, st := range healthy {
		if slices.ContainsFunc(st.Source.Exports, func(e mcsv1beta1.ServiceExport) bool { return e.Namespace == ns && e.Name == name }) {
			out = append(out, st)
		}
	}
	return out
}

// drift runs the sync for one import in memory: if the library would change
// anything in the consumer, the import is stale, and the fix is the import
// command that would bring it up to date.
func drift(healthy []*ClusterState, consumer *ClusterState, si *mcsv1beta1.ServiceImport, exporters []*ClusterState, now time.Time) (bool, string) {
	key := serviceKey{si.Namespace, si.Name}
	snap := reconcile.Snapshot{Now: metav1.NewTime(now), Consumers: []reconcile.Consumer{filterConsumer(consumer.Consumer, key)}}
	var from []string
	for _, st := range exporters {
		snap.Sources = append(snap.Sources, filterSource(st.Source, key))
		from = append(from, st.Cluster.Context)
	}
	// Clusters that once exported it but are not in this clusterset view
	// (or no longer export it) are part of the sync too: their slices go.
	for _, c := range si.Status.Clusters {
		if slices.ContainsFunc(snap.Sources, func(s reconcile.Source) bool { return s.ClusterID == c.Cluster }) {
			continue
		}
		if i := slices.IndexFunc(healthy, func(st *ClusterState) bool { return st.Cluster.ID == c.Cluster }); i >= 0 {
			snap.Sources = append(snap.Sources, filterSource(healthy[i].Source, key))
			from = append(from, healthy[i].Cluster.Context)
		}
	}
	if len(snap.Sources) == 0 {
		return false, ""
	}
	plan := reconcile.Reconcile(snap)
	stale := len(plan.Problems) > 0
	for _, ch := range plan.Changes {
		if ch.Cluster == consumer.Cluster.ID && ch.Action != reconcile.ActionUnchanged {
			stale = true
		}
	}
	if !stale {
		return false, ""
	}
	slices.Sort(from)
	return true, fmt.Sprintf("kubectl mcs import %s -n %s --from %s --context %s", si.Name, si.Namespace, strings.Join(from, ","), consumer.Cluster.Context)
}

// filterSource and filterConsumer keep one service of what status read,
// with the snapshot's own scope filters.
func filterSource(src reconcile.Source, key serviceKey) reconcile.Source {
	out := snapshot.BuildSource(src.ClusterID, src.Exports, src.Services, src.EndpointSlices, key.scope())
	out.Unreachable = src.Unreachable
	return out
}

func filterConsumer(con reconcile.Consumer, key serviceKey) reconcile.Consumer {
	return snapshot.BuildConsumer(con.ClusterID, con.Namespaces, con.Imports, con.Services, con.EndpointSlices, key.scope())
}

// countEndpoints counts a source's endpoints per service (by the
// kubernetes.io/service-name label), each address once.
func countEndpoints(slices []discoveryv1.EndpointSlice) map[serviceKey]EndpointCounts {
	return count(slices, discoveryv1.LabelServiceName)
}

// countMirrored counts a consumer's mirrored endpoints per imported service.
func countMirrored(slices []discoveryv1.EndpointSlice) map[serviceKey]EndpointCounts {
	return count(slices, mcsv1beta1.LabelServiceName)
}

func count(list []discoveryv1.EndpointSlice, serviceLabel string) map[serviceKey]EndpointCounts {
	out := map[serviceKey]EndpointCounts{}
	seen := map[serviceKey]map[string]bool{}
	for _, s := range list {
		k := serviceKey{s.Namespace, s.Labels[serviceLabel]}
		if k.name == "" {
			continue
		}
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		c := out[k]
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 || seen[k][ep.Addresses[0]] {
				continue
			}
			seen[k][ep.Addresses[0]] = true
			c.Total++
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				c.Ready++
			}
		}
		out[k] = c
	}
	return out
}
