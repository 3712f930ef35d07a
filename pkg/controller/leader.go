package controller

import (
	"context"
	"time"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection names the Lease that decides which replica writes.
type LeaderElection struct {
	Namespace string
	Name      string
	Identity  string
}

func (c *Controller) runLeading(ctx context.Context) error {
	le := c.opts.LeaderElection
	holder := c.opts.Consumers[0]
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name, holder.Kube.CoreV1(), holder.Kube.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return err
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.logf("leading (lease %s/%s in %s, identity %s)", le.Namespace, le.Name, holder.Context, le.Identity)
				c.runWorkers(ctx)
			},
			OnStoppedLeading: func() { c.logf("not leading") },
			OnNewLeader: func(id string) {
				if id != le.Identity {
					c.logf("following leader %s", id)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	elector.Run(ctx)
	return nil
}
