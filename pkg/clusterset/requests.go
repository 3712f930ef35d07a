package clusterset

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// RequestCounter counts the HTTP requests a cluster's clients send, split
// into reads (GET, WATCH which is a GET, and permission reviews) and writes
// (everything else).
// Tests use it to prove a re-run with nothing to change writes nothing.
type RequestCounter struct {
	reads, writes atomic.Int64
}

// Reads returns the number of read requests so far.
func (r *RequestCounter) Reads() int64 { return r.reads.Load() }

// Writes returns the number of write requests so far.
func (r *RequestCounter) Writes() int64 { return r.writes.Load() }

// Wrap is a rest.Config transport wrapper.
func (r *RequestCounter) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		// Self-subject reviews are POSTs that persist nothing: reads.
		if req.Method == http.MethodGet || req.Method == http.MethodHead || strings.HasPrefix(req.URL.Path, "/apis/authorization.k8s.io/") {
			r.reads.Add(1)
		} else {
			r.writes.Add(1)
		}
		return next.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
