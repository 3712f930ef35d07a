package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// stuck fails a test that waits on the engine for longer than any correct
// run needs: a guard against a hang, not a measure of speed.
const stuck = 30 * time.Second

// threeClusters: c1 exports n ClusterIP services from shop; c2 and c3 hold
// shop and import them (c1 imports them too).
func threeClusters(n int) (c1, c2, c3 *clustersettest.Fake) {
	objs := []runtime.Object{clustersettest.Namespace("shop")}
	for i := range n {
		objs = append(objs, clustersettest.Exported("shop", fmt.Sprintf("svc%02d", i), false, fmt.Sprintf("10.1.0.%d", i+1))...)
	}
	c1 = clustersettest.New("c1", objs...)
	c2 = clustersettest.New("c2", clustersettest.Namespace("shop"))
	c3 = clustersettest.New("c3", clustersettest.Namespace("shop"))
	c1.ClusterIPPrefix, c2.ClusterIPPrefix, c3.ClusterIPPrefix = "10.11.0.", "10.22.0.", "10.33.0."
	return c1, c2, c3
}

type syncResult struct {
	report engine.Report
	err    error
}

func syncAsync(eng *engine.Engine) <-chan syncResult {
	done := make(chan syncResult, 1)
	go func() {
		r, err := eng.Sync(context.Background(), shop)
		done <- syncResult{r, err}
	}()
	return done
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(stuck):
		t.Fatalf("waiting for %s: stuck", what)
		var zero T
		return zero
	}
}

// importIPMatchesService: the consumer's import web-like svcNN carries the
// cluster IP its own API server gave the derived Service.
func assertImportIP(t *testing.T, f *clustersettest.Fake, service string) {
	t.Helper()
	svc := f.Get(servicesGVR, "shop", "amcs-"+service)
	si := f.Get(serviceImportsGVR, "shop", service)
	if svc == nil || si == nil {
		t.Fatalf("%s: derived Service %v, import %v", f.Cluster.Context, svc != nil, si != nil)
	}
	ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP")
	ips, _, _ := unstructured.NestedStringSlice(si.Object, "spec", "ips")
	if !strings.HasPrefix(ip, f.ClusterIPPrefix) || !slices.Equal(ips, []string{ip}) {
		t.Errorf("%s: import %s has ips %v, derived Service has %q (want one of %s*)", f.Cluster.Context, service, ips, ip, f.ClusterIPPrefix)
	}
}

// A consumer whose writes hang holds nobody else: c3 writes its derived
// Service, then its import with that Service's IP, and its status, while
// c2's first write is still waiting.
func TestSyncHeldClusterDoesNotHoldOthers(t *testing.T) {
	c1, c2, c3 := threeClusters(1)
	held := c2.Gate()
	watched := c3.Gate()
	watched.Open()
	eng := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2, c3}, engine.SkipMissingNamespaces)
	done := syncAsync(eng)
	first := await(t, held.Arrived(), "c2's first write")
	if first != "patch services shop/amcs-svc00" {
		t.Errorf("c2's first write is %s, want its derived Service", first)
	}
	for {
		if w := await(t, watched.Answered(), "c3's writes while c2 is held"); w == "patch serviceimports/status shop/svc00" {
			break
		}
	}
	assertImportIP(t, c3, "svc00")
	if w := c2.Writes(); len(w) > 0 {
		t.Fatalf("c2 stored %v through a closed gate", w)
	}
	held.Open()
	res := await(t, done, "Sync")
	if res.err != nil {
		t.Fatalf("Sync: %v", res.err)
	}
	assertImportIP(t, c2, "svc00")
}

// The bound applies per cluster, in every step of a sync.
func TestSyncBoundsWritesPerCluster(t *testing.T) {
	const bound = 3
	c1, c2, _ := threeClusters(8)
	gate := c2.Gate()
	eng := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2}, engine.SkipMissingNamespaces)
	eng.MaxWritesInFlight = bound
	done := syncAsync(eng)
	for range bound {
		await(t, gate.Arrived(), "a derived Service write")
	}
	if got := gate.Max(); got != bound {
		t.Errorf("%d writes in flight, want the bound %d", got, bound)
	}
	gate.Open()
	res := await(t, done, "Sync")
	if res.err != nil {
		t.Fatalf("Sync: %v", res.err)
	}
	if got := gate.Max(); got != bound {
		t.Errorf("at most %d writes in flight together, want the bound %d", got, bound)
	}
	if n := len(c2.Writes()); n != 4*8 {
		t.Errorf("c2 stored %d writes, want 32 (8 Services, imports, statuses, slices)", n)
	}
	for i := range 8 {
		assertImportIP(t, c2, fmt.Sprintf("svc%02d", i))
	}
}

