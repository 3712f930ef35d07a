// Command coredns is upstream CoreDNS with only the plugins the local test
// clusters need: kubernetes (with its multicluster option for
// clusterset.local), rewrite (the vendor's cluster-id-less clusterset form),
// bind (so it listens on loopback only), and errors/log for diagnosis.
// Linking the full plugin list would pull every cloud provider's SDK.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// directives keeps upstream plugin.cfg's relative order for the plugins above;
// CoreDNS runs a server block's plugins in this order, not the Corefile's.
var directives = []string{
	"bind",
	"reload",
	"errors",
	"log",
	"rewrite",
	"kubernetes",
	"whoami",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
