// Command localclusters runs local Kubernetes clusters for trying kubectl
// mcs by hand and for `make demo`:
//
//	localclusters demo --plugin bin/kubectl-mcs   # the seed scenario, start to finish
//	localclusters up --dir .cache/demo            # start two clusters in the background, from a clean state
//	localclusters down --dir .cache/demo          # stop them; their files stay in --dir
//	localclusters clean --dir .cache/demo         # stop them if running, and remove their files
//	localclusters up --dir .cache/demo --wan 50ms # the same, each cluster 50 ms (round trip) away
//	localclusters wan --dir .cache/demo --wan 100ms [--jitter 10ms] # change the round trip while they run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".cache/demo", "work directory of the clusters (up, down, clean, serve)")
	plugin := fs.String("plugin", "bin/kubectl-mcs", "kubectl-mcs binary the demo runs")
	n := fs.Int("clusters", 2, "number of clusters")
	wan := fs.String("wan", "", "up, serve: put each cluster behind a latency proxy this round trip away (e.g. 50ms; 0 for a proxy without latency); wan: the new round trip")
	jitter := fs.Duration("jitter", 0, "wan: random variation of the round trip, ± this much")
	_ = fs.Parse(os.Args[2:])

	var err error
	switch os.Args[1] {
	case "demo":
		err = runDemo(ctx, *plugin, *n)
	case "up":
		err = up(ctx, *dir, *n, *wan)
	case "serve":
		err = serve(ctx, *dir, *n, *wan)
	case "wan":
		err = setWAN(*dir, *wan, *jitter)
	case "down":
		err = down(*dir)
	case "clean":
		err = clean(*dir)
	default:
		usage()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: localclusters demo|up|down|clean|serve|wan [--dir DIR] [--plugin PATH] [--clusters N] [--wan RTT] [--jitter D]")
	os.Exit(2)
}
