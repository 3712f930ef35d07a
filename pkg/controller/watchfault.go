package controller

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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

// Where the faults are seen: client-go hands a watch error handler only
// the errors that end a ListAndWatch (a failed list, a watch request
// refused for good). A connection reset in the middle of a watch never
// gets there: the broken stream ends like a normal close and the new
// watch request, reset too, is retried inside the client as a probable
// EOF. So the informers have clients of their own whose transport notes
// those: a request that fails and a watch stream that breaks.

// watchClients are the clients w's informers use: the cluster's own
// configuration (its request counting included) with w noting the
// connection faults, and without --request-timeout. That timeout is the
// http.Client's, which bounds a whole exchange, a watch stream's body
// included: with it every watch was cut and made again each
// --request-timeout, a round trip per informer each time. A watch ends
// when the server says (the reflector's timeoutSeconds), and a dead
// connection is found by the HTTP/2 health check and by the probe, which
// keeps the timeout. A cluster without a configuration (a fake) keeps its
// clients.
func (w *clusterWatch) watchClients() (kubernetes.Interface, dynamic.Interface, error) {
	cl := w.cluster
	if cl.Config == nil {
		return cl.Kube, cl.Dynamic, nil
	}
	cfg := rest.CopyConfig(cl.Config)
	cfg.Timeout = 0
	cfg.Wrap(w.noteFaults)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, cl.Wrap(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, cl.Wrap(err)
	}
	return kube, dyn, nil
}

// noteFaults wraps the informers' transport: an error of a request or of
// a watch stream's read, unless the request was given up (its context
// ended) or the stream ended (io.EOF, the server's timeout), is a
// connection fault. An HTTP status is an answer, not a fault.
func (w *clusterWatch) noteFaults(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		switch {
		case err != nil:
			if !givenUp(req) {
				w.noteTransportError(req.Context(), err)
			}
		case resp.Body != nil:
			resp.Body = &faultNotingBody{ReadCloser: resp.Body, req: req, w: w}
		}
		return resp, err
	})
}

// givenUp holds for a request its client canceled: its context ended, or
// its Cancel channel closed (an http.Client's Timeout closes it before it
// ends the context; the informers' clients have none, see watchClients).
func givenUp(req *http.Request) bool {
	if req.Context().Err() != nil {
		return true
	}
	select {
	case <-req.Cancel:
		return true
	default:
		return false
	}
}

// noteTransportError keeps the first fault since the last probe: it
// says the cause; the retries after it fail at whatever step they
// reached.
func (w *clusterWatch) noteTransportError(ctx context.Context, err error) {
	if ctx.Err() != nil || err == io.EOF || errors.Is(err, context.Canceled) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watchErr == nil {
		w.watchErr = err
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// faultNotingBody notes the error that breaks a response (a watch stream)
// while it is read; not the one a read gets because the client closed it
// (a watch it stopped).
type faultNotingBody struct {
	io.ReadCloser
	req    *http.Request
	w      *clusterWatch
	closed atomic.Bool
}

func (b *faultNotingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.closed.Load() && !givenUp(b.req) {
		b.w.noteTransportError(b.req.Context(), err)
	}
	return n, err
}

func (b *faultNotingBody) Close() error {
	b.closed.Store(true)
	return b.ReadCloser.Close()
}

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
	w.noteTransportError(ctx, err)
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
