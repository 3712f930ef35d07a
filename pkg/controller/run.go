package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/metrics"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Run starts the informers, waits for their caches, and syncs until ctx
// ends. With leader election, keys are only synced while leading.
func (c *Controller) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer c.queue.ShutDown()
	stopServing, err := c.serve()
	if err != nil {
		return err
	}
	defer stopServing()
	var hasSynced []cache.InformerSynced
	for _, w := range c.watches {
		for _, start := range w.starters {
			start(ctx.Done())
		}
		for _, inf := range []cache.SharedIndexInformer{w.exports, w.imports, w.services, w.slices, w.ownSlices, w.nsInf} {
			if inf != nil {
				hasSynced = append(hasSynced, inf.HasSynced)
			}
		}
	}
	c.logf("watching %d cluster(s); waiting for caches", len(c.watches))
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return ctx.Err()
	}
	c.synced.Store(true)
	c.logf("caches synced")
	go c.probe(ctx)
	if c.opts.LeaderElection == nil {
		c.runWorkers(ctx)
		return nil
	}
	return c.runLeading(ctx)
}

func (c *Controller) runWorkers(ctx context.Context) {
	// What this process wrote while it led before may have changed since.
	c.conditionsMu.Lock()
	clear(c.conditions)
	c.conditionsMu.Unlock()
	// Events are recorded only while syncing, and sent under ctx: none
	// leaves after leadership is lost.
	stopEvents := c.startEvents(ctx)
	c.leading.Store(true)
	for _, k := range c.allKeys() {
		c.queue.Add(k)
	}
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	stopEvents()
	c.leading.Store(false)
	c.logf("stopped")
}

func (c *Controller) processNext(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	if ctx.Err() != nil {
		// Stopped (leadership lost): nothing more is synced.
		c.queue.Done(k)
		return false
	}
	defer c.queue.Done(k)
	if err := c.sync(ctx, k); err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.logf("%s/%s: %v (retrying)", k.namespace, k.service, err)
		c.syncFailedEvent(k, err)
		c.queue.AddRateLimited(k)
		return true
	}
	c.syncSucceeded(k)
	c.queue.Forget(k)
	return true
}

// sync runs the engine for one service over every consumer, from the
// caches. A cluster the probe finds unreachable is the probe's to report;
// its endpoints are kept, and the sync of the others goes on.
func (c *Controller) sync(ctx context.Context, k key) error {
	c.syncs.Add(1)
	seen, changed := c.takeSeen(k)
	before := c.cachedExports(k)
	start := time.Now()
	report, err := c.engine.Sync(ctx, snapshot.Scope{Namespace: k.namespace, Services: []string{k.service}})
	var unreachable *engine.UnreachableError
	result := metrics.ResultSuccess
	switch {
	case errors.As(err, &unreachable):
		result, err = metrics.ResultPartial, nil
	case err != nil:
		result = metrics.ResultError
	}
	c.metrics.ObserveSync(time.Since(start), result)
	for _, r := range report.Results {
		if r.Action != apply.Unchanged {
			c.logf("%s: %s", r.Cluster, r)
		}
	}
	c.countWrites(report)
	if changed {
		c.observePropagation(report, seen)
		if err != nil {
			// The retry goes on measuring from the first sighting.
			c.restoreSeen(k, seen)
		}
	}
	c.exportConditionEvents(before, report)
	c.reportSkipped(report.Skipped)
	return err
}

// reportSkipped says once per cluster and namespace that an export's
// namespace is missing there, with the fix.
func (c *Controller) reportSkipped(skipped []engine.Skipped) {
	c.skippedMu.Lock()
	defer c.skippedMu.Unlock()
	for _, s := range skipped {
		k := [2]string{s.Cluster.ID, s.Namespace}
		if c.skipped[k] {
			continue
		}
		c.skipped[k] = true
		c.logf("%s: not importing %s/%s: namespace %s does not exist there (fix: %s)",
			s.Cluster.Context, s.Namespace, strings.Join(s.Services, ","), s.Namespace, s.Fix())
	}
}
