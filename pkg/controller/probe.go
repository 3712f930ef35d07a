package controller

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// probe checks every cluster's API server; an unreachable one is marked
// (its endpoints are kept, it is not written to) and, after StaleTTL,
// expired (its endpoints are removed).
func (c *Controller) probe(ctx context.Context) {
	ticker := time.NewTicker(c.opts.ProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for id, w := range c.watches {
			pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeInterval)
			err := w.cluster.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(pctx).Error()
			cancel()
			if ctx.Err() != nil {
				return
			}
			now := c.opts.Now()
			// Before observe: the watches' outage ends with the probe's.
			switch watches, werr := w.observeWatches(err == nil); watches {
			case watchFaultLost:
				c.logf("%s: watch connection lost (%v); reconnecting", id, watchErrorCause(werr))
			case watchFaultResumed:
				c.logf("%s: watches resumed", id)
			}
			change, since := w.observe(err, now, c.opts.StaleTTL)
			switch change {
			case sourceUnreachable:
				c.logf("%s: unreachable (%v); keeping its endpoints for up to %s", id, errors.Unwrap(err), c.opts.StaleTTL)
			case sourceExpired:
				c.logf("%s: unreachable since %s, past the %s TTL: removing its endpoints", id, since.UTC().Format(time.RFC3339), c.opts.StaleTTL)
			case sourceReachable:
				c.logf("%s: reachable again after %s", id, now.Sub(since).Round(time.Second))
			}
			if change != sourceUnchanged && c.leading.Load() {
				// Before the syncs: the endpoints the events count are
				// still there.
				c.sourceEvents(w, change, now.Sub(since), err)
				for _, k := range c.allKeys() {
					c.queue.Add(k)
				}
			}
		}
	}
}

// observe records what a probe found at now and says what changed, with
// the time the cluster became unreachable (before this probe): a cluster
// that stops answering is unreachable (its endpoints kept, not written
// to); a source unreachable for ttl (> 0) is expired (its endpoints
// removed); one that answers again is reachable. A consumer-only cluster
// never expires: it has no endpoints of its own to remove.
func (w *clusterWatch) observe(err error, now time.Time, ttl time.Duration) (sourceChange, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	since := w.unreachableSince
	switch {
	case err != nil && w.unreachableSince.IsZero():
		w.unreachableSince, w.unreachableErr = now, w.cluster.Wrap(err)
		if !clusterset.Unreachable(w.unreachableErr) {
			w.unreachableErr = w.cluster.Errorf("not ready: %w", context.DeadlineExceeded)
		}
		return sourceUnreachable, since
	case err != nil && w.source && !w.expired && ttl > 0 && now.Sub(w.unreachableSince) >= ttl:
		w.expired = true
		return sourceExpired, since
	case err == nil && !w.unreachableSince.IsZero():
		w.unreachableSince, w.unreachableErr, w.expired = time.Time{}, nil, false
		return sourceReachable, since
	}
	return sourceUnchanged, since
}

// watchErrorCause is a watch's connection error without the request it
// failed (the URL of one informer's watch among several says nothing).
func watchErrorCause(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}
