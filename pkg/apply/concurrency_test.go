package apply_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset/clustersettest"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// stuck fails a test that waits on the code under test for longer than any
// correct run needs: a guard against a hang, not a measure of speed.
const stuck = 30 * time.Second

func arrival(t *testing.T, g *clustersettest.Gate) string {
	t.Helper()
	select {
	case w := <-g.Arrived():
		return w
	case <-time.After(stuck):
		t.Fatal("no write arrived: the executor is stuck")
		return ""
	}
}

// manyServices: c1 exports n ClusterIP services in shop; c2 imports them
// (n Services, n imports, n statuses, n slices; c1 writes n export
// statuses).
func manyServices(t *testing.T, n int) (c1, c2 *clustersettest.Fake, plan reconcile.Plan) {
	t.Helper()
	var exported []runtime.Object
	for i := range n {
		exported = append(exported, clustersettest.Exported("shop", fmt.Sprintf("svc%02d", i), false, fmt.Sprintf("10.1.0.%d", i+1))...)
	}
	c1 = clustersettest.New("c1", exported...)
	c2 = clustersettest.New("c2", clustersettest.Namespace("shop"))
	plan = reconcile.Reconcile(reconcile.Snapshot{
		Now:       metav1.NewTime(clustersettest.Created.Add(3600e9)),
		Sources:   []reconcile.Source{sourceOf("c1", exported)},
		Consumers: []reconcile.Consumer{{ClusterID: "c2", Namespaces: []string{"shop"}}},
	})
	if len(plan.Problems) > 0 {
		t.Fatalf("plan has problems: %v", plan.Problems)
	}
	return c1, c2, plan
}

// Within one cluster, the writes in flight reach the bound and never pass
// it: the gate holds them until the test lets one go, and each release
// lets exactly one more start.
func TestRunBoundsWritesInFlightPerCluster(t *testing.T) {
	const bound = 4
	c1, c2, plan := manyServices(t, 10)
	gate := c2.Gate()
	x := &apply.Executor{Clusters: clustersettest.Clusters(c1, c2), MaxInFlight: bound}
	var changes []reconcile.Change
	for _, ch := range plan.Changes {
		if ch.Cluster == "c2" && ch.Kind == reconcile.KindEndpointSlice {
			changes = append(changes, ch)
		}
	}
	done := make(chan []apply.Outcome)
	go func() { done <- x.Run(context.Background(), plan, changes) }()
	var waiting []string
	for range bound {
		waiting = append(waiting, arrival(t, gate))
	}
	for sent := bound; sent < len(changes); sent++ {
		gate.Release(waiting[0])
		waiting = append(waiting[1:], arrival(t, gate))
	}
	gate.Open()
	outs := <-done
	if got := gate.Max(); got != bound {
		t.Errorf("at most %d writes in flight together, want the bound %d", got, bound)
	}
	for _, o := range outs {
		if o.Err != nil || !o.Sent {
			t.Errorf("%s: sent=%t err=%v", o.Change, o.Sent, o.Err)
		}
	}
	if w := c2.Writes(); len(w) != len(changes) {
		t.Errorf("%d writes stored, want %d", len(w), len(changes))
	}
}

// A cluster whose writes hang does not hold another's: c1 writes all its
// export statuses while every write of c2 waits at the gate.
func TestRunClustersAreIndependent(t *testing.T) {
	c1, c2, plan := manyServices(t, 3)
	gate := c2.Gate()
	c1gate := c1.Gate()
	c1gate.Open()
	x := &apply.Executor{Clusters: clustersettest.Clusters(c1, c2)}
	done := make(chan []apply.Outcome)
	go func() { done <- x.Run(context.Background(), plan, plan.Changes) }()
	arrival(t, gate) // c2 is stuck from its first write on
	for range 3 {
		if w := arrival(t, c1gate); !strings.HasPrefix(w, "patch serviceexports/status ") {
			t.Errorf("c1 wrote %s", w)
		}
	}
	// c1's writes are answered while c2's first is still held.
	for range 3 {
		select {
		case <-c1gate.Answered():
		case <-time.After(stuck):
			t.Fatal("c1's writes wait for c2's")
		}
	}
	if w := c2.Writes(); len(w) != 0 {
		t.Fatalf("c2 stored %v through a closed gate", w)
	}
	gate.Open()
	<-done
	if n := len(c2.Writes()); n != 12 {
		t.Errorf("c2 stored %d writes, want 12", n)
	}
}

// Writes finish in a random order; the results still read in plan order,
// every object is written once, and no write starts before the writes it
// depends on are done.
func TestRunOrderUnderShuffledCompletion(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newFixture(t)
			gates := map[string]*clustersettest.Gate{"c1": f.c1.Gate(), "c2": f.c2.Gate()}
			x := f.executor(cmdutil.DryRunNone)
			done := make(chan struct{})
			var results []apply.Result
			var err error
			go func() {
				results, _, err = x.Execute(context.Background(), f.plan, f.plan.Changes)
				close(done)
			}()
			clustersettest.ReleaseShuffled(t, gates, rand.New(rand.NewPCG(seed, 1)), done, stuck)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if got := lines(results); !slices.Equal(got, wantLines) {
				t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
			}
			events := gates["c2"].Events()
			assertWrittenOnce(t, events)
			assertDoneBefore(t, events, "patch services shop/amcs-web", "patch serviceimports shop/web")
			assertDoneBefore(t, events, "patch services other/amcs-api", "patch serviceimports other/api")
			for _, im := range []string{"other/api", "shop/db", "shop/web"} {
				assertDoneBefore(t, events, "patch serviceimports "+im, "patch serviceimports/status "+im)
			}
			for _, e := range events {
				if strings.HasPrefix(e, "done patch ") {
					assertDoneBefore(t, events, strings.TrimPrefix(e, "done "), "delete endpointslices shop/"+f.stale.Name)
				}
			}
		})
	}
}

func assertWrittenOnce(t *testing.T, events []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range events {
		if strings.HasPrefix(e, "start ") {
			if seen[e] {
				t.Errorf("%s twice", e)
			}
			seen[e] = true
		}
	}
}

// assertDoneBefore: first was answered before second started.
func assertDoneBefore(t *testing.T, events []string, first, second string) {
	t.Helper()
	d, s := slices.Index(events, "done "+first), slices.Index(events, "start "+second)
	if d < 0 || s < 0 || d > s {
		t.Errorf("%s must be done before %s starts: %v", first, second, events)
	}
}
