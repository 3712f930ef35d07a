// Command kubectl-mcs is the kubectl plugin for Kubernetes Multi-Cluster
// Services: `kubectl mcs export|import|status|resolve ...`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(cmd.Execute(cmd.NewCmdMCS(streams), streams))
}
