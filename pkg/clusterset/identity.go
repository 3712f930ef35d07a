package clusterset

import (
	"context"
	"fmt"
	"io"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
)

// ClusterPropertyGroup and ClusterIDProperty are KEP-2149's: a cluster-scoped
// ClusterProperty named cluster.clusterset.k8s.io whose spec.value is the id.
const (
	ClusterPropertyGroup = "about.k8s.io"
	ClusterIDProperty    = "cluster.clusterset.k8s.io"
	// ClusterProperties is the resource of the ClusterProperty CRD.
	ClusterProperties = "clusterproperties"
	// legacyClusterIDProperty is the name older drafts of the KEP used.
	legacyClusterIDProperty = "id.k8s.io"
)

// clusterPropertyVersions are the versions about-api has published, newest
// first: the current CRD serves only v1beta1, older installs v1alpha1.
var clusterPropertyVersions = []string{"v1beta1", "v1alpha1"}

// ResolveID sets the cluster's MCS id: the ClusterProperty where the
// cluster has one, else the context name. Either way it must be a DNS label,
// because it becomes part of <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local.
//
// IDSource says where the id came from, e.g. "ClusterProperty
// cluster.clusterset.k8s.io (about.k8s.io/v1beta1)" or "the context name (no
// ClusterProperty CRD)". When the cluster serves the ClusterProperty CRD but
// the id could not be read from it, the fallback to the context name is not
// silent: IDSource says why, and a warning goes to the Loader's Warnings.
func (c *Cluster) ResolveID(ctx context.Context) error {
	found, err := c.clusterPropertyID(ctx)
	if err != nil {
		return c.Wrap(err)
	}
	id, source := found.id, found.source
	if id == "" {
		id, source = c.Context, "the context name ("+found.missing+")"
		if found.version != "" && c.warnings != nil {
			fmt.Fprintf(c.warnings, "Warning: %s: using the context name %q as cluster id: %s\n", c.Context, c.Context, found.missing)
		}
	}
	if err := ValidateClusterID(id); err != nil {
		return c.Errorf("cluster id %q (from %s) is not a valid DNS label: %v; "+
			"create ClusterProperty %s with a DNS-label value, or use a context name that is one", id, source, err, ClusterIDProperty)
	}
	c.ID, c.IDSource = id, source
	klog.V(1).Infof("%s: cluster id %q from %s", c.Context, id, source)
	return nil
}

// propertyID is what the ClusterProperty CRD gave: the id and its source,
// or why there is none (missing). version is the CRD version read, "" when
// the cluster does not serve the CRD.
type propertyID struct {
	id, source, missing, version string
}

func (c *Cluster) clusterPropertyID(ctx context.Context) (propertyID, error) {
	versions, err := c.clusterPropertyVersions(ctx)
	if err != nil {
		return propertyID{}, err
	}
	if len(versions) == 0 {
		return propertyID{missing: "no ClusterProperty CRD"}, nil
	}
	var list *unstructured.UnstructuredList
	var version string
	for _, v := range versions {
		gvr := schema.GroupVersionResource{Group: ClusterPropertyGroup, Version: v, Resource: ClusterProperties}
		list, err = c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			// The group is served, this version of it is not (any more).
			continue
		}
		version = v
		break
	}
	gv := ClusterPropertyGroup + "/" + version
	switch {
	case version == "":
		return propertyID{missing: "no ClusterProperty CRD"}, nil
	case apierrors.IsForbidden(err):
		return propertyID{version: version, missing: fmt.Sprintf("ClusterProperty %s is served but listing it is forbidden "+
			"(grant list on clusterproperties.%s, or create ClusterProperty %s)", gv, ClusterPropertyGroup, ClusterIDProperty)}, nil
	case err != nil:
		return propertyID{}, err
	}
	for _, name := range []string{ClusterIDProperty, legacyClusterIDProperty} {
		for _, obj := range list.Items {
			if obj.GetName() == name {
				value, _, _ := unstructured.NestedString(obj.Object, "spec", "value")
				return propertyID{id: value, version: version, source: fmt.Sprintf("ClusterProperty %s (%s)", name, gv)}, nil
			}
		}
	}
	return propertyID{version: version, missing: fmt.Sprintf("ClusterProperty %s is served but has no %s", gv, ClusterIDProperty)}, nil
}

// clusterPropertyVersions lists the served versions of the ClusterProperty
// CRD, newest first; none when the cluster does not serve it. The disk
// cache answers first (no request); a cache that does not know the group
// may predate the CRD, so one GET of the group settles it rather than a
// full rediscovery on every run in clusters that never had the CRD.
func (c *Cluster) clusterPropertyVersions(ctx context.Context) ([]string, error) {
	served, err := c.servedVersions(ClusterPropertyGroup, ClusterProperties)
	if err != nil {
		return nil, err
	}
	if len(served) > 0 {
		// Newest first whatever the group prefers; then the other known
		// versions, in case the cache is behind a CRD upgrade.
		sortNewestFirst(served, "")
		for _, v := range clusterPropertyVersions {
			if !slices.Contains(served, v) {
				served = append(served, v)
			}
		}
		return served, nil
	}
	if c.Discovery.Fresh() {
		return nil, nil
	}
	rc := c.Discovery.RESTClient()
	if rc == nil {
		return nil, nil
	}
	var group metav1.APIGroup
	err = rc.Get().AbsPath("/apis", ClusterPropertyGroup).Do(ctx).Into(&group)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	served = nil
	for _, gv := range group.Versions {
		served = append(served, gv.Version)
	}
	sortNewestFirst(served, "")
	return served, nil
}

// SetWarnings sets where ResolveID warns about a cluster id taken from the
// context name although the cluster serves the ClusterProperty CRD.
func (c *Cluster) SetWarnings(w io.Writer) { c.warnings = w }

// sortNewestFirst orders API versions: the preferred one (if any), then by
// Kubernetes version order (v1 > v1beta2 > v1beta1 > v1alpha1).
func sortNewestFirst(versions []string, preferred string) {
	slices.SortStableFunc(versions, func(a, b string) int {
		if a == preferred {
			return -1
		}
		if b == preferred {
			return 1
		}
		return -compareKubeVersions(a, b)
	})
}

// servedVersion returns the preferred served version of group that has the
// resource, from the disk-cached discovery; "" if none does.
func (c *Cluster) servedVersion(group, resource string) (string, error) {
	versions, err := c.servedVersions(group, resource)
	if err != nil || len(versions) == 0 {
		return "", err
	}
	return versions[0], nil
}

// servedVersions returns the served versions of group that have the
// resource, the preferred one first, from the disk-cached discovery.
func (c *Cluster) servedVersions(group, resource string) ([]string, error) {
	groups, err := c.Discovery.ServerGroups()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range groups.Groups {
		if g.Name != group {
			continue
		}
		versions := make([]string, 0, len(g.Versions))
		for _, v := range g.Versions {
			versions = append(versions, v.Version)
		}
		sortNewestFirst(versions, g.PreferredVersion.Version)
		for _, v := range versions {
			list, err := c.Discovery.ServerResourcesForGroupVersion(group + "/" + v)
			if err != nil {
				continue
			}
			if slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == resource }) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}
