package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/controller"
)

// watchFlags are the flags of the continuous mode, shared by import and
// sync.
type watchFlags struct {
	Watch          bool
	StaleTTL       time.Duration
	LeaderElect    bool
	LeaseNamespace string
	LeaseName      string
	Identity       string
	HealthAddr     string
	MetricsAddr    string
}

func addWatchFlags(cmd *cobra.Command, f *watchFlags) {
	cmd.Flags().BoolVarP(&f.Watch, "watch", "w", false, "After the first sync, keep syncing every change (informers on every cluster) until interrupted.")
	cmd.Flags().DurationVar(&f.StaleTTL, "stale-ttl", 5*time.Minute, "With --watch: how long an unreachable source's endpoints are kept before they are removed.")
	cmd.Flags().BoolVar(&f.LeaderElect, "leader-elect", false, "With --watch: only the holder of a Lease in the (first) consumer writes, so replicas never write at once.")
	cmd.Flags().StringVar(&f.LeaseNamespace, "leader-elect-namespace", "kube-system", "Namespace of the leader election Lease.")
	cmd.Flags().StringVar(&f.LeaseName, "leader-elect-name", "kubectl-mcs", "Name of the leader election Lease.")
	cmd.Flags().StringVar(&f.Identity, "leader-elect-identity", "", "Identity in the Lease (default hostname and process id).")
	cmd.Flags().StringVar(&f.HealthAddr, "health-addr", "", "With --watch: serve /healthz and /readyz on this address (e.g. :8080).")
	cmd.Flags().StringVar(&f.MetricsAddr, "metrics-addr", "", "With --watch: serve Prometheus metrics on /metrics at this address (e.g. :9090; the same listener as --health-addr when both name one address).")
}

func (f *watchFlags) validate(cmd *cobra.Command) error {
	for _, name := range []string{"stale-ttl", "leader-elect", "leader-elect-namespace", "leader-elect-name", "leader-elect-identity", "health-addr", "metrics-addr"} {
		if cmd.Flags().Changed(name) && !f.Watch {
			return fmt.Errorf("--%s only applies with --watch", name)
		}
	}
	return nil
}

// run runs the controller until SIGINT or SIGTERM.
func (f *watchFlags) run(ctx context.Context, opts controller.Options) error {
	opts.StaleTTL = f.StaleTTL
	opts.HealthAddr = f.HealthAddr
	opts.MetricsAddr = f.MetricsAddr
	if f.LeaderElect {
		id := f.Identity
		if id == "" {
			host, _ := os.Hostname()
			id = fmt.Sprintf("%s-%d", host, os.Getpid())
		}
		opts.LeaderElection = &controller.LeaderElection{Namespace: f.LeaseNamespace, Name: f.LeaseName, Identity: id}
	}
	ctrl, err := controller.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ctrl.Run(ctx)
}
