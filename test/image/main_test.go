// Package image builds the in-cluster image of kubectl mcs with hack/image
// (no container engine) and checks it: what it holds, that two builds give
// one digest, and, as root, that it runs as deploy/in-cluster/kubectl-mcs.yaml
// would run it (the Deployment's arguments, user, read-only root, volumes,
// environment and probes) against real local clusters. `go test -short`
// skips it.
package image

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// clusters: three local clusters, started only where the run test can
// run (root, outside -short).
var clusters *localcluster.Set

func TestMain(m *testing.M) {
	// The test binary is also the container's init (see container.go):
	// it sets up the mounts in a mount namespace of its own and becomes
	// the image's entrypoint.
	if spec := os.Getenv(containerSpecEnv); spec != "" {
		runContainer(spec)
		return
	}
	flag.Parse()
	code := 0
	if !testing.Short() && os.Geteuid() != 0 {
		fmt.Println("image: running the image needs root (chroot, mounts); local clusters not started")
		code = m.Run()
	} else {
		code = pluginrun.Main(m, "image", localcluster.Options{Clusters: 3}, &clusters)
	}
	removeSharedImage()
	os.Exit(code)
}
