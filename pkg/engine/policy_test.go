package engine_test

import (
	"errors"
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
