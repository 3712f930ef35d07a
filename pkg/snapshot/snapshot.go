// Package snapshot reads what the reconcile library needs from real
// clusters: per source its ServiceExports, Services and EndpointSlices, per
// consumer its namespaces, ServiceImports, Services and the EndpointSlices
// that may be ours, each with one list request per kind, the requests of
// one read in flight together.
package snapshot

import (
	"context"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Scope limits a sync: one namespace or all ("" = all), and optionally some
// service names.
type Scope struct {
	Namespace string
	Services  []string
}

// Wants says whether the scope covers a service of that name.
func (s Scope) Wants(name string) bool {
	return len(s.Services) == 0 || slices.Contains(s.Services, name)
}

func (s Scope) coversNamespace(ns string) bool { return s.Namespace == "" || s.Namespace == ns }

func (s Scope) covers(ns, name string) bool { return s.coversNamespace(ns) && s.Wants(name) }

// wantsDerivedSlice: the slice name starts with the derived name of a
// service in scope (mirrored slices are named <derived>.<cluster>-...).
func (s Scope) wantsDerivedSlice(name string) bool {
	if len(s.Services) == 0 {
		return true
	}
	for _, svc := range s.Services {
		if strings.HasPrefix(name, reconcile.DerivedServiceName(svc)+".") {
			return true
		}
	}
	return false
}

func (s Scope) wantsDerived(name string) bool {
	if len(s.Services) == 0 {
		return true
	}
	for _, svc := range s.Services {
		if reconcile.DerivedServiceName(svc) == name {
			return true
		}
	}
	return false
}

// Live reads from the API servers, one list request per kind.
type Live struct{}

// ReadSource lists a source cluster's objects in scope (see ReadSource).
func (Live) ReadSource(ctx context.Context, c *clusterset.Cluster, scope Scope) (reconcile.Source, error) {
	return ReadSource(ctx, c, scope)
}

// ReadConsumer lists a consumer's objects in scope (see ReadConsumer).
func (Live) ReadConsumer(ctx context.Context, c *clusterset.Cluster, scope Scope) (reconcile.Consumer, error) {
	return ReadConsumer(ctx, c, scope)
}

// ReadSource lists a source cluster's exports, Services and EndpointSlices
// in scope, with the three lists in flight together: one round trip (two
// when the MCS version is not in the discovery cache yet).
func ReadSource(ctx context.Context, c *clusterset.Cluster, scope Scope) (reconcile.Source, error) {
	l, err := list(ctx, c, scope)
	if err != nil {
		return reconcile.Source{ClusterID: c.ID}, err
	}
	return BuildSource(c.ID, l.Exports, l.Services, l.Slices, scope), nil
}

// Listing is what a cluster holds in a namespace for exporting: every
// ServiceExport, every Service (exported or not) and the cluster's own
// EndpointSlices (SourceSliceSelector).
type Listing struct {
	Exports  []mcsv1beta1.ServiceExport
	Services []corev1.Service
	Slices   []discoveryv1.EndpointSlice
}

// List reads a Listing of namespace ns ("" for all) with one list request
// per kind, for a caller that needs the Services nobody exports too (resolve
// tells "not exported" from "no such Service").
func List(ctx context.Context, c *clusterset.Cluster, ns string) (Listing, error) {
	return list(ctx, c, Scope{Namespace: ns})
}

func list(ctx context.Context, c *clusterset.Cluster, scope Scope) (Listing, error) {
	var l Listing
	err := together(
		func() (err error) { l.Exports, err = listExports(ctx, c, scope); return err },
		func() (err error) { l.Services, err = listServices(ctx, c, scope); return err },
		func() (err error) {
			l.Slices, err = listSlices(ctx, c, scope, SourceSliceSelector)
			return err
		},
	)
	return l, err
}

// together runs the reads of one cluster at once, so that they cost one
// round trip, and returns the error of the first (in argument order) that
// failed.
func together(reads ...func() error) error {
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, read := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = read()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// listExports lists and decodes the ServiceExports in scope.
func listExports(ctx context.Context, c *clusterset.Cluster, scope Scope) ([]mcsv1beta1.ServiceExport, error) {
	gvr, err := c.MCSResource(clusterset.ServiceExports)
	if err != nil {
		return nil, err
	}
	list, err := c.Dynamic.Resource(gvr).Namespace(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Errorf("listing ServiceExports%s: %w", where(scope), err)
	}
	var exports []mcsv1beta1.ServiceExport
	for i := range list.Items {
		if !scope.Wants(list.Items[i].GetName()) {
			continue
		}
		var e mcsv1beta1.ServiceExport
		if err := apply.FromUnstructured(&list.Items[i], &e); err != nil {
			return nil, c.Errorf("decoding ServiceExport %s/%s: %w", list.Items[i].GetNamespace(), list.Items[i].GetName(), err)
		}
		exports = append(exports, e)
	}
	return exports, nil
}

func listServices(ctx context.Context, c *clusterset.Cluster, scope Scope) ([]corev1.Service, error) {
	list, err := c.Kube.CoreV1().Services(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Errorf("listing Services%s: %w", where(scope), err)
	}
	return list.Items, nil
}

func listSlices(ctx context.Context, c *clusterset.Cluster, scope Scope, selector string) ([]discoveryv1.EndpointSlice, error) {
	list, err := c.Kube.DiscoveryV1().EndpointSlices(scope.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, c.Errorf("listing EndpointSlices%s: %w", where(scope), err)
	}
	return list.Items, nil
}

// SourceSliceSelector selects a source's own EndpointSlices: those of a
// Service, not made by kubectl mcs (a cluster can be a consumer too, and
// its mirrored slices must not be exported again).
var SourceSliceSelector = discoveryv1.LabelServiceName + "," + discoveryv1.LabelManagedBy + "!=" + reconcile.FieldManager

// BuildSource keeps, of a source's objects, the exports in scope and the
// Services and EndpointSlices of exported services.
func BuildSource(clusterID string, exports []mcsv1beta1.ServiceExport, services []corev1.Service, slices []discoveryv1.EndpointSlice, scope Scope) reconcile.Source {
	src := reconcile.Source{ClusterID: clusterID}
	exported := map[[2]string]bool{}
	for _, e := range exports {
		if scope.covers(e.Namespace, e.Name) {
			src.Exports = append(src.Exports, e)
			exported[[2]string{e.Namespace, e.Name}] = true
		}
	}
	for _, s := range services {
		if exported[[2]string{s.Namespace, s.Name}] {
			src.Services = append(src.Services, s)
		}
	}
	for _, s := range slices {
		if s.Labels[discoveryv1.LabelManagedBy] != reconcile.FieldManager && exported[[2]string{s.Namespace, s.Labels[discoveryv1.LabelServiceName]}] {
			src.EndpointSlices = append(src.EndpointSlices, s)
		}
	}
	return src
}

// ReadConsumer lists what the consumer holds in scope: its namespaces, all
// ServiceImports, the Services whose names a derived Service could take, and
// the EndpointSlices not made by its own endpointslice controller (ours, and
// any that could stand in the way of ours).
func ReadConsumer(ctx context.Context, c *clusterset.Cluster, scope Scope) (reconcile.Consumer, error) {
	var namespaces []string
	var imports []mcsv1beta1.ServiceImport
	var services []corev1.Service
	var slicesList []discoveryv1.EndpointSlice
	nsErr := make(chan error, 1)
	// The four reads at once: one round trip (two when the MCS version is
	// not in the discovery cache yet).
	err := together(
		func() (err error) {
			namespaces, err = readNamespaces(ctx, c, scope)
			nsErr <- err
			return err
		},
		func() (err error) { imports, err = listImports(ctx, c, scope); return err },
		func() (err error) { services, err = listServices(ctx, c, scope); return err },
		func() (err error) {
			slicesList, err = listSlices(ctx, c, scope, ConsumerSliceSelector)
			return err
		},
	)
	if <-nsErr == nil && len(namespaces) == 0 {
		// Nothing can be imported here; what the other lists said (the
		// MCS API not installed, say) does not matter.
		return reconcile.Consumer{ClusterID: c.ID}, nil
	}
	if err != nil {
		return reconcile.Consumer{ClusterID: c.ID}, err
	}
	return BuildConsumer(c.ID, namespaces, imports, services, slicesList, scope), nil
}

func readNamespaces(ctx context.Context, c *clusterset.Cluster, scope Scope) ([]string, error) {
	if scope.Namespace != "" {
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, scope.Namespace, metav1.GetOptions{})
		switch {
		case err == nil:
			return []string{scope.Namespace}, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		default:
			return nil, c.Errorf("reading namespace %s: %w", scope.Namespace, err)
		}
	}
	list, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Errorf("listing namespaces: %w", err)
	}
	var namespaces []string
	for _, ns := range list.Items {
		namespaces = append(namespaces, ns.Name)
	}
	return namespaces, nil
}

