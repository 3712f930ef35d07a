// Package e2e runs kubectl mcs against real local clusters (etcd,
// kube-apiserver, kube-controller-manager, CoreDNS built from the Go module
// proxy by `make tools`). `go test -short` skips it.
package e2e

import (
	"os"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// clusters is the three-cluster set most tests share: cluster1 (and
// cluster3) provide, cluster2 consumes. Tests use their own namespaces.
// Where the machine allows (root), the set has a data plane, and the
// connectivity tests connect through the names the MCS objects make.
var clusters *localcluster.Set

func TestMain(m *testing.M) {
	os.Exit(pluginrun.Main(m, "e2e", localcluster.Options{Clusters: 3, DataPlane: pluginrun.WantDataPlane()}, &clusters))
}

// needClusters skips in -short mode, where TestMain started nothing.
func needClusters(t *testing.T) *localcluster.Set { return pluginrun.NeedClusters(t, clusters, "e2e") }
