package clusterset

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// MCSGroup is the Multi-Cluster Services API group.
const MCSGroup = mcsv1beta1.GroupName

// Resources of the MCS API.
const (
	ServiceExports = "serviceexports"
	ServiceImports = "serviceimports"
)

// MCSVersion returns the newest version of the MCS API the cluster serves
// for both ServiceExport and ServiceImport (v1beta1 on mcs-api >= 0.4,
// v1alpha1 on older installs). A cluster without the CRDs is an error that
// says how to install them.
func (c *Cluster) MCSVersion() (string, error) {
	c.mcsOnce.Do(func() {
		c.mcsVersion, c.mcsErr = c.discoverMCSVersion()
		if c.mcsErr == nil && c.mcsVersion == "" {
			// The disk cache may predate the CRDs; ask the server once more.
			c.Discovery.Invalidate()
			c.mcsVersion, c.mcsErr = c.discoverMCSVersion()
		}
	})
	if c.mcsErr != nil {
		return "", c.Wrap(c.mcsErr)
	}
	if c.mcsVersion == "" {
		return "", c.Errorf("the MCS API (%s) is not served: the ServiceExport/ServiceImport CRDs are not installed "+
			"(install them with: kubectl mcs crds install --context %s)", MCSGroup, c.Context)
	}
	return c.mcsVersion, nil
}

func (c *Cluster) discoverMCSVersion() (string, error) {
	exports, err := c.servedVersion(MCSGroup, ServiceExports)
	if err != nil {
		return "", err
	}
	imports, err := c.servedVersion(MCSGroup, ServiceImports)
	if err != nil {
		return "", err
	}
	if exports == "" || imports == "" {
		return "", nil
	}
	if exports != imports {
		return "", fmt.Errorf("the MCS CRDs disagree: ServiceExport is served as %s but ServiceImport as %s "+
			"(reinstall both with: kubectl mcs crds install --context %s)", exports, imports, c.Context)
	}
	return exports, nil
}

// MCSResource returns the GVR of an MCS resource in the served version.
func (c *Cluster) MCSResource(resource string) (schema.GroupVersionResource, error) {
	v, err := c.MCSVersion()
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	return schema.GroupVersionResource{Group: MCSGroup, Version: v, Resource: resource}, nil
}

// compareKubeVersions orders API versions the Kubernetes way
// (v1 > v1beta2 > v1beta1 > v1alpha1).
func compareKubeVersions(a, b string) int {
	return version.CompareKubeAwareVersionStrings(a, b)
}
