package controller

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// serve listens on --health-addr (/healthz, /readyz) and --metrics-addr
// (/metrics), one listener when both name the same address, and returns
// what stops them. An address that cannot be listened on is an error
// before anything is watched, rather than a probe failing later.
func (c *Controller) serve() (stop func(), err error) {
	muxes := map[string]*http.ServeMux{}
	var addrs []string
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
			addrs = append(addrs, addr)
		}
		return muxes[addr]
	}
	paths := map[string][]string{}
	if a := c.opts.HealthAddr; a != "" {
		mux(a).HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux(a).HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !c.synced.Load() {
				http.Error(w, "caches not synced\n", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok\n")
		})
		paths[a] = append(paths[a], "/healthz", "/readyz")
	}
	if a := c.opts.MetricsAddr; a != "" {
		mux(a).Handle("/metrics", c.metrics.Handler())
		paths[a] = append(paths[a], "/metrics")
	}
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("serving %s: %w", strings.Join(paths[addr], ", "), err)
		}
		srv := &http.Server{Handler: muxes[addr], ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(l) }()
		c.logf("serving %s on %s", strings.Join(paths[addr], ", "), l.Addr())
	}
	return stop, nil
}
