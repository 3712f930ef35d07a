// Package image builds the in-cluster image of kubectl mcs with hack/image
// (no container engine) and checks it: what it holds, that two builds give
// one digest, and, as root, that it runs as deploy/in-cluster/kubectl-mcs.yaml
// would run it (the Deployment's arguments, user, read-only root, volumes,
// environment and probes) against real local clusters. `go test -short`
// skips it.
package image

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The test binary is also the container's init (see container_test.go):
	// it sets up the mounts in a mount namespace of its own and becomes
	// the image's entrypoint.
	if spec := os.Getenv(containerSpecEnv); spec != "" {
		runContainer(spec)
		return
	}
	code := m.Run()
	removeSharedImage()
	os.Exit(code)
}
