//go:build tools

// Package tools pins the real servers the local test clusters run. They are
// built with `go build` from this module (see the Makefile's tools target), so
// that the plugin's own go.mod never carries their dependencies.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
