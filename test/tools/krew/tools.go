//go:build tools

// Package tools pins krew v0.4.3: the plugin manager (cmd/krew) and the
// manifest validator krew-index runs on every plugin submission
// (cmd/validate-krew-manifest). They live in a module of their own because
// krew's Kubernetes dependencies (apimachinery v0.21) cannot share a build
// list with k8s.io/kubernetes v1.37 in the parent tools module.
package tools

import (
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
