package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// pluginRun is one `kubectl mcs` invocation, run in-process through the
// real command tree against the local clusters.
type pluginRun struct {
	args   []string
	stdout string
	stderr string
	code   int
	// writes and reads count the HTTP requests per context.
	writes map[string]int64
	reads  map[string]int64
}

// kubectlMCS runs `kubectl mcs ARGS` with the given kubeconfig.
func kubectlMCS(t *testing.T, kubeconfig string, args ...string) pluginRun {
	t.Helper()
	return kubectlMCSContext(context.Background(), t, kubeconfig, args...)
}

// kubectlMCSContext runs `kubectl mcs ARGS` until it returns or ctx ends
// (how a --watch run is stopped), and logs what it printed.
func kubectlMCSContext(ctx context.Context, t *testing.T, kubeconfig string, args ...string) pluginRun {
	t.Helper()
	r := pluginrun.Run(ctx, kubeconfig, args...)
	t.Logf("$ kubectl mcs %s\n%s%s(exit %d)", strings.Join(args, " "), r.Stdout, r.Stderr, r.Code)
	if !slices.Contains(args, "--watch") {
		// Each object at most once per sync; a watch syncs many times.
		for ctx, rep := range r.RepeatedWrites {
			t.Errorf("kubectl mcs %s: wrote objects of %s more than once: %v", strings.Join(args, " "), ctx, rep)
		}
	}
	return pluginRun{args: args, stdout: r.Stdout, stderr: r.Stderr, code: r.Code, writes: r.Writes, reads: r.Reads}
}

// mustSucceed fails the test unless the run exited 0.
func (r pluginRun) mustSucceed(t *testing.T) pluginRun {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("kubectl mcs %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// mustFail fails the test unless the run exited non-zero with every given
// fragment in its error output.
func (r pluginRun) mustFail(t *testing.T, fragments ...string) pluginRun {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("kubectl mcs %s: exit 0, want a failure\nstdout:\n%s", strings.Join(r.args, " "), r.stdout)
	}
	for _, f := range fragments {
		if !strings.Contains(r.stderr, f) {
			t.Errorf("kubectl mcs %s: error output lacks %q:\n%s", strings.Join(r.args, " "), f, r.stderr)
		}
	}
	return r
}

func (r pluginRun) totalWrites() int64 { return pluginrun.Result{Writes: r.writes}.TotalWrites() }
