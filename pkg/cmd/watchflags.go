package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/controller"
)

// watchFlags are the flags of the continuous mode, shared by import and
// sync.
type watchFlags struct {
	Watch          bool
	StaleTTL       time.Duration
	LeaderElect    bool
	LeaseContext   string
	LeaseNamespace string
	LeaseName      string
	Identity       string
	LeaseDuration  time.Duration
	RenewDeadline  time.Duration
	RetryPeriod    time.Duration
	HealthAddr     string
	MetricsAddr    string
}

// leaderElectFlags only mean something with --leader-elect.
var leaderElectFlags = []string{"leader-elect-context", "leader-elect-namespace", "leader-elect-name", "leader-elect-identity",
	"leader-elect-lease-duration", "leader-elect-renew-deadline", "leader-elect-retry-period"}

func addWatchFlags(cmd *cobra.Command, f *watchFlags) {
	cmd.Flags().BoolVarP(&f.Watch, "watch", "w", false, "After the first sync, keep syncing every change (informers on every cluster) until interrupted.")
	cmd.Flags().DurationVar(&f.StaleTTL, "stale-ttl", 5*time.Minute, "With --watch: how long an unreachable source's endpoints are kept before they are removed.")
	cmd.Flags().BoolVar(&f.LeaderElect, "leader-elect", false, "With --watch: only the holder of a Lease writes, so replicas never write at once. The Lease is in the cluster the process runs in (in a pod), or in --leader-elect-context.")
	cmd.Flags().StringVar(&f.LeaseContext, "leader-elect-context", "", "Kubeconfig context of the cluster that holds the leader election Lease (default: the cluster the process runs in, when in a pod). Every replica must name the same cluster.")
	cmd.Flags().StringVar(&f.LeaseNamespace, "leader-elect-namespace", "kube-system", "Namespace of the leader election Lease.")
	cmd.Flags().StringVar(&f.LeaseName, "leader-elect-name", "kubectl-mcs", "Name of the leader election Lease.")
	cmd.Flags().StringVar(&f.Identity, "leader-elect-identity", "", "Identity in the Lease (default hostname and process id).")
	cmd.Flags().DurationVar(&f.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long followers wait, after the last renewal they saw, before taking the Lease.")
	cmd.Flags().DurationVar(&f.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader tries to renew the Lease before it stops writing and exits (less than the lease duration).")
	cmd.Flags().DurationVar(&f.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "How often the Lease is tried (acquired or renewed).")
	cmd.Flags().StringVar(&f.HealthAddr, "health-addr", "", "With --watch: serve /healthz and /readyz on this address (e.g. :8080).")
	cmd.Flags().StringVar(&f.MetricsAddr, "metrics-addr", "", "With --watch: serve Prometheus metrics on /metrics at this address (e.g. :9090; the same listener as --health-addr when both name one address).")
}

func (f *watchFlags) validate(cmd *cobra.Command) error {
	for _, name := range append([]string{"stale-ttl", "leader-elect", "health-addr", "metrics-addr"}, leaderElectFlags...) {
		if cmd.Flags().Changed(name) && !f.Watch {
			return fmt.Errorf("--%s only applies with --watch", name)
		}
	}
	for _, name := range leaderElectFlags {
		if cmd.Flags().Changed(name) && !f.LeaderElect {
			return fmt.Errorf("--%s only applies with --leader-elect", name)
		}
	}
	if f.LeaderElect {
		if err := f.lease().Validate(); err != nil {
			return err
		}
		if f.LeaseContext == "" {
			// Refused before any cluster is contacted.
			if _, err := inClusterConfig(); err != nil {
				return noLeaseCluster(err)
			}
		}
	}
	return nil
}

func noLeaseCluster(err error) error {
	return fmt.Errorf("--leader-elect needs a cluster to hold its Lease, and this process does not run in a pod (%v): name one with --leader-elect-context CONTEXT (every replica the same)", err)
}

// inClusterConfig is rest.InClusterConfig (a variable for tests).
var inClusterConfig = rest.InClusterConfig

// lease is the Lease the flags name, not yet placed in a cluster.
func (f *watchFlags) lease() *controller.LeaderElection {
	return &controller.LeaderElection{Namespace: f.LeaseNamespace, Name: f.LeaseName, Identity: f.Identity,
		LeaseDuration: f.LeaseDuration, RenewDeadline: f.RenewDeadline, RetryPeriod: f.RetryPeriod}
}

// leaderElection says where the Lease lives: in --leader-elect-context,
// else in the cluster the process runs in. A Lease in one of the synced
// clusters by default would make that cluster's outage stop the sync of
// the whole clusterset; so without either, the watch refuses to start.
func (f *watchFlags) leaderElection(loader *clusterset.Loader) (*controller.LeaderElection, error) {
	le := f.lease()
	if le.Identity == "" {
		host, _ := os.Hostname()
		le.Identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if f.LeaseContext != "" {
		c, err := loader.Connect(f.LeaseContext)
		if err != nil {
			return nil, fmt.Errorf("--leader-elect-context: %w", err)
		}
		le.Client, le.Where = c.Kube, "context "+f.LeaseContext
		return le, nil
	}
	cfg, err := inClusterConfig()
	if err != nil {
		return nil, noLeaseCluster(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("--leader-elect: in-cluster client: %w", err)
	}
	le.Client, le.Where = client, "the cluster this pod runs in"
	return le, nil
}

// run runs the controller until SIGINT or SIGTERM, or until it loses the
// leader election (an error: exit 1).
func (f *watchFlags) run(ctx context.Context, loader *clusterset.Loader, opts controller.Options) error {
	opts.StaleTTL = f.StaleTTL
	opts.HealthAddr = f.HealthAddr
	opts.MetricsAddr = f.MetricsAddr
	if f.LeaderElect {
		le, err := f.leaderElection(loader)
		if err != nil {
			return err
		}
		opts.LeaderElection = le
	}
	ctrl, err := controller.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ctrl.Run(ctx)
}
