// Package completion computes what TAB offers on a kubectl mcs command line:
// contexts, kubeconfig clusters and users, namespaces, and the services each
// verb's arguments can name, read from the kubeconfig and the clusters with
// the connection flags already typed. A failure offers nothing and never
// prints: it goes to cobra's debug log.
package completion

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// requestTimeout bounds each request a completion makes to a cluster
// (unless --request-timeout says otherwise): a TAB press must come back even
// when a cluster is down or black-holed.
const requestTimeout = 5 * time.Second

// Register gives every verb of the tree its dynamic completions. It walks
// the finished tree, so call it after the last verb is added; a verb that
// registered its own completion keeps it. quietLogs silences client-go's own
// logging while a completion reads a cluster.
func Register(root *cobra.Command, loader *clusterset.Loader, quietLogs func()) {
	c := &completer{loader: loader, quietLogs: quietLogs}
	registerFlagCompletion(root, "context", c.contexts)
	registerFlagCompletion(root, "cluster", c.kubeconfigClusters)
	registerFlagCompletion(root, "user", c.kubeconfigUsers)
	registerFlagCompletion(root, "namespace", c.namespaces)
	walkCommands(root, func(cmd *cobra.Command) {
		for _, name := range []string{"from", "clusters"} {
			if cmd.LocalNonPersistentFlags().Lookup(name) != nil {
				registerFlagCompletion(cmd, name, c.contextList)
			}
		}
		if cmd.ValidArgsFunction != nil || cmd.ValidArgs != nil {
			return
		}
		if names, ok := serviceArguments[cmd.Name()]; ok && cmd.Parent() == root {
			cmd.ValidArgsFunction = c.services(names)
			return
		}
		// No verb takes file names: without this, TAB after a verb that
		// takes no arguments would offer the files of the directory.
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	})
}

// serviceArguments says, per verb, which services its SERVICE arguments can
// name, so TAB offers only names the verb would accept.
var serviceArguments = map[string]func(*clusterQuery) ([]string, error){
	"export":   (*clusterQuery).exportableServices,
	"unexport": (*clusterQuery).exportedServices,
	"import":   (*clusterQuery).importableServices,
	"status":   (*clusterQuery).clustersetServices,
	"resolve":  (*clusterQuery).clustersetServices,
}

// registerFlagCompletion registers fn for the flag unless the flag is
// missing or already has a completion.
func registerFlagCompletion(cmd *cobra.Command, flag string, fn cobra.CompletionFunc) {
	if cmd.Flag(flag) == nil {
		return
	}
	if _, ok := cmd.GetFlagCompletionFunc(flag); ok {
		return
	}
	// Cannot fail: the flag exists and has no completion yet.
	_ = cmd.RegisterFlagCompletionFunc(flag, fn)
}

func walkCommands(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, sub := range cmd.Commands() {
		walkCommands(sub, fn)
	}
}

// completer computes candidates from the kubeconfig and the clusters, with
// the connection flags already parsed from the command line being completed
// (--kubeconfig, --context, -n, ...). A failure yields no candidates and
// never an error message: it goes to cobra's debug log
// ($BASH_COMP_DEBUG_FILE), not into the user's prompt.
type completer struct {
	loader    *clusterset.Loader
	quietLogs func()
}

func (c *completer) contexts(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	names, err := c.loader.Contexts()
	if err != nil {
		return noCandidates(err)
	}
	return candidatesWithPrefix(names, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
}

// contextList completes a comma-separated list of contexts (--from,
// --clusters): the entry after the last comma, keeping the entries before
// it and leaving out the contexts they already name.
func (c *completer) contextList(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	names, err := c.loader.Contexts()
	if err != nil {
		return noCandidates(err)
	}
	done, current := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done, current = toComplete[:i+1], toComplete[i+1:]
	}
	var out []string
	for _, name := range candidatesWithPrefix(names, current, splitContextList(done)) {
		out = append(out, done+name)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (c *completer) kubeconfigClusters(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	raw, err := c.loader.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return noCandidates(err)
	}
	return candidatesWithPrefix(keysOf(raw.Clusters), toComplete, nil), cobra.ShellCompDirectiveNoFileComp
}

func (c *completer) kubeconfigUsers(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	raw, err := c.loader.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return noCandidates(err)
	}
	return candidatesWithPrefix(keysOf(raw.AuthInfos), toComplete, nil), cobra.ShellCompDirectiveNoFileComp
}

