package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// reset is what a watch request fails with when the connection is reset.
func reset(path string) error {
	return &url.Error{Op: "Get", URL: "https://127.0.0.1:6443" + path,
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
}

func TestConnectionFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", reset("/api/v1/services?watch=true"), true},
		{"connection refused", &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/services", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, true},
		{"EOF before the answer", &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/services", Err: io.EOF}, true},
		{"watch closed by the server", io.EOF, false},
		{"watch closed mid-event", io.ErrUnexpectedEOF, false},
		{"resource version expired", apierrors.NewResourceExpired("too old resource version: 1 (2)"), false},
		{"gone", apierrors.NewGone("gone"), false},
		{"forbidden", apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "", errors.New("no")), false},
		{"stopped", fmt.Errorf("watch: %w", context.Canceled), false},
	} {
		if got := connectionFault(tc.err); got != tc.want {
			t.Errorf("%s: connectionFault(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestWatchFaultOncePerOutage drives one cluster's watches and probe
// through outages, as the probe loop does at each tick, and checks what
// is said: a watch fault once per outage however many informers and
// retries fail, its end once, and nothing of the watches during an
// outage the probe reports.
func TestWatchFaultOncePerOutage(t *testing.T) {
	w := &clusterWatch{cluster: &clusterset.Cluster{Context: "cluster3", ID: "cluster3"}, source: true}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	probeDown := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/readyz", Err: context.DeadlineExceeded}
	ticks := 0
	// tick is one probe: probeErr is what it found; it returns what the
	// probe loop logs, in its order.
	tick := func(probeErr error) []string {
		ticks++
		var said []string
		switch change, err := w.observeWatches(probeErr == nil); change {
		case watchFaultLost:
			said = append(said, fmt.Sprintf("watch connection lost (%v)", watchErrorCause(err)))
		case watchFaultResumed:
			said = append(said, "watches resumed")
		}
		switch change, _ := w.observe(probeErr, start.Add(time.Duration(ticks)*2*time.Second), time.Hour); change {
		case sourceUnreachable:
			said = append(said, "unreachable")
		case sourceReachable:
			said = append(said, "reachable again")
		}
		return said
	}
	watchErrors := func(n int, err error) {
		for range n {
			w.watchError(context.Background(), nil, err)
		}
	}
	for _, step := range []struct {
		name        string
		watchErrors int
		watchErr    error
		probeErr    error
		want        string
	}{
		{name: "quiet", want: "[]"},
		{name: "reset: six informers fail, twice each", watchErrors: 12, watchErr: reset("/api/v1/services?watch=true"),
			want: "[watch connection lost (read tcp: read: connection reset by peer)]"},
		{name: "still failing", watchErrors: 3, watchErr: reset("/api/v1/namespaces"), want: "[]"},
		{name: "no error for an interval", want: "[watches resumed]"},
		{name: "quiet after", want: "[]"},
		{name: "normal watch ends", watchErrors: 6, watchErr: io.EOF, want: "[]"},
		{name: "another reset: a new outage", watchErrors: 1, watchErr: reset("/api/v1/services?watch=true"),
			want: "[watch connection lost (read tcp: read: connection reset by peer)]"},
		{name: "it lasts: the probe sees it", watchErrors: 6, watchErr: reset("/api/v1/services"), probeErr: probeDown, want: "[unreachable]"},
		{name: "down", watchErrors: 6, watchErr: reset("/api/v1/services"), probeErr: probeDown, want: "[]"},
		{name: "back: the probe's outage ends", watchErrors: 6, watchErr: reset("/api/v1/services"), want: "[reachable again]"},
		{name: "quiet after the probe's outage", want: "[]"},
		{name: "a crash: watches fail", watchErrors: 6, watchErr: reset("/api/v1/services"), probeErr: probeDown, want: "[unreachable]"},
		{name: "crash: back", want: "[reachable again]"},
		{name: "crash: quiet after", want: "[]"},
	} {
		watchErrors(step.watchErrors, step.watchErr)
		if got := fmt.Sprint(tick(step.probeErr)); got != step.want {
			t.Errorf("%s: said %s, want %s", step.name, got, step.want)
		}
	}
}
