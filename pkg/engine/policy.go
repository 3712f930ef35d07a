package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// Mode is how a verb syncs, as its flags say: the input of Policy.
type Mode struct {
	// NamedConsumer is true when the user named the consumer (import: the
	// current context); false for a clusterset-wide sync, where every
	// cluster imports what it has the namespace for.
	NamedConsumer bool
	// Watch keeps syncing until interrupted (--watch).
	Watch bool
	// CreateNamespace creates missing namespaces (--create-namespace).
	CreateNamespace bool
	// DryRun is any --dry-run other than none.
	DryRun bool
}

// Policy is what a sync does about a namespace missing in a consumer and a
// cluster that does not answer: decided here once, from the Mode, for
// import, sync and both --watch modes (docs/modes.md is its table).
//
//   - Missing namespace: a consumer the user named is expected to import
//     what was asked, so its missing namespace is an error naming the fix
//     (one-shot: nothing is written; watch: that service is not synced,
//     and is retried when the namespace appears). In a clusterset-wide
//     sync a cluster without the namespace is not a consumer of it
//     (KEP-1645 namespace sameness): it is skipped and named.
//     --create-namespace creates it in every mode.
//   - Unreachable at start: a one-shot run goes on without the cluster (its
//     endpoints already imported are kept) and exits 1 naming it; a watch
//     refuses to start, since it could not learn the cluster's id nor
//     start its informers, and would leave it out for the whole run.
//   - Lost during the run: a one-shot run treats it as unreachable at
//     start; a watch keeps its endpoints for --stale-ttl, then removes
//     them, and picks the cluster up when it answers again.
type Policy struct {
	MissingNamespaces MissingNamespaces
	// StartWithoutUnreachable: go on without a cluster unreachable at
	// start (and fail at the end); false: refuse to start.
	StartWithoutUnreachable bool
}

// PolicyFor decides the policy of a mode, or refuses a combination of
// flags that means nothing.
func PolicyFor(m Mode) (Policy, error) {
	if m.Watch && m.DryRun {
		return Policy{}, errors.New("--watch writes continuously; it cannot be combined with --dry-run")
	}
	p := Policy{StartWithoutUnreachable: !m.Watch}
	switch {
	case m.CreateNamespace:
		p.MissingNamespaces = CreateMissingNamespaces
	case m.NamedConsumer:
		p.MissingNamespaces = FailOnMissingNamespaces
	default:
		p.MissingNamespaces = SkipMissingNamespaces
	}
	return p, nil
}

// CheckStart applies the policy to the clusters that could not be reached
// at start: nil when the run may go on without them.
func (p Policy) CheckStart(unreachable []Unreachable) error {
	if len(unreachable) == 0 || p.StartWithoutUnreachable {
		return nil
	}
	names := make([]string, len(unreachable))
	errs := make([]error, len(unreachable))
	for i, u := range unreachable {
		names[i], errs[i] = u.Cluster.Context, u.Err
	}
	return fmt.Errorf("--watch did not start: %s cannot be reached: %w; it starts once every cluster answers (while running, it keeps an unreachable source's endpoints for --stale-ttl and picks the cluster up again)",
		strings.Join(names, ", "), errors.Join(errs...))
}

// SetAside sorts the clusters of a connection (clusterset.ConnectEach): those
// reached, each once and in order (contexts naming one API server share a
// Cluster), and those that cannot be reached, which CheckStart and Outcome
// decide about. Any other failure (a bad context, a cluster id that is not
// a DNS label) stops the run before a read.
func SetAside(members []clusterset.Member) ([]*clusterset.Cluster, []Unreachable, error) {
	var clusters []*clusterset.Cluster
	var unreachable []Unreachable
	var errs []error
	for _, m := range members {
		switch {
		case m.Err != nil && clusterset.Unreachable(m.Err):
			unreachable = append(unreachable, Unreachable{Cluster: &clusterset.Cluster{Context: m.Context}, Err: m.Err})
		case m.Err != nil:
			errs = append(errs, m.Err)
		case !slices.Contains(clusters, m.Cluster):
			clusters = append(clusters, m.Cluster)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return clusters, unreachable, nil
}

// Outcome is a one-shot sync's result under the policy: the clusters set
// aside at start and those the sync went on without are one
// *UnreachableError; any other error is returned as it is.
func Outcome(err error, unreachable []Unreachable) error {
	var unreachableErr *UnreachableError
	if errors.As(err, &unreachableErr) {
		unreachable = append(unreachable, unreachableErr.Clusters...)
		err = nil
	}
	if err != nil {
		return err
	}
	if len(unreachable) > 0 {
		return &UnreachableError{Clusters: unreachable}
	}
	return nil
}
