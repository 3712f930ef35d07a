// Package rbac ships the least-privilege ClusterRoles of kubectl mcs:
// kubectl-mcs-view everywhere, kubectl-mcs-provider where services are
// exported, kubectl-mcs-consumer where they are imported.
package rbac

import "embed"

// Manifests holds view.yaml, provider.yaml and consumer.yaml.
//
//go:embed *.yaml
var Manifests embed.FS
