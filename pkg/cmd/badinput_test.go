package cmd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// Bad input that needs no cluster to be recognised is refused before any
// request, with an error that names the real cause and gives one hint.
func TestBadInputBeforeAnyRequest(t *testing.T) {
	kubeconfig := writeKubeconfig(t, "cluster1", "cluster2")
	cases := []struct {
		name      string
		args      []string
		fragments []string
	}{
		{"export: invalid Service name", []string{"export", "Bad_Name", "-n", "p"}, []string{`"Bad_Name" is not a valid Service name`}},
		{"unexport: invalid Service name", []string{"unexport", "Bad_Name", "-n", "p"}, []string{`"Bad_Name" is not a valid Service name`}},
		{"import: invalid Service name", []string{"import", "Bad_Name", "-n", "p", "--from", "cluster1", "--context", "cluster2"}, []string{`"Bad_Name" is not a valid Service name`}},
		{"sync: invalid Service name", []string{"sync", "9lives", "-n", "p", "--clusters", "cluster1,cluster2"}, []string{`"9lives" is not a valid Service name`}},
		{"status: invalid Service name", []string{"status", "web.x", "-n", "p", "--clusters", "cluster1,cluster2"}, []string{`"web.x" is not a valid Service name`}},
		{"resolve: empty label", []string{"resolve", "mysql-0..x"}, []string{"label 2 is empty", "give a pod hostname"}},
		{"dns: --dry-run without --patch", []string{"dns", "--dry-run=client"}, []string{"--dry-run only applies with --patch"}},
		{"empty entry in --from", []string{"import", "web", "-n", "p", "--from", "cluster1,,cluster2", "--context", "cluster2"}, []string{"--from", "empty entry"}},
		{"duplicate in --from", []string{"import", "web", "-n", "p", "--from", "cluster1,cluster1", "--context", "cluster2"}, []string{"--from", "twice"}},
		{"empty --from", []string{"import", "web", "-n", "p", "--from", "", "--context", "cluster2"}, []string{"--from is empty"}},
		{"no --from", []string{"import", "web", "-n", "p", "--context", "cluster2"}, []string{"--from is required"}},
		{"malformed --clusters", []string{"status", "-A", "--clusters", ",cluster1"}, []string{"--clusters", "empty entry"}},
		{"-n with -A", []string{"import", "-A", "-n", "p", "--from", "cluster1", "--context", "cluster2"}, []string{"-n NAMESPACE or -A"}},
		{"bad --dry-run", []string{"export", "web", "-n", "p", "--dry-run=maybe"}, []string{"dry-run"}},
		{"bad --output", []string{"import", "web", "-n", "p", "--from", "cluster1", "--context", "cluster2", "-o", "wide"}, []string{`--output "wide" is not supported`}},
		{"--watch with --dry-run", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--watch", "--dry-run=client"}, []string{"cannot be combined with --dry-run"}},
		{"--leader-elect-context without --leader-elect", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--watch", "--leader-elect-context", "cluster1"}, []string{"--leader-elect-context only applies with --leader-elect"}},
		{"--leader-elect outside a pod, no --leader-elect-context", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--watch", "--leader-elect"}, []string{"--leader-elect needs a cluster to hold its Lease", "--leader-elect-context CONTEXT"}},
		{"renew deadline not under the lease duration", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--watch", "--leader-elect", "--leader-elect-context", "cluster1", "--leader-elect-lease-duration", "5s", "--leader-elect-renew-deadline", "5s"}, []string{"--leader-elect-lease-duration (5s) must be more than --leader-elect-renew-deadline (5s)"}},
		{"retry period too long for the renew deadline", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--watch", "--leader-elect", "--leader-elect-context", "cluster1", "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "2s"}, []string{"--leader-elect-renew-deadline (2s) must be more than 1.2 times --leader-elect-retry-period (2s)"}},
		{"negative lease duration", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--watch", "--leader-elect", "--leader-elect-context", "cluster1", "--leader-elect-lease-duration", "-1s"}, []string{"the --leader-elect-* durations cannot be negative (0 means the default)"}},
		{"import --watch with --dry-run", []string{"import", "web", "-n", "p", "--from", "cluster1", "--context", "cluster2", "--watch", "--dry-run=server"}, []string{"cannot be combined with --dry-run"}},
		{"--stale-ttl without --watch", []string{"sync", "-n", "p", "--clusters", "cluster1,cluster2", "--stale-ttl", "1m"}, []string{"--stale-ttl only applies with --watch"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := pluginrun.Run(context.Background(), kubeconfig, tc.args...)
			if r.Code != 1 {
				t.Errorf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
			}
			for _, f := range tc.fragments {
				if !strings.Contains(r.Stderr, f) {
					t.Errorf("error output lacks %q:\n%s", f, r.Stderr)
				}
			}
			if strings.Contains(r.Stderr, "cannot reach") {
				t.Errorf("the command tried the (closed) API server before refusing its input:\n%s", r.Stderr)
			}
			for ctx, n := range r.Reads {
				if n+r.Writes[ctx] != 0 {
					t.Errorf("%d requests to %s before refusing the input", n+r.Writes[ctx], ctx)
				}
			}
			for _, hint := range []string{"give a pod hostname", "check -n/--context"} {
				if n := strings.Count(r.Stderr, hint); n > 1 {
					t.Errorf("hint %q printed %d times:\n%s", hint, n, r.Stderr)
				}
			}
		})
	}
}
