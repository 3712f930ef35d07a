//go:build tools

// Package tools pins Toxiproxy v2.5.0, the TCP proxy that puts the local
// test clusters "far away": latency with jitter, bandwidth, stalls, resets
// and unreachable clusters, set per cluster through its REST API. Its server
// (cmd/server, built as toxiproxy-server) lives in a module of its own so
// that its dependencies never move the build list of the Kubernetes servers
// in the parent tools module (and so never relink kube-apiserver).
package tools

import (
	_ "github.com/Shopify/toxiproxy/v2/cmd/server"
)
