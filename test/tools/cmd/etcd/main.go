// Command etcd is the upstream etcd server, built from the Go module proxy at
// the version k8s.io/kubernetes itself depends on, for the local test clusters.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
