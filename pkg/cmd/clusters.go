// How verbs name clusters: the current context, a clusterset of contexts,
// and the namespace scope, the same way for every verb.

package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// ClustersEnv is the environment variable that names the clusterset (a
// comma-separated list of kubeconfig contexts) when --clusters is not given.
const ClustersEnv = "KUBECTL_MCS_CLUSTERS"

// clustersetContexts resolves the clusterset and says where it came from.
func clustersetContexts(loader *clusterset.Loader, flagValue string, given bool, getenv func(string) string) ([]string, string, error) {
	if given {
		names, err := clusterset.ParseContextList("clusters", flagValue)
		return names, "--clusters", err
	}
	if env := getenv(ClustersEnv); env != "" {
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
