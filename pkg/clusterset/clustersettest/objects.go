package clustersettest

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// Created is the creation time of every object built here: fixed, so that
// conditions and precedence are the same on every run.
var Created = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

// Namespace is a namespace.
func Namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// Service is a ClusterIP Service (headless: clusterIP None) with one port,
// http 80/TCP, selecting app=name.
func Service(namespace, name string, headless bool) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, CreationTimestamp: Created, UID: types.UID("uid-svc-" + namespace + "-" + name)},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			Selector:   map[string]string{"app": name},
			Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
		},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	} else {
		svc.Spec.ClusterIP = "10.0.0.10"
		svc.Spec.ClusterIPs = []string{"10.0.0.10"}
	}
	return svc
}

// Export is the ServiceExport of a service.
func Export(namespace, name string) *mcsv1beta1.ServiceExport {
	return &mcsv1beta1.ServiceExport{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: "ServiceExport"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, CreationTimestamp: Created},
	}
}

// Slice is the EndpointSlice the endpointslice controller keeps for a
// Service, with one ready endpoint per address (hostnames name-0, ...).
func Slice(namespace, service string, addresses ...string) *discoveryv1.EndpointSlice {
	port, proto := int32(8080), corev1.ProtocolTCP
	portName := "http"
	s := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: service + "-abcde", CreationTimestamp: Created, Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}},
	}
	for i, a := range addresses {
		ready := true
		host := fmt.Sprintf("%s-%d", service, i)
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Hostname: &host, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

// Exported is a service with its export and one EndpointSlice.
func Exported(namespace, name string, headless bool, addresses ...string) []runtime.Object {
	return []runtime.Object{Export(namespace, name), Service(namespace, name, headless), Slice(namespace, name, addresses...)}
}

// Mirrored is an EndpointSlice kubectl mcs mirrored from sourceCluster into
// a consumer, with one ready endpoint.
func Mirrored(namespace, service, sourceCluster string, addressType discoveryv1.AddressType, address string) *discoveryv1.EndpointSlice {
	derived := reconcile.DerivedServiceName(service)
	ready := true
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: reconcile.EndpointSliceName(derived, sourceCluster, addressType, 0), CreationTimestamp: Created,
			Labels: map[string]string{
				discoveryv1.LabelServiceName:  derived,
				discoveryv1.LabelManagedBy:    reconcile.FieldManager,
				mcsv1beta1.LabelServiceName:   service,
				mcsv1beta1.LabelSourceCluster: sourceCluster,
			}},
		AddressType: addressType,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{address}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
}
