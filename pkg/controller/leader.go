package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection names the Lease that decides which replica writes, and
// where it lives. As for kube-controller-manager, the Lease is in one
// cluster the replicas share that is not one of the synced ones by
// necessity: the cluster the process runs in, or a kubeconfig context
// named for it. A Lease in the first synced cluster made that one cluster
// the clusterset's single point of failure.
type LeaderElection struct {
	// Client reaches the cluster that holds the Lease; Where says which
	// it is, for the log and errors.
	Client    kubernetes.Interface
	Where     string
	Namespace string
	Name      string
	Identity  string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's
	// (kube-controller-manager's --leader-elect-lease-duration, ...);
	// zero means 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLeaderElectionLost is returned by Run when this replica lost the Lease
// (it could not renew it within the renew deadline): it stopped writing,
// and exits so that it starts again as a follower, as Kubernetes
// controllers do.
var ErrLeaderElectionLost = errors.New("leader election lost")

// Validate applies client-go's rule, checked before any cluster is
// contacted: the leader gives up (renew deadline) before a follower may take
// over (lease duration), and retries often enough to renew in time.
func (le *LeaderElection) Validate() error {
	if le.LeaseDuration < 0 || le.RenewDeadline < 0 || le.RetryPeriod < 0 {
		return errors.New("the --leader-elect-* durations cannot be negative (0 means the default)")
	}
	lease, renew, retry := le.durations()
	switch {
	case renew <= time.Duration(1.2*float64(retry)):
		return fmt.Errorf("--leader-elect-renew-deadline (%s) must be more than 1.2 times --leader-elect-retry-period (%s)", renew, retry)
	case lease <= renew:
		return fmt.Errorf("--leader-elect-lease-duration (%s) must be more than --leader-elect-renew-deadline (%s)", lease, renew)
	}
	return nil
}

func (le *LeaderElection) durations() (lease, renew, retry time.Duration) {
	lease, renew, retry = le.LeaseDuration, le.RenewDeadline, le.RetryPeriod
	if lease == 0 {
		lease = 15 * time.Second
	}
	if renew == 0 {
		renew = 10 * time.Second
	}
	if retry == 0 {
		retry = 2 * time.Second
	}
	return lease, renew, retry
}

// runLeading syncs only while this process holds the Lease. The workers run
// under a context that client-go cancels the moment the Lease is not
// renewed in time, so no write starts after that; their in-flight requests
// are cancelled with it. On loss Run returns ErrLeaderElectionLost once the
// workers have stopped. On shutdown the Lease is released, but only after
// the workers stopped: releasing first would let another replica lead
// while this one still writes.
func (c *Controller) runLeading(ctx context.Context) error {
	le := c.opts.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name, le.Client.CoreV1(), le.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return err
	}
	leaseDuration, renewDeadline, retryPeriod := le.durations()
	var (
		workers sync.WaitGroup
		mu      sync.Mutex
		stopped bool // no term starts once set
		lost    bool
	)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: leaseDuration,
		RenewDeadline: renewDeadline,
		RetryPeriod:   retryPeriod,
		// Released below, after the workers stopped.
		ReleaseOnCancel: false,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if stopped {
					mu.Unlock()
					return
				}
				workers.Add(1)
				mu.Unlock()
				defer workers.Done()
				c.logf("leading (lease %s/%s in %s, identity %s)", le.Namespace, le.Name, le.Where, le.Identity)
				c.runWorkers(ctx)
			},
			// Called after client-go cancelled the workers' context.
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					lost = true
					c.logf("leader election lost: lease %s/%s in %s not renewed within %s; stopping the workers (no write starts from now on)",
						le.Namespace, le.Name, le.Where, renewDeadline)
				}
			},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					c.logf("following leader %s", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("--leader-elect: %w", err)
	}
	elector.Run(ctx)
	// OnStartedLeading runs in its own goroutine (it may not even have
	// started): let none start from now on, and wait for a running one, so
	// that no write of this replica follows what comes next.
	mu.Lock()
	stopped = true
	mu.Unlock()
	workers.Wait()
	if lost || ctx.Err() == nil {
		return fmt.Errorf("%w: lease %s/%s in %s was not renewed within %s (is that cluster reachable from here?); this replica stopped writing before it exits, another one takes over",
			ErrLeaderElectionLost, le.Namespace, le.Name, le.Where, renewDeadline)
	}
	c.release(lock, renewDeadline)
	return nil
}

// release gives the Lease up (if this process still holds it) so that
// another replica leads at once rather than after the lease duration; as
// client-go's own release, it keeps the transitions count and leaves the
// holder empty.
func (c *Controller) release(lock resourcelock.Interface, timeout time.Duration) {
	le := c.opts.LeaderElection
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	record, _, err := lock.Get(ctx)
	if err != nil || record.HolderIdentity != le.Identity {
		return
	}
	now := metav1.NewTime(time.Now())
	if err := lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: record.LeaderTransitions, LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now,
	}); err != nil {
		c.logf("releasing lease %s/%s in %s: %v (another replica leads once it expires)", le.Namespace, le.Name, le.Where, err)
		return
	}
	c.logf("released lease %s/%s in %s", le.Namespace, le.Name, le.Where)
}
