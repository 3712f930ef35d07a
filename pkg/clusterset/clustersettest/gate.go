package clustersettest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Gate holds a fake cluster's writes (apply, status apply and delete
// through its dynamic client) until a test lets each one go, and counts how
// many are in flight together. The client-go fakes serialize every request
// under one lock, so concurrency is observed here, in front of them.
type Gate struct {
	mu       sync.Mutex
	inFlight int
	max      int
	waiting  map[string]chan struct{}
	open     bool
	events   []string
	arrived  chan string
	answered chan string
}

// Gate puts a gate in front of the cluster's dynamic client; every write
// waits until Release or Open lets it through (or its context ends).
func (f *Fake) Gate() *Gate {
	g := &Gate{waiting: map[string]chan struct{}{}, arrived: make(chan string, 4096), answered: make(chan string, 4096)}
	f.Cluster.Dynamic = &gatedClient{Interface: f.Cluster.Dynamic, gate: g}
	return g
}

// Arrived delivers each write as it reaches the gate, named as in
// Fake.Writes ("patch services shop/amcs-web").
func (g *Gate) Arrived() <-chan string { return g.arrived }

// Answered delivers each write once the fake answered it.
func (g *Gate) Answered() <-chan string { return g.answered }

// Release lets the named write through (it must have arrived).
func (g *Gate) Release(write string) {
	g.mu.Lock()
	ch := g.waiting[write]
	delete(g.waiting, write)
	g.mu.Unlock()
	if ch == nil {
		panic("clustersettest: releasing " + write + ", which is not waiting")
	}
	close(ch)
}

// ReleaseShuffled lets the writes held at gates (by cluster id) through
// one at a time, in an order drawn from rng, until done is closed: it waits
// for a write, takes every other that has arrived, and releases one of them
// at random. With writes in flight, at least one is always waiting, so
// nothing arriving within stuck while done is open fails the test.
func ReleaseShuffled(t testing.TB, gates map[string]*Gate, rng *rand.Rand, done <-chan struct{}, stuck time.Duration) {
	t.Helper()
	type write struct{ cluster, name string }
	arrived := make(chan write)
	for id, g := range gates {
		go func() {
			for {
				select {
				case w := <-g.Arrived():
					select {
					case arrived <- write{id, w}:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	var waiting []write
	for {
		if len(waiting) == 0 {
			select {
			case w := <-arrived:
				waiting = append(waiting, w)
			case <-done:
				return
			case <-time.After(stuck):
				t.Fatalf("no write arrived within %s, and the run has not returned: stuck", stuck)
			}
		}
		for more := true; more; {
			select {
			case w := <-arrived:
				waiting = append(waiting, w)
			default:
				more = false
			}
		}
		i := rng.IntN(len(waiting))
		gates[waiting[i].cluster].Release(waiting[i].name)
		waiting = slices.Delete(waiting, i, i+1)
	}
}

// Open lets every write through, now and from now on.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	for w, ch := range g.waiting {
		close(ch)
		delete(g.waiting, w)
	}
}

// Max is the largest number of writes that were in flight together.
func (g *Gate) Max() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// Events lists "start <write>" and "done <write>" in the order they
// happened; a write is done when the fake answered it.
func (g *Gate) Events() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.events)
}

func (g *Gate) pass(ctx context.Context, write string, do func() error) error {
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	g.events = append(g.events, "start "+write)
	wait := make(chan struct{})
	if g.open {
		close(wait)
	} else {
		if g.waiting[write] != nil {
			g.mu.Unlock()
			return fmt.Errorf("clustersettest: %s sent twice at once", write)
		}
		g.waiting[write] = wait
	}
	g.mu.Unlock()
	g.arrived <- write
	var err error
	select {
	case <-wait:
		err = do()
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	g.inFlight--
	g.events = append(g.events, "done "+write)
	g.mu.Unlock()
	g.answered <- write
	return err
}

type gatedClient struct {
	dynamic.Interface
	gate *Gate
}

func (c *gatedClient) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	next := c.Interface.Resource(gvr)
	return &gatedNamespaceable{NamespaceableResourceInterface: next, gatedResource: gatedResource{ResourceInterface: next, gate: c.gate, gvr: gvr}}
}

type gatedNamespaceable struct {
	dynamic.NamespaceableResourceInterface
	gatedResource
}

func (r *gatedNamespaceable) Namespace(ns string) dynamic.ResourceInterface {
	return &gatedResource{ResourceInterface: r.NamespaceableResourceInterface.Namespace(ns), gate: r.gate, gvr: r.gvr, namespace: ns}
}

func (r *gatedNamespaceable) Apply(ctx context.Context, name string, obj *unstructured.Unstructured, opts metav1.ApplyOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.gatedResource.Apply(ctx, name, obj, opts, sub...)
}

func (r *gatedNamespaceable) ApplyStatus(ctx context.Context, name string, obj *unstructured.Unstructured, opts metav1.ApplyOptions) (*unstructured.Unstructured, error) {
	return r.gatedResource.ApplyStatus(ctx, name, obj, opts)
}

func (r *gatedNamespaceable) Delete(ctx context.Context, name string, opts metav1.DeleteOptions, sub ...string) error {
	return r.gatedResource.Delete(ctx, name, opts, sub...)
}

type gatedResource struct {
	dynamic.ResourceInterface
	gate      *Gate
	gvr       schema.GroupVersionResource
	namespace string
}

func (r *gatedResource) name(verb, sub, name string) string {
	resource := r.gvr.Resource
	if sub != "" {
		resource += "/" + sub
	}
	return fmt.Sprintf("%s %s %s/%s", verb, resource, r.namespace, name)
}

func (r *gatedResource) Apply(ctx context.Context, name string, obj *unstructured.Unstructured, opts metav1.ApplyOptions, sub ...string) (out *unstructured.Unstructured, err error) {
	err = r.gate.pass(ctx, r.name("patch", "", name), func() error {
		out, err = r.ResourceInterface.Apply(ctx, name, obj, opts, sub...)
		return err
	})
	return out, err
}

func (r *gatedResource) ApplyStatus(ctx context.Context, name string, obj *unstructured.Unstructured, opts metav1.ApplyOptions) (out *unstructured.Unstructured, err error) {
	err = r.gate.pass(ctx, r.name("patch", "status", name), func() error {
		out, err = r.ResourceInterface.ApplyStatus(ctx, name, obj, opts)
		return err
	})
	return out, err
}

func (r *gatedResource) Delete(ctx context.Context, name string, opts metav1.DeleteOptions, sub ...string) error {
	return r.gate.pass(ctx, r.name("delete", "", name), func() error {
		return r.ResourceInterface.Delete(ctx, name, opts, sub...)
	})
}