// namespaces lists the namespaces of the current context's cluster.
func (c *completer) namespaces(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	q, err := c.query(cmd)
	if err != nil {
		return noCandidates(err)
	}
	defer q.cancel()
	list, err := q.home.Kube.CoreV1().Namespaces().List(q.ctx, metav1.ListOptions{})
	if err != nil {
		return noCandidates(err)
	}
	names := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return candidatesWithPrefix(names, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
}

// services completes SERVICE arguments with the names list returns, minus
// those already on the command line.
func (c *completer) services(list func(*clusterQuery) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		q, err := c.query(cmd)
		if err != nil {
			return noCandidates(err)
		}
		defer q.cancel()
		names, err := list(q)
		if err != nil {
			return noCandidates(err)
		}
		return candidatesWithPrefix(names, toComplete, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// query connects the current context for one completion, with a bounded
// request timeout.
func (c *completer) query(cmd *cobra.Command) (*clusterQuery, error) {
	c.quietLogs()
	if t := c.loader.Flags.Timeout; t != nil && (*t == "" || *t == "0") {
		*t = requestTimeout.String()
	}
	current, err := c.loader.CurrentContext()
	if err != nil {
		return nil, err
	}
	// Connect only builds clients; unlike the verbs, completion skips
	// resolving the cluster id, which would cost a request.
	home, err := c.loader.Connect(current)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	q := &clusterQuery{ctx: ctx, cancel: cancel, loader: c.loader, cmd: cmd, home: home, namespace: home.Namespace}
	if all, err := cmd.Flags().GetBool("all-namespaces"); err == nil && all {
		q.namespace = metav1.NamespaceAll
	}
	return q, nil
}

// clusterQuery reads names for one completion: in the namespace of the
// command line (-n, else the context's; every namespace with -A).
type clusterQuery struct {
	ctx       context.Context
	cancel    context.CancelFunc
	loader    *clusterset.Loader
	cmd       *cobra.Command
	home      *clusterset.Cluster
	namespace string
}

// exportableServices are the current cluster's Services that export
// accepts: all but ExternalName ones.
func (q *clusterQuery) exportableServices() ([]string, error) {
	list, err := q.home.Kube.CoreV1().Services(q.namespace).List(q.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, svc := range list.Items {
		if reconcile.Exportable(&svc) {
			names = append(names, svc.Name)
		}
	}
	return names, nil
}

// exportedServices are the current cluster's ServiceExports.
func (q *clusterQuery) exportedServices() ([]string, error) {
	return q.mcsNames(q.home, clusterset.ServiceExports)
}

// importableServices are what the --from clusters export; before --from is
// given, the services already imported here (the usual re-run).
func (q *clusterQuery) importableServices() ([]string, error) {
	sources := splitContextList(q.flag("from"))
	if len(sources) == 0 {
		return q.mcsNames(q.home, clusterset.ServiceImports)
	}
	return q.acrossContexts(sources, clusterset.ServiceExports)
}

// clustersetServices are the services exported or imported in the
// --clusters contexts, else in the current context alone: asking every
// context of a large kubeconfig would make TAB slow.
func (q *clusterQuery) clustersetServices() ([]string, error) {
	contexts := splitContextList(q.flag("clusters"))
	if len(contexts) == 0 {
		contexts = []string{q.home.Context}
	}
	return q.acrossContexts(contexts, clusterset.ServiceExports, clusterset.ServiceImports)
}

func (q *clusterQuery) flag(name string) string {
	if f := q.cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// acrossContexts lists MCS objects of the given kinds in several contexts
// in parallel. Names found anywhere count; a cluster that fails is left out
// unless all fail.
func (q *clusterQuery) acrossContexts(contexts []string, resources ...string) ([]string, error) {
	var clusters []*clusterset.Cluster
	for _, name := range contexts {
		if name == q.home.Context {
			clusters = append(clusters, q.home)
			continue
		}
		c, err := q.loader.Connect(name)
		if err != nil {
			cobra.CompDebugln(err.Error(), false)
			continue
		}
		clusters = append(clusters, c)
	}
	var mu sync.Mutex
	var names []string
	errs := clusterset.ForEach(q.ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		for _, resource := range resources {
			found, err := q.mcsNames(c, resource)
			if err != nil {
				return err
			}
			mu.Lock()
			names = append(names, found...)
			mu.Unlock()
		}
		return nil
	})
	failures := 0
	for _, err := range errs {
		if err != nil {
			cobra.CompDebugln(err.Error(), false)
			failures++
		}
	}
	if len(clusters) == 0 || failures == len(clusters) {
		return nil, fmt.Errorf("no cluster of %s could be read", strings.Join(contexts, ","))
	}
	return names, nil
}

// mcsNames lists the names of one MCS resource in a cluster, in the
// version it serves.
func (q *clusterQuery) mcsNames(c *clusterset.Cluster, resource string) ([]string, error) {
	gvr, err := c.MCSResource(resource)
	if err != nil {
		return nil, err
	}
	list, err := c.Dynamic.Resource(gvr).Namespace(q.namespace).List(q.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Wrap(err)
	}
	names := make([]string, 0, len(list.Items))
	for _, item := range list.Items {
		names = append(names, item.GetName())
	}
	return names, nil
}

// candidatesWithPrefix returns the sorted, distinct names that start with prefix,
// leaving out those in exclude (already given on the command line).
func candidatesWithPrefix(names []string, prefix string, exclude []string) []string {
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, prefix) && !slices.Contains(exclude, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitContextList splits a comma-separated flag value leniently: while the user
// is still typing, empty entries are not errors.
func splitContextList(value string) []string {
	var out []string
	for _, part := range strings.Split(value, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// noCandidates ends a completion that could not read what it needed: no
// candidates, no file names, and the reason in cobra's debug log only.
func noCandidates(err error) ([]string, cobra.ShellCompDirective) {
	cobra.CompDebugln(err.Error(), false)
	return nil, cobra.ShellCompDirectiveNoFileComp
}
