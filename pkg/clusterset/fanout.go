package clusterset

import (
	"context"
	"errors"
	"fmt"
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

// ConnectAll connects every named context and resolves its cluster id, in
// parallel. Contexts that point at the same API server are one cluster:
// only the first is kept. Two different clusters with one id are an error,
// since their endpoints would be indistinguishable in DNS.
func (l *Loader) ConnectAll(ctx context.Context, contexts []string) ([]*Cluster, error) {
	clusters := make([]*Cluster, len(contexts))
	var errs []error
	for i, name := range contexts {
		c, err := l.Connect(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		clusters[i] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := errors.Join(ForEach(ctx, clusters, func(ctx context.Context, c *Cluster) error { return c.ResolveID(ctx) })...); err != nil {
		return nil, err
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
			return nil, fmt.Errorf("contexts %q and %q are different clusters (%s, %s) with the same cluster id %q; "+
				"give one a ClusterProperty %s with a distinct id", prev.Context, c.Context, prev.Server, c.Server, c.ID, ClusterIDProperty)
		}
		byServer[c.Server] = true
		byID[c.ID] = c
		out = append(out, c)
	}
	return out, nil
}
