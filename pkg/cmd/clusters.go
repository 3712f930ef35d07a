// How verbs name clusters: the current context, a clusterset of contexts,
// and the namespace scope, the same way for every verb.

package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// ClustersEnv is the environment variable that names the clusterset (a
// comma-separated list of kubeconfig contexts) when --clusters is not given.
const ClustersEnv = "KUBECTL_MCS_CLUSTERS"

// clustersetFlag is --clusters, for the verbs that act on a clusterset
// (status, sync, check, resolve): the contexts it names, else
// $KUBECTL_MCS_CLUSTERS, else every context of the kubeconfig.
type clustersetFlag struct {
	value  string
	cmd    *cobra.Command
	getenv func(string) string
}

// addClustersetFlag binds --clusters; usage is what the verb uses the
// clusterset for.
func addClustersetFlag(cmd *cobra.Command, usage string) *clustersetFlag {
	f := &clustersetFlag{cmd: cmd, getenv: os.Getenv}
	cmd.Flags().StringVar(&f.value, "clusters", "", usage+" (default $"+ClustersEnv+", else all contexts).")
	return f
}

// contexts resolves the clusterset. When it does not come from --clusters,
// it says on log (unless nil) where it came from.
func (f *clustersetFlag) contexts(loader *clusterset.Loader, log io.Writer) ([]string, error) {
	names, origin, err := f.resolve(loader)
	if err == nil && log != nil && origin != "--clusters" {
		fmt.Fprintf(log, "Clusterset from %s: %s\n", origin, strings.Join(names, ", "))
	}
	return names, err
}

func (f *clustersetFlag) resolve(loader *clusterset.Loader) ([]string, string, error) {
	if f.cmd.Flags().Changed("clusters") {
		names, err := clusterset.ParseContextList("clusters", f.value)
		return names, "--clusters", err
	}
	if env := f.getenv(ClustersEnv); env != "" {
		names, err := clusterset.ParseContextList("clusters", env)
		if err != nil {
			return nil, "", fmt.Errorf("$%s: %w", ClustersEnv, err)
		}
		return names, "$" + ClustersEnv, nil
	}
	names, err := loader.Contexts()
	if err != nil {
		return nil, "", err
	}
	if len(names) == 0 {
		return nil, "", errors.New("the kubeconfig has no contexts (pass --kubeconfig, or --clusters)")
	}
	return names, "all contexts of the kubeconfig", nil
}

// kubeconfigNamespace is the namespace a clusterset verb reads without -A:
// -n, else the current context's namespace, else "default". It comes from
// the kubeconfig alone: no client is needed.
func kubeconfigNamespace(loader *clusterset.Loader) string {
	ns, _, err := loader.Flags.ToRawKubeConfigLoader().Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// connectCurrent connects the current context (--context, else the
// kubeconfig's) and resolves its cluster id.
func connectCurrent(ctx context.Context, loader *clusterset.Loader) (*clusterset.Cluster, error) {
	name, err := loader.CurrentContext()
	if err != nil {
		return nil, err
	}
	c, err := loader.Connect(name)
	if err != nil {
		return nil, err
	}
	if err := c.ResolveID(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// namespaceFlag is the -n the user gave, or "".
func namespaceFlag(loader *clusterset.Loader) string {
	if loader.Flags.Namespace == nil {
		return ""
	}
	return *loader.Flags.Namespace
}

// checkNamespaceScope rejects -n combined with -A.
func checkNamespaceScope(loader *clusterset.Loader, allNamespaces bool) error {
	if allNamespaces && namespaceFlag(loader) != "" {
		return errors.New("give -n NAMESPACE or -A, not both")
	}
	return nil
}
