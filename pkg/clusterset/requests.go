package clusterset

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// RequestCounter counts the HTTP requests a cluster's clients send, split
// into reads (GET, WATCH which is a GET, and permission reviews), leader
// election requests, and writes (everything else).
// Tests use it to prove a re-run with nothing to change writes nothing.
type RequestCounter struct {
	reads, writes, leases atomic.Int64

	mu sync.Mutex
	// writesTo counts the writes per method and object path, so tests can
	// prove that no object is written twice in one sync.
	writesTo map[string]int
}

// RepeatedWrites lists the writes ("PATCH /api/v1/namespaces/ns/services/x")
// sent more than once so far, with their counts.
func (r *RequestCounter) RepeatedWrites() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, n := range r.writesTo {
		if n > 1 {
			out[k] = n
		}
	}
	return out
}

// Leases returns the number of leader election (Lease) requests so far.
func (r *RequestCounter) Leases() int64 { return r.leases.Load() }

// Reads returns the number of read requests so far.
func (r *RequestCounter) Reads() int64 { return r.reads.Load() }

// Writes returns the number of write requests so far.
func (r *RequestCounter) Writes() int64 { return r.writes.Load() }

// Wrap is a rest.Config transport wrapper.
func (r *RequestCounter) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch {
		case strings.HasPrefix(req.URL.Path, "/apis/coordination.k8s.io/"):
			// Leader election: its own count, not the sync's writes.
			r.leases.Add(1)
		case req.Method == http.MethodGet || req.Method == http.MethodHead || strings.HasPrefix(req.URL.Path, "/apis/authorization.k8s.io/"):
			// Self-subject reviews are POSTs that persist nothing: reads.
			r.reads.Add(1)
		default:
			r.writes.Add(1)
			r.mu.Lock()
			if r.writesTo == nil {
				r.writesTo = map[string]int{}
			}
			r.writesTo[req.Method+" "+req.URL.Path]++
			r.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// refuseEnded is a transport wrapper that sends no request whose context has
// ended. net/http checks the context before it dials, but a request on an
// open HTTP/2 connection may still go out after it ended; a watch that
// lost its leader election must not write once its context is cancelled.
func refuseEnded(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		return next.RoundTrip(req)
	})
}
