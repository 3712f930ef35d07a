// Package snapshot reads what the reconcile library needs from real
// clusters: per source its ServiceExports, Services and EndpointSlices, per
// consumer its namespaces, ServiceImports, Services and the EndpointSlices
// that may be ours, each with one list request per kind.
package snapshot

import (
	"context"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
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

func (s Scope) wants(name string) bool {
	return len(s.Services) == 0 || slices.Contains(s.Services, name)
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

// ReadSource lists a source cluster's exports, Services and EndpointSlices
// in scope. The slices are the cluster's own (made by its endpointslice
// controller or anyone but kubectl mcs), since a cluster can be a consumer
// too and its mirrored slices must not be exported again.
func ReadSource(ctx context.Context, c *clusterset.Cluster, scope Scope) (reconcile.Source, error) {
	src := reconcile.Source{ClusterID: c.ID}
	gvr, err := c.MCSResource(clusterset.ServiceExports)
	if err != nil {
		return src, err
	}
	exports, err := c.Dynamic.Resource(gvr).Namespace(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return src, c.Errorf("listing ServiceExports%s: %w", where(scope), err)
	}
	for i := range exports.Items {
		if !scope.wants(exports.Items[i].GetName()) {
			continue
		}
		var e mcsv1beta1.ServiceExport
		if err := apply.FromUnstructured(&exports.Items[i], &e); err != nil {
			return src, c.Errorf("decoding ServiceExport %s/%s: %w", exports.Items[i].GetNamespace(), exports.Items[i].GetName(), err)
		}
		src.Exports = append(src.Exports, e)
	}
	if len(src.Exports) == 0 {
		return src, nil
	}
	services, err := c.Kube.CoreV1().Services(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return src, c.Errorf("listing Services%s: %w", where(scope), err)
	}
	exported := map[[2]string]bool{}
	for _, e := range src.Exports {
		exported[[2]string{e.Namespace, e.Name}] = true
	}
	for _, s := range services.Items {
		if exported[[2]string{s.Namespace, s.Name}] {
			src.Services = append(src.Services, s)
		}
	}
	notOurs, _ := labels.NewRequirement(discoveryv1.LabelManagedBy, selection.NotEquals, []string{reconcile.FieldManager})
	hasService, _ := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	slicesList, err := c.Kube.DiscoveryV1().EndpointSlices(scope.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.NewSelector().Add(*hasService, *notOurs).String(),
	})
	if err != nil {
		return src, c.Errorf("listing EndpointSlices%s: %w", where(scope), err)
	}
	for _, s := range slicesList.Items {
		if exported[[2]string{s.Namespace, s.Labels[discoveryv1.LabelServiceName]}] {
			src.EndpointSlices = append(src.EndpointSlices, s)
		}
	}
	return src, nil
}

// ReadConsumer lists what the consumer holds in scope: its namespaces, all
// ServiceImports, the Services whose names a derived Service could take, and
// the EndpointSlices not made by its own endpointslice controller (ours, and
// any that could stand in the way of ours).
func ReadConsumer(ctx context.Context, c *clusterset.Cluster, scope Scope) (reconcile.Consumer, error) {
	con := reconcile.Consumer{ClusterID: c.ID}
	if scope.Namespace != "" {
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, scope.Namespace, metav1.GetOptions{})
		switch {
		case err == nil:
			con.Namespaces = []string{scope.Namespace}
		case apierrors.IsNotFound(err):
		default:
			return con, c.Errorf("reading namespace %s: %w", scope.Namespace, err)
		}
	} else {
		list, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return con, c.Errorf("listing namespaces: %w", err)
		}
		for _, ns := range list.Items {
			con.Namespaces = append(con.Namespaces, ns.Name)
		}
	}
	if len(con.Namespaces) == 0 {
		return con, nil
	}
	gvr, err := c.MCSResource(clusterset.ServiceImports)
	if err != nil {
		return con, err
	}
	imports, err := c.Dynamic.Resource(gvr).Namespace(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return con, c.Errorf("listing ServiceImports%s: %w", where(scope), err)
	}
	for i := range imports.Items {
		if !scope.wants(imports.Items[i].GetName()) {
			continue
		}
		var si mcsv1beta1.ServiceImport
		if err := apply.FromUnstructured(&imports.Items[i], &si); err != nil {
			return con, c.Errorf("decoding ServiceImport %s/%s: %w", imports.Items[i].GetNamespace(), imports.Items[i].GetName(), err)
		}
		con.Imports = append(con.Imports, si)
	}
	services, err := c.Kube.CoreV1().Services(scope.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return con, c.Errorf("listing Services%s: %w", where(scope), err)
	}
	for _, s := range services.Items {
		if scope.wantsDerived(s.Name) && (s.Labels[reconcile.ManagedByLabel] == reconcile.FieldManager || strings.HasPrefix(s.Name, derivedPrefix)) {
			con.Services = append(con.Services, s)
		}
	}
	// The cluster's own endpointslice controller makes the bulk of its
	// slices; none of those can be ours or carry one of our names.
	notController, _ := labels.NewRequirement(discoveryv1.LabelManagedBy, selection.NotEquals, []string{controllerManagedBy})
	slicesList, err := c.Kube.DiscoveryV1().EndpointSlices(scope.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.NewSelector().Add(*notController).String(),
	})
	if err != nil {
		return con, c.Errorf("listing EndpointSlices%s: %w", where(scope), err)
	}
	for _, s := range slicesList.Items {
		ours := s.Labels[discoveryv1.LabelManagedBy] == reconcile.FieldManager
		if ours && scope.wants(s.Labels[mcsv1beta1.LabelServiceName]) {
			con.EndpointSlices = append(con.EndpointSlices, s)
		} else if !ours && strings.HasPrefix(s.Name, derivedPrefix) {
			con.EndpointSlices = append(con.EndpointSlices, s)
		}
	}
	return con, nil
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
