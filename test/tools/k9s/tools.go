//go:build tools

// Package tools pins k9s (github.com/derailed/k9s), the terminal UI that
// plugins.yaml extends, for the test that runs the shipped plugins in a real
// k9s (test/dist/k9s_tmux_test.go). It is a module of its own, like krew's,
// so that bumping k9s never changes the servers' build list, and k9s's
// Kubernetes dependencies never meet k8s.io/kubernetes's.
//
// v0.51.0 is the newest version found on the Go module proxy: `go list -m
// -versions` lists only up to v0.50.16, but `go list -m
// github.com/derailed/k9s@v0.51.0` resolves (v0.51.1 and v0.52.0 do not).
// It is the first with Shift-S bound in every table view (Sort Status), the
// clash of issue 16.
package tools

import (
	_ "github.com/derailed/k9s"
)