// Writes of three clusters finish in a random order; the report reads as
// a run with one write at a time does, and no object is written twice.
func TestSyncReportInPlanOrderUnderShuffledCompletion(t *testing.T) {
	a1, a2, a3 := threeClusters(4)
	all := []*clustersettest.Fake{a1, a2, a3}
	sequential := newEngine(all, all, engine.SkipMissingNamespaces)
	sequential.MaxWritesInFlight = 1
	want, err := sequential.Sync(context.Background(), shop)
	if err != nil {
		t.Fatalf("sequential Sync: %v", err)
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			c1, c2, c3 := threeClusters(4)
			all := []*clustersettest.Fake{c1, c2, c3}
			gates := map[string]*clustersettest.Gate{}
			for _, f := range all {
				gates[f.Cluster.ID] = f.Gate()
			}
			results := syncAsync(newEngine(all, all, engine.SkipMissingNamespaces))
			var res syncResult
			done := make(chan struct{})
			go func() {
				res = <-results
				close(done)
			}()
			clustersettest.ReleaseShuffled(t, gates, rand.New(rand.NewPCG(seed, 2)), done, stuck)
			if res.err != nil {
				t.Fatalf("Sync: %v", res.err)
			}
			if got, want := resultLines(res.report.Results), resultLines(want.Results); !slices.Equal(got, want) {
				t.Errorf("results:\n%s\nwant (one write at a time):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, f := range all {
				writes := f.Writes()
				for _, w := range writes {
					if n := count(writes, w); n != 1 {
						t.Errorf("%s: %s written %d times", f.Cluster.Context, w, n)
					}
				}
				for i := range 4 {
					assertImportIP(t, f, fmt.Sprintf("svc%02d", i))
				}
			}
		})
	}
}

// A cluster whose write fails stops; the others finish. The error names the
// failed cluster and object; the report lists what every cluster wrote.
func TestSyncFailureStopsOnlyItsCluster(t *testing.T) {
	c1, c2, c3 := threeClusters(2)
	c2.Dynamic.PrependReactor("patch", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(endpointSlicesGVR.GroupResource(), a.(k8stesting.PatchActionImpl).GetName(), nil)
	})
	eng := newEngine([]*clustersettest.Fake{c1}, []*clustersettest.Fake{c2, c3}, engine.SkipMissingNamespaces)
	report, err := eng.Sync(context.Background(), shop)
	if err == nil {
		t.Fatal("Sync succeeded with c2 refusing slices")
	}
	for _, want := range []string{"c2: writing EndpointSlice shop/amcs-svc0", "forbidden"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "c3") {
		t.Errorf("error names c3, which wrote everything:\n%v", err)
	}
	if n := len(c3.Writes()); n != 8 {
		t.Errorf("c3 stored %d writes, want all 8: %v", n, c3.Writes())
	}
	lines := resultLines(report.Results)
	for _, f := range []*clustersettest.Fake{c2, c3} {
		for _, w := range f.Writes() {
			kind, name := strings.Fields(w)[1], strings.Split(strings.Fields(w)[2], "/")[1]
			if !slices.ContainsFunc(lines, func(l string) bool {
				return strings.HasPrefix(l, f.Cluster.Context+": ") && strings.Contains(l, "/"+name+" ") && strings.Contains(l, strings.TrimSuffix(strings.Split(kind, "/")[0], "s"))
			}) {
				t.Errorf("%s wrote %s, which the report does not list:\n%s", f.Cluster.Context, w, strings.Join(lines, "\n"))
			}
		}
	}
	if !slices.Contains(lines, "c1: serviceexport.multicluster.x-k8s.io/svc00 status configured") {
		t.Errorf("c1's export status not reported:\n%s", strings.Join(lines, "\n"))
	}
}

// barrierReader answers no read until every expected read is in flight:
// a sync that read one after another would never get its first answer.
type barrierReader struct {
	mu       sync.Mutex
	expected int
	arrived  int
	all      chan struct{}
	next     engine.Reader
}

func (r *barrierReader) wait(ctx context.Context) error {
	r.mu.Lock()
	r.arrived++
	if r.arrived == r.expected {
		close(r.all)
	}
	r.mu.Unlock()
	select {
	case <-r.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *barrierReader) ReadSource(ctx context.Context, c *clusterset.Cluster, scope snapshot.Scope) (reconcile.Source, error) {
	if err := r.wait(ctx); err != nil {
		return reconcile.Source{}, err
	}
	return r.next.ReadSource(ctx, c, scope)
}

func (r *barrierReader) ReadConsumer(ctx context.Context, c *clusterset.Cluster, scope snapshot.Scope) (reconcile.Consumer, error) {
	if err := r.wait(ctx); err != nil {
		return reconcile.Consumer{}, err
	}
	return r.next.ReadConsumer(ctx, c, scope)
}

// A sync reads every cluster, in both its roles, at once: one round.
func TestSyncReadsEveryClusterAndRoleAtOnce(t *testing.T) {
	c1, c2, c3 := threeClusters(1)
	all := []*clustersettest.Fake{c1, c2, c3}
	eng := newEngine(all, all, engine.SkipMissingNamespaces)
	eng.Reader = &barrierReader{expected: 2 * len(all), all: make(chan struct{}), next: snapshot.Live{}}
	ctx, cancel := context.WithTimeout(context.Background(), stuck)
	defer cancel()
	if _, err := eng.Sync(ctx, shop); err != nil {
		t.Fatalf("Sync (its reads were not all in flight together?): %v", err)
	}
}
