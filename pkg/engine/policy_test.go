package engine_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/engine"
)

// TestPolicyForEveryMode is docs/modes.md's table, row by row: the missing
// namespace and unreachable-at-start columns of each verb, with and without
// --create-namespace.
func TestPolicyForEveryMode(t *testing.T) {
	import_ := engine.Mode{NamedConsumer: true}
	importWatch := engine.Mode{NamedConsumer: true, Watch: true}
	sync := engine.Mode{}
	syncWatch := engine.Mode{Watch: true}
	cases := []struct {
		row                     string
		mode                    engine.Mode
		missing, withCreate     engine.MissingNamespaces
		startWithoutUnreachable bool
	}{
		{"import", import_, engine.FailOnMissingNamespaces, engine.CreateMissingNamespaces, true},
		{"import --watch", importWatch, engine.FailOnMissingNamespaces, engine.CreateMissingNamespaces, false},
		{"sync", sync, engine.SkipMissingNamespaces, engine.CreateMissingNamespaces, true},
		{"sync --watch", syncWatch, engine.SkipMissingNamespaces, engine.CreateMissingNamespaces, false},
	}
	for _, tc := range cases {
		t.Run(tc.row, func(t *testing.T) {
			p, err := engine.PolicyFor(tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if p.MissingNamespaces != tc.missing || p.StartWithoutUnreachable != tc.startWithoutUnreachable {
				t.Errorf("policy %+v, want missing namespaces %v, start without unreachable %t", p, tc.missing, tc.startWithoutUnreachable)
			}
			withCreate := tc.mode
			withCreate.CreateNamespace = true
			p, err = engine.PolicyFor(withCreate)
			if err != nil {
				t.Fatal(err)
			}
			if p.MissingNamespaces != tc.withCreate {
				t.Errorf("with --create-namespace: missing namespaces %v, want %v", p.MissingNamespaces, tc.withCreate)
			}
		})
	}
}

func TestPolicyRefusesWatchWithDryRun(t *testing.T) {
	for _, named := range []bool{true, false} {
		_, err := engine.PolicyFor(engine.Mode{NamedConsumer: named, Watch: true, DryRun: true})
		if err == nil || !strings.Contains(err.Error(), "cannot be combined with --dry-run") {
			t.Errorf("named consumer %t: --watch --dry-run gave %v, want a refusal", named, err)
		}
	}
	if _, err := engine.PolicyFor(engine.Mode{NamedConsumer: true, DryRun: true, CreateNamespace: true}); err != nil {
		t.Errorf("a one-shot dry run with --create-namespace is meaningful (it shows the namespaces): %v", err)
	}
}

func TestPolicyCheckStart(t *testing.T) {
	down := []engine.Unreachable{{Cluster: &clusterset.Cluster{Context: "east"}, Err: errors.New("connection refused")}}
	oneShot, _ := engine.PolicyFor(engine.Mode{})
	if err := oneShot.CheckStart(down); err != nil {
		t.Errorf("a one-shot run goes on without an unreachable cluster, got %v", err)
	}
	watch, _ := engine.PolicyFor(engine.Mode{Watch: true})
	if err := watch.CheckStart(nil); err != nil {
		t.Errorf("a watch with every cluster answering starts, got %v", err)
	}
	err := watch.CheckStart(down)
	if err == nil {
		t.Fatal("a watch started without an unreachable cluster")
	}
	for _, want := range []string{"--watch did not start", "east cannot be reached", "connection refused", "--stale-ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestSetAsideAndOutcome: a cluster that does not answer is set aside and
// named at the end; a shared API server counts once; any other failure
// stops the run before a read.
func TestSetAsideAndOutcome(t *testing.T) {
	east := &clusterset.Cluster{Context: "east", ID: "east"}
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: errors.New("connection refused")}
	clusters, unreachable, err := engine.SetAside([]clusterset.Member{
		{Context: "east", Cluster: east},
		{Context: "west", Err: refused},
		{Context: "east-admin", Cluster: east},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(clusters) != 1 || clusters[0] != east {
		t.Errorf("clusters %v, want east once", clusters)
	}
	if len(unreachable) != 1 || unreachable[0].Cluster.Context != "west" {
		t.Fatalf("unreachable %v, want west", unreachable)
	}

	bad := errors.New(`context "typo" not found in the kubeconfig`)
	if _, _, err := engine.SetAside([]clusterset.Member{{Context: "east", Cluster: east}, {Context: "typo", Err: bad}}); !errors.Is(err, bad) {
		t.Errorf("a context that is not a connection failure: got %v, want it to stop the run", err)
	}

	// The clusters set aside at start and those lost during the sync are
	// one error naming both.
	lost := &engine.UnreachableError{Clusters: []engine.Unreachable{{Cluster: &clusterset.Cluster{Context: "north"}, Err: refused}}}
	var got *engine.UnreachableError
	if err := engine.Outcome(lost, unreachable); !errors.As(err, &got) || len(got.Clusters) != 2 ||
		!strings.Contains(err.Error(), "west") || !strings.Contains(err.Error(), "north") {
		t.Errorf("outcome %v, want one UnreachableError naming west and north", err)
	}
	if err := engine.Outcome(nil, nil); err != nil {
		t.Errorf("nothing unreachable: outcome %v, want nil", err)
	}
	if err := engine.Outcome(bad, unreachable); !errors.Is(err, bad) {
		t.Errorf("a write failure: outcome %v, want it as it is", err)
	}
}
