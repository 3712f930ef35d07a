// Command kubectl is upstream kubectl (k8s.io/kubectl at the Kubernetes
// version the local clusters run), for the tests that check how kubectl
// finds the plugin on PATH, runs it and completes its arguments.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	// Exec and OIDC credentials, as in the released kubectl.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	// kubectl builds its command tree (and hands off to plugins) before
	// cobra parses -v, so set the verbosity first, as kubectl's own main does.
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