func listImports(ctx context.Context, c *clusterset.Cluster, scope Scope) ([]mcsv1beta1.ServiceImport, error) {
	gvr, err := c.MCSResource(clusterset.ServiceImports)
	if err != nil {
		return nil, err
	}
	list, err := c.Dynamic.Resource(gvr).Namespace(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Errorf("listing ServiceImports%s: %w", where(scope), err)
	}
	var imports []mcsv1beta1.ServiceImport
	for i := range list.Items {
		var si mcsv1beta1.ServiceImport
		if err := apply.FromUnstructured(&list.Items[i], &si); err != nil {
			return nil, c.Errorf("decoding ServiceImport %s/%s: %w", list.Items[i].GetNamespace(), list.Items[i].GetName(), err)
		}
		imports = append(imports, si)
	}
	return imports, nil
}

// ConsumerSliceSelector leaves out the slices of the cluster's own
// endpointslice controller, the bulk of them: none can be ours or carry one
// of our names.
var ConsumerSliceSelector = discoveryv1.LabelManagedBy + "!=" + controllerManagedBy

// BuildConsumer keeps, of a consumer's objects, what the sync of the scope
// needs: imports in scope, Services that are or could collide with derived
// ones, our slices and slices whose names could collide with ours.
func BuildConsumer(clusterID string, namespaces []string, imports []mcsv1beta1.ServiceImport, services []corev1.Service, slices []discoveryv1.EndpointSlice, scope Scope) reconcile.Consumer {
	con := reconcile.Consumer{ClusterID: clusterID}
	for _, ns := range namespaces {
		if scope.Namespace == "" || ns == scope.Namespace {
			con.Namespaces = append(con.Namespaces, ns)
		}
	}
	for _, si := range imports {
		if scope.covers(si.Namespace, si.Name) {
			con.Imports = append(con.Imports, si)
		}
	}
	for _, s := range services {
		if scope.coversNamespace(s.Namespace) && scope.wantsDerived(s.Name) && (s.Labels[reconcile.ManagedByLabel] == reconcile.FieldManager || strings.HasPrefix(s.Name, derivedPrefix)) {
			con.Services = append(con.Services, s)
		}
	}
	for _, s := range slices {
		if !scope.coversNamespace(s.Namespace) {
			continue
		}
		ours := s.Labels[discoveryv1.LabelManagedBy] == reconcile.FieldManager
		if ours && scope.Wants(s.Labels[mcsv1beta1.LabelServiceName]) || !ours && strings.HasPrefix(s.Name, derivedPrefix) && scope.wantsDerivedSlice(s.Name) {
			con.EndpointSlices = append(con.EndpointSlices, s)
		}
	}
	return con
}

// derivedPrefix starts every derived Service name and so every mirrored
// EndpointSlice name.
var derivedPrefix = reconcile.DerivedServiceName("")

// controllerManagedBy is the managed-by value of kube-controller-manager's
// endpointslice controller.
const controllerManagedBy = "endpointslice-controller.k8s.io"

func where(scope Scope) string {
	if scope.Namespace == "" {
		return " in all namespaces"
	}
	return " in namespace " + scope.Namespace
}
