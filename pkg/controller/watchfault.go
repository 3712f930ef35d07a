package controller

import (
	"context"
	"errors"
	"io"

	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// A cluster's connection faults are said once per outage, by the probe
// loop alone: the watch error handler of each informer only notes the
// error, and the next probe decides what it was (watchFaultChange).
//
// The rule: an outage has one voice. If the probe finds the API server
// unreachable, the outage is the probe's ("unreachable" ... "reachable
// again") and every watch error noted during it is part of it, said by
// no one else. If the API server answers the probe but watches failed
// since the last probe, their connection was lost in a fault too short
// for the probe to see (a reset): that is said once ("watch connection
// lost"), and "watches resumed" once a whole probe interval passes with
// no watch error while the API server answers. Waiting for the probe
// delays the watch line by up to one interval; it is what keeps an
// outage the probe sees from being said twice, once by the watches and
// again by the probe. (A fault that the probe sees only later, after it
// answered once, is said by both: the second line is news, the API
// server stopped answering; the probe's "reachable again" then ends both.)

// setWatchErrorHandlers makes every informer of w report its watch
// errors to w (before the informers start).
func (c *Controller) setWatchErrorHandlers(w *clusterWatch) error {
	for _, inf := range w.informers() {
		if err := inf.SetWatchErrorHandlerWithContext(w.watchError); err != nil {
			return err
		}
	}
	return nil
}

// informers lists the informers w runs.
func (w *clusterWatch) informers() []cache.SharedIndexInformer {
	var out []cache.SharedIndexInformer
	for _, inf := range []cache.SharedIndexInformer{w.exports, w.imports, w.services, w.slices, w.ownSlices, w.nsInf} {
		if inf != nil {
			out = append(out, inf)
		}
	}
	return out
}

// watchError notes the first connection fault since the last probe of one of w's informers for the
// probe to say; any other error goes to client-go's own handler.
func (w *clusterWatch) watchError(ctx context.Context, r *cache.Reflector, err error) {
	if !connectionFault(err) {
		cache.DefaultWatchErrorHandler(ctx, r, err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watchErr == nil {
		// The first says the cause; the retries after it fail at
		// whatever step they reached.
		w.watchErr = err
	}
}

// connectionFault holds for an error that says the connection to the API
// server failed. The ends a watch has in normal life are not faults:
// client-go re-establishes them silently (DefaultWatchErrorHandler logs
// them at most at V(1)): io.EOF (the server closed the watch after its
// timeout), io.ErrUnexpectedEOF, an expired resource version (410 Gone,
// an API status), and the stop of the watch itself (context canceled).
// An API status error (forbidden, say) is an answer, not a lost
// connection.
func connectionFault(err error) bool {
	switch {
	case err == nil, err == io.EOF, err == io.ErrUnexpectedEOF, errors.Is(err, context.Canceled):
		return false
	}
	return clusterset.Unreachable(err)
}

// watchFaultChange is what the probe says about a cluster's watches.
type watchFaultChange int

const (
	watchFaultUnchanged watchFaultChange = iota
	// watchFaultLost: watches lost their connection while the API server
	// answers the probe.
	watchFaultLost
	// watchFaultResumed: no watch error for a probe interval since.
	watchFaultResumed
)

// observeWatches takes the watch error noted since the last probe and
// says what changed, given whether this probe found the API server
// answering (reachable): see the rule above. A lost connection comes with
// its error.
func (w *clusterWatch) observeWatches(reachable bool) (watchFaultChange, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.watchErr
	w.watchErr = nil
	switch {
	case !reachable || !w.unreachableSince.IsZero():
		// The probe's outage (or its last probe, which says "reachable
		// again"): the watch errors are part of it.
		w.watchFault = false
	case err != nil && !w.watchFault:
		w.watchFault = true
		return watchFaultLost, err
	case err == nil && w.watchFault:
		w.watchFault = false
		return watchFaultResumed, nil
	}
	return watchFaultUnchanged, nil
}
