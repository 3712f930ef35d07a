package controller

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func leaderController(t *testing.T, client *fake.Clientset, log *lockedLog) *Controller {
	t.Helper()
	c, err := New(Options{Log: log, Workers: 1, LeaderElection: &LeaderElection{
		Client: client, Where: "context lease", Namespace: "ns", Name: "kubectl-mcs", Identity: "me",
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Losing the Lease (its cluster stops answering) stops the workers and
// returns ErrLeaderElectionLost, the command's exit 1; nothing is released
// (the cluster does not answer, and another replica may lead already).
func TestLeaderElectionLostStopsAndFails(t *testing.T) {
	client := fake.NewClientset()
	var cut atomic.Bool
	client.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if cut.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	log := &lockedLog{}
	c := leaderController(t, client, log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.runLeading(ctx) }()
	for !c.leading.Load() {
		select {
		case err := <-done:
			t.Fatalf("runLeading returned before leading: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cut.Store(true)
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("still running after the Lease could not be renewed:\n%s", log.String())
	}
	if !errors.Is(err, ErrLeaderElectionLost) {
		t.Fatalf("runLeading returned %v, want ErrLeaderElectionLost", err)
	}
	for _, want := range []string{"lease ns/kubectl-mcs in context lease", "another one takes over"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if c.leading.Load() {
		t.Error("still leading after runLeading returned")
	}
	if !strings.Contains(log.String(), "leader election lost") || strings.Contains(log.String(), "released lease") {
		t.Errorf("log:\n%s\nwant the loss said, and no release", log.String())
	}
	if !c.queue.ShuttingDown() {
		t.Error("the work queue still takes keys after the loss")
	}
}

// A stop (SIGTERM) releases the Lease, after the workers stopped, so that
// another replica leads at once; Run returns nil (exit 0).
func TestLeaderElectionStopReleasesAfterWorkers(t *testing.T) {
	client := fake.NewClientset()
	log := &lockedLog{}
	c := leaderController(t, client, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.runLeading(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !c.leading.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runLeading after a stop: %v", err)
	}
	lease, err := client.CoordinationV1().Leases("ns").Get(context.Background(), "kubectl-mcs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("Lease still held by %q after the stop", *h)
	}
	out := log.String()
	stopped, released := strings.Index(out, "stopped"), strings.Index(out, "released lease")
	if stopped < 0 || released < 0 || released < stopped {
		t.Errorf("want the workers stopped, then the Lease released:\n%s", out)
	}
}
