package e2e

import (
	"context"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// mcsEndpoint is one endpoint of an MCS EndpointSlice in a consumer, with
// the labels of its slice that the tests check.
type mcsEndpoint struct {
	slice     string
	source    string // multicluster.kubernetes.io/source-cluster
	managedBy string // endpointslice.kubernetes.io/managed-by
	service   string // kubernetes.io/service-name: the derived Service
	address   string
	hostname  string
	ready     bool // a nil ready condition counts as ready, as for consumers
}

// mcsEndpoints lists the endpoints of every MCS EndpointSlice of service in
// c (slices labeled multicluster.kubernetes.io/service-name), from source
// only unless source is empty. A slice without endpoints yields one entry
// with no address, so its labels are still seen.
func mcsEndpoints(ctx context.Context, c *localcluster.Cluster, ns, service, source string) ([]mcsEndpoint, error) {
	selector := mcsv1beta1.LabelServiceName + "=" + service
	if source != "" {
		selector += "," + mcsv1beta1.LabelSourceCluster + "=" + source
	}
	list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []mcsEndpoint
	for _, s := range list.Items {
		base := mcsEndpoint{
			slice:     s.Name,
			source:    s.Labels[mcsv1beta1.LabelSourceCluster],
			managedBy: s.Labels[discoveryv1.LabelManagedBy],
			service:   s.Labels[discoveryv1.LabelServiceName],
		}
		if len(s.Endpoints) == 0 {
			out = append(out, base)
		}
		for _, ep := range s.Endpoints {
			e := base
			if len(ep.Addresses) > 0 {
				e.address = ep.Addresses[0]
			}
			if ep.Hostname != nil {
				e.hostname = *ep.Hostname
			}
			e.ready = ep.Conditions.Ready == nil || *ep.Conditions.Ready
			out = append(out, e)
		}
	}
	return out, nil
}
