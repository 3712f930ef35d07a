package clusterset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// MaxParallel bounds how many clusters are contacted at once.
const MaxParallel = 8

// ForEach runs fn for every cluster in parallel (at most MaxParallel at a
// time) and returns one error per cluster, nil where fn succeeded, in the
// order of clusters. One cluster's failure never stops the others.
func ForEach(ctx context.Context, clusters []*Cluster, fn func(ctx context.Context, c *Cluster) error) []error {
	errs := make([]error, len(clusters))
	sem := make(chan struct{}, MaxParallel)
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.Wrap(fn(ctx, c))
		}()
	}
	wg.Wait()
	return errs
}

// Member is one context of a clusterset as connected: its cluster (shared
// by every context naming the same API server) or the error it met.
type Member struct {
	Context string
	Cluster *Cluster
	Err     error
}

// ConnectEach connects every named context and resolves its cluster id, in
// parallel: the one way every verb connects a clusterset. Contexts naming
// the same API server share one Cluster (read once, by the first of them).
// A context that cannot be connected or resolved keeps its error, and the
// others go on; members are in the order of contexts.
func (l *Loader) ConnectEach(ctx context.Context, contexts []string) []Member {
	members := make([]Member, len(contexts))
	byServer := map[string]*Cluster{}
	var unique []*Cluster
	for i, name := range contexts {
		members[i].Context = name
		c, err := l.Connect(name)
		if err != nil {
			members[i].Err = err
			continue
		}
		if first, ok := byServer[c.Server]; ok {
			c = first
		} else {
			byServer[c.Server] = c
			unique = append(unique, c)
		}
		members[i].Cluster = c
	}
	errs := ForEach(ctx, unique, func(ctx context.Context, c *Cluster) error { return c.ResolveID(ctx) })
	for i := range members {
		if c := members[i].Cluster; c != nil {
			if err := errs[slices.Index(unique, c)]; err != nil {
				members[i].Cluster, members[i].Err = nil, err
			}
		}
	}
	return members
}

// ConnectAll connects every named context and resolves its cluster id, in
// parallel. Contexts that point at the same API server are one cluster:
// only the first is kept. Any context's failure is an error, and so are
// two different clusters with one id, since their endpoints would be
// indistinguishable in DNS.
func (l *Loader) ConnectAll(ctx context.Context, contexts []string) ([]*Cluster, error) {
	var clusters []*Cluster
	var errs []error
	for _, m := range l.ConnectEach(ctx, contexts) {
		switch {
		case m.Err != nil:
			errs = append(errs, m.Err)
		case !slices.Contains(clusters, m.Cluster):
			clusters = append(clusters, m.Cluster)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Dedupe(clusters)
}

// Dedupe drops contexts that point at the API server of an earlier one
// (the same cluster, read once) and rejects distinct clusters sharing an id.
func Dedupe(clusters []*Cluster) ([]*Cluster, error) {
	var out []*Cluster
	byServer := map[string]bool{}
	byID := map[string]*Cluster{}
	for _, c := range clusters {
		if byServer[c.Server] {
			continue
		}
		if prev, ok := byID[c.ID]; ok {
			return nil, IDCollision(prev, c)
		}
		byServer[c.Server] = true
		byID[c.ID] = c
		out = append(out, c)
	}
	return out, nil
}

// IDCollision is the error of two different clusters (API servers) with one
// cluster id, whose endpoints would be indistinguishable in DNS
// (<host>.<clusterid>.<svc>.<ns>.svc.clusterset.local) and in the mirrored
// slices; nil when the ids differ or both are the same API server.
func IDCollision(first, other *Cluster) error {
	if first.ID != other.ID || first.Server == other.Server {
		return nil
	}
	return fmt.Errorf("contexts %q and %q are different clusters (%s, %s) with the same cluster id %q (%s: from %s; %s: from %s); "+
		"give one a ClusterProperty %s with a distinct id", first.Context, other.Context, first.Server, other.Server, other.ID,
		first.Context, first.IDSource, other.Context, other.IDSource, ClusterIDProperty)
}
