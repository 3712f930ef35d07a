package localcluster

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// NodeName is the one Node each local cluster has. No kubelet runs; the pod
// stand-in below plays its part for every pod bound to this node.
const NodeName = "local-node"

// NotReadyAnnotation, set to "true" on a pod, keeps the stand-in from
// marking it Ready (it still gets an IP), to test not-ready endpoints.
const NotReadyAnnotation = "localcluster.kubectl-mcs.io/not-ready"

// Zone is the topology zone label of the cluster's node; the endpointslice
// controller copies it onto endpoints, so tests can see zones survive a sync.
func (c *Cluster) Zone() string { return c.Name + "-zone-a" }

// registerNode creates the cluster's one Node, Ready, with NodeIP as its
// InternalIP (kube-proxy reads its node's addresses from it).
func (c *Cluster) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: map[string]string{
			corev1.LabelTopologyZone: c.Zone(),
			corev1.LabelHostname:     NodeName,
		}},
	}
	created, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("%s: creating node: %w", c.Name, err)
	}
	created.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LocalClusterStandIn",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}
	created.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: c.NodeIP()},
		{Type: corev1.NodeHostName, Address: NodeName},
	}
	if _, err := c.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("%s: marking node ready: %w", c.Name, err)
	}
	return nil
}

// startPods runs the pod stand-in: it binds unscheduled pods to the node
// (there is no scheduler), marks bound pods Running and Ready with a unique
// IP from PodCIDR (there is no kubelet), plumbing each into the node's
// network first when the set has a data plane, and completes graceful
// deletions the way a kubelet would once containers have stopped.
func (c *Cluster) startPods() error {
	ctx, cancel := context.WithCancel(context.Background())
	prefix, err := netip.ParsePrefix(c.PodCIDR())
	if err != nil {
		cancel()
		return err
	}
	sim := &podStandIn{cluster: c, ips: newIPPool(prefix)}
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	informer := factory.Core().V1().Pods().Informer()
	sim.lister = informer.GetStore()
	sim.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			sim.queue.Add(key)
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				if c.node != nil {
					c.node.removePod(pod.UID)
				}
				sim.ips.release(pod.Status.PodIP)
			}
		},
	}); err != nil {
		cancel()
		return err
	}
	c.podsStop = cancel
	c.podsDone = make(chan struct{})
	factory.Start(ctx.Done())
	go func() {
		defer close(c.podsDone)
		<-ctx.Done()
		sim.queue.ShutDown()
		factory.Shutdown()
	}()
	go func() {
		for sim.processNext(ctx) {
		}
	}()
	return nil
}

type podStandIn struct {
	cluster *Cluster
	lister  cache.Store
	queue   workqueue.TypedRateLimitingInterface[string]
	ips     *ipPool
}

func (s *podStandIn) processNext(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	if err := s.sync(ctx, key); err != nil && ctx.Err() == nil {
		s.queue.AddRateLimited(key)
		return true
	}
	s.queue.Forget(key)
	return true
}

func (s *podStandIn) sync(ctx context.Context, key string) error {
	obj, exists, err := s.lister.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	pods := s.cluster.Client.CoreV1().Pods(pod.Namespace)
	switch {
	case pod.DeletionTimestamp != nil:
		// A kubelet confirms deletion once containers are gone; here they
		// never ran, so confirm at once.
		zero := int64(0)
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName == "":
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName},
		}
		err := pods.Bind(ctx, binding, metav1.CreateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName != NodeName || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	}
	// Pods that got their IP before this stand-in started (a restart of the
	// harness) keep it, and nobody else may get it.
	s.ips.reserve(pod.Status.PodIP)
	want := s.runningStatus(pod)
	if node := s.cluster.node; node != nil {
		if err := node.ensurePod(pod, want.PodIP); err != nil {
			return err
		}
	}
	if pod.Status.Phase == want.Phase && pod.Status.PodIP != "" && podReady(pod) == podReady(&corev1.Pod{Status: want}) {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = want
	_, err = pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// runningStatus is the status a kubelet would report for a pod whose
// containers all started.
func (s *podStandIn) runningStatus(pod *corev1.Pod) corev1.PodStatus {
	now := metav1.NewTime(time.Now())
	ip := pod.Status.PodIP
	if ip == "" {
		ip = s.ips.allocate()
	}
	ready := corev1.ConditionTrue
	if pod.Annotations[NotReadyAnnotation] == "true" {
		ready = corev1.ConditionFalse
	}
	status := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		HostIP:    s.cluster.NodeIP(),
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
		},
	}
	for _, ctr := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Ready: ready == corev1.ConditionTrue,
			Started: ptrTo(true),
			State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return status
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }

// ipPool hands out unique addresses of a prefix, skipping the network
// address; released addresses are reused last.
type ipPool struct {
	mu     sync.Mutex
	prefix netip.Prefix
	next   netip.Addr
	used   map[netip.Addr]bool
}

func newIPPool(prefix netip.Prefix) *ipPool {
	return &ipPool{prefix: prefix, next: prefix.Addr().Next(), used: map[netip.Addr]bool{}}
}

func (p *ipPool) allocate() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.next
	for {
		addr := p.next
		p.next = p.next.Next()
		if !p.prefix.Contains(p.next) {
			p.next = p.prefix.Addr().Next()
		}
		if !p.used[addr] {
			p.used[addr] = true
			return addr.String()
		}
		if p.next == start {
			panic("localcluster: pod IP range exhausted")
		}
	}
}

func (p *ipPool) reserve(ip string) {
	if addr, err := netip.ParseAddr(ip); err == nil {
		p.mu.Lock()
		p.used[addr] = true
		p.mu.Unlock()
	}
}

func (p *ipPool) release(ip string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	p.mu.Lock()
	delete(p.used, addr)
	p.mu.Unlock()
}
