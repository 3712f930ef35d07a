package clusterset

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ClusterPropertyGroup and ClusterIDProperty are KEP-2149's: a cluster-scoped
// ClusterProperty named cluster.clusterset.k8s.io whose spec.value is the id.
const (
	ClusterPropertyGroup = "about.k8s.io"
	ClusterIDProperty    = "cluster.clusterset.k8s.io"
	// legacyClusterIDProperty is the name older drafts of the KEP used.
	legacyClusterIDProperty = "id.k8s.io"
)

// ResolveID sets the cluster's MCS id: the ClusterProperty where the
// cluster has one, else the context name. Either way it must be a DNS label,
// because it becomes part of <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local.
func (c *Cluster) ResolveID(ctx context.Context) error {
	id, source, err := c.clusterPropertyID(ctx)
	if err != nil {
		return c.Wrap(err)
	}
	if id == "" {
		id, source = c.Context, "the context name (no ClusterProperty "+ClusterIDProperty+")"
	}
	if err := ValidateClusterID(id); err != nil {
		return c.Errorf("cluster id %q (from %s) is not a valid DNS label: %v; "+
			"create ClusterProperty %s with a DNS-label value, or use a context name that is one", id, source, err, ClusterIDProperty)
	}
	c.ID, c.IDSource = id, source
	return nil
}

func (c *Cluster) clusterPropertyID(ctx context.Context) (id, source string, err error) {
	// One LIST rather than discovery plus GETs: about.k8s.io is often
	// installed after kubectl's discovery cache was filled, and a cluster
	// without it answers 404 just as fast.
	gvr := schema.GroupVersionResource{Group: ClusterPropertyGroup, Version: "v1alpha1", Resource: "clusterproperties"}
	list, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	for _, name := range []string{ClusterIDProperty, legacyClusterIDProperty} {
		for _, obj := range list.Items {
			if obj.GetName() == name {
				value, _, _ := unstructured.NestedString(obj.Object, "spec", "value")
				return value, fmt.Sprintf("ClusterProperty %s", name), nil
			}
		}
	}
	return "", "", nil
}

// servedVersion returns the preferred served version of group that has the
// resource, from the disk-cached discovery; "" if none does.
func (c *Cluster) servedVersion(group, resource string) (string, error) {
	groups, err := c.Discovery.ServerGroups()
	if err != nil {
		return "", err
	}
	for _, g := range groups.Groups {
		if g.Name != group {
			continue
		}
		versions := make([]string, 0, len(g.Versions))
		for _, v := range g.Versions {
			versions = append(versions, v.Version)
		}
		// Newest first: the preferred version, then by Kubernetes version order.
		slices.SortStableFunc(versions, func(a, b string) int {
			if a == g.PreferredVersion.Version {
				return -1
			}
			if b == g.PreferredVersion.Version {
				return 1
			}
			return -compareKubeVersions(a, b)
		})
		for _, v := range versions {
			list, err := c.Discovery.ServerResourcesForGroupVersion(group + "/" + v)
			if err != nil {
				continue
			}
			for _, r := range list.APIResources {
				if r.Name == resource {
					return v, nil
				}
			}
		}
	}
	return "", nil
}
